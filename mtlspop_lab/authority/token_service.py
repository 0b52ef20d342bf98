"""The token service: OIDC discovery, JWKS and the client-credentials token endpoint.

It implements the three ways a confidential client or managed identity gets
an app-only token in the mTLS PoP story (see shared/docs/protocol.md):

* **TLS client authentication** (RFC 8705 section 2): on an mTLS listener, the
  certificate of the handshake authenticates the client; no assertion.
* **private_key_jwt** (RFC 7523, ``jwt-bearer``): a client assertion signed
  by a registered certificate; works on every listener.
* **FIC leg 2** (``jwt-pop``): the assertion is a PoP token this authority
  issued for ``api://AzureADTokenExchange``, and the TLS certificate must be
  the one it is bound to.
* **Federated jwt-bearer**: a ``jwt-bearer`` assertion whose ``iss`` is an
  issuer URL (leg 1 sent unbound, a Kubernetes or GitHub Actions token),
  trusted through the app's federated credentials (:mod:`.federation`).

``token_type=mtls_pop`` asks for a token bound to the TLS client certificate
(``cnf.x5t#S256``, RFC 8705 section 3); it needs that certificate, and a
resource that accepts bound tokens. Unknown parameters (msal's ``key_id``,
``client_info``) are ignored, as Entra does.
"""

from __future__ import annotations

import re
from typing import Callable
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from ..certs import Certificate, x5t_s256_of_der
from .directory import App, Directory
from .federation import FederatedAssertionCheck, IssuerKeys, looks_federated
from .oauth_errors import oauth_error
from .server import Request, Response
from .signing import Signer, access_token_claims

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_POP = "urn:ietf:params:oauth:client-assertion-type:jwt-pop"
ASSERTION_ALGORITHMS = ("RS256", "PS256", "ES256")   # what msal and MSAL.NET sign client assertions with
RESERVED_SCOPES = {"openid", "profile", "offline_access", "email"}

_TOKEN_PATH = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token/?$")
_DISCOVERY_PATH = re.compile(r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration/?$")
_JWKS_PATH = re.compile(r"^/(?P<tenant>[^/]+)/discovery/(v2\.0/)?keys/?$")


class TokenService:
    """Answers the token-service paths of the login, mTLS and regional listeners.

    ``base_urls()`` returns listener name -> base URL (all HTTPS token
    listeners), so discovery names the right host and client assertions
    addressed to any of them are accepted. ``lifetime_s()`` is the current
    token lifetime knob.
    """

    federation: FederatedAssertionCheck | None = None   # set by LocalAuthority (its issuers' keys)

    def __init__(self, directory: Directory, signer: Signer, *, issuer: str,
                 base_urls: Callable[[], dict], lifetime_s: Callable[[], int]):
        self.directory = directory
        self.signer = signer
        self.issuer = issuer
        self.base_urls = base_urls
        self.lifetime_s = lifetime_s

    @property
    def tenant_id(self) -> str:
        return self.directory.tenant_id

    # -- routing ---------------------------------------------------------------------
    def handle(self, request: Request, *, downgrade: bool = False) -> Response:
        path = request.path
        m = _TOKEN_PATH.match(path)
        if m:
            if request.method != "POST":
                return oauth_error("malformed_request", "The token endpoint accepts POST only.", request,
                                   status=405, headers={"Allow": "POST"})
            if not self._is_tenant(m["tenant"]):
                return oauth_error("tenant_not_found", f"Tenant '{m['tenant'][:64]}' not found. Use the "
                                   f"lab's tenant id {self.tenant_id}.", request)
            return self.token(request, downgrade=downgrade)
        m = _DISCOVERY_PATH.match(path)
        if m and request.method in ("GET", "HEAD"):
            if not self._is_tenant(m["tenant"]):
                return oauth_error("tenant_not_found", f"Tenant '{m['tenant'][:64]}' not found.", request)
            return Response.json(200, self.discovery(request.listener))
        m = _JWKS_PATH.match(path)
        if m and request.method in ("GET", "HEAD"):
            return Response.json(200, self.signer.jwks)
        return Response.json(404, {"error": "not_found",
                                   "error_description": f"No such endpoint: {request.method} {path[:100]}"},
                             error="not found")

    def _is_tenant(self, tenant: str) -> bool:
        return tenant.lower() == self.tenant_id.lower()

    def discovery(self, listener: str) -> dict:
        """OIDC discovery for the listener that was asked (its token endpoint is on itself)."""
        urls = self.base_urls()
        base = f"{urls[listener]}/{self.tenant_id}"
        mtls_base = f"{urls['mtls']}/{self.tenant_id}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "tls_client_auth",
                                                      "self_signed_tls_client_auth"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": self.issuer,
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "tenant_region_scope": "NA",
            "cloud_instance_name": "mtlspop-lab.local",
            "mtls_endpoint_aliases": {"token_endpoint": f"{mtls_base}/oauth2/v2.0/token"},
            "tls_client_certificate_bound_access_tokens": True,
        }

    # -- the token endpoint ------------------------------------------------------------
    def token(self, request: Request, *, downgrade: bool = False) -> Response:
        params = _parse_form(request)
        if isinstance(params, Response):
            return params
        info = {"grant_type": params.get("grant_type"), "client_id": params.get("client_id"),
                "request_body": params}     # the trace redacts assertions before storing

        def refuse(kind: str, description: str, **extra) -> Response:
            return oauth_error(kind, description, request, **info, **extra)

        for name in ("grant_type", "client_id", "scope"):
            if not params.get(name):
                return refuse("missing_parameter", f"The request body must contain the following parameter: '{name}'.")
        if params["grant_type"] != "client_credentials":
            return refuse("unsupported_grant_type", f"The provided value for the input parameter 'grant_type' "
                          f"('{params['grant_type'][:40]}') is not valid; the lab supports client_credentials only.")
        resource = self._resource_for_scope(params["scope"])
        if isinstance(resource, str):
            kind, text = resource.split("|", 1)
            return refuse(kind, text)
        token_type = params.get("token_type", "").lower() or "bearer"
        if token_type not in ("bearer", "mtls_pop"):
            return refuse("malformed_request", f"token_type '{token_type[:30]}' is not supported; use mtls_pop or omit it.")
        wants_pop = token_type == "mtls_pop"
        client_id = params["client_id"]
        tls_x5t = x5t_s256_of_der(request.client_cert_der) if request.client_cert_der else None

        # -- who is the client? ----------------------------------------------------------
        assertion_type = params.get("client_assertion_type")
        principal = None
        if assertion_type is not None or "client_assertion" in params:
            if not params.get("client_assertion"):
                return refuse("missing_parameter", "The request body must contain the following parameter: 'client_assertion'.")
            if assertion_type == JWT_BEARER and looks_federated(params["client_assertion"], client_id):
                principal = self._check_federated(params["client_assertion"], client_id, tls_x5t, refuse,
                                                  bound=False, wants_pop=wants_pop)
            elif assertion_type == JWT_BEARER:
                principal = self._check_client_assertion(params["client_assertion"], client_id, request, refuse)
            elif assertion_type == JWT_POP:
                principal = self._check_federated(params["client_assertion"], client_id, tls_x5t, refuse,
                                                  bound=True, wants_pop=wants_pop)
            elif not assertion_type:
                return refuse("missing_parameter", "The request body must contain the following parameter: 'client_assertion_type'.")
            else:
                return refuse("malformed_request", f"client_assertion_type '{assertion_type[:80]}' is not supported; "
                              f"use {JWT_BEARER} or {JWT_POP}.")
        elif "client_secret" in params:
            return refuse("client_secret_not_supported", "Client secrets are not accepted by the lab's authority; "
                          "authenticate with a certificate (TLS client certificate or client assertion).")
        else:
            principal = self._check_tls_client(client_id, tls_x5t, request, refuse)
        if isinstance(principal, Response):
            return principal

        # -- what kind of token? -----------------------------------------------------------
        if wants_pop and tls_x5t is None:
            return refuse("pop_needs_certificate", "token_type=mtls_pop needs a TLS client certificate to bind the "
                          "token to: send the request to the mTLS endpoint and present the certificate.")
        if wants_pop and not resource.accepts_bound_tokens:
            return refuse("bound_tokens_not_supported", "The resource application does not support certificate-bound "
                          f"token ({resource.uri}). Please set token_type to 'bearer'.")
        bind = wants_pop and not downgrade
        lifetime = int(self.lifetime_s())
        if isinstance(principal, App):
            oid, mirid = principal.object_id, None
        else:
            oid, mirid = principal.object_id, principal.resource_id
        claims = access_token_claims(issuer=self.issuer, tenant_id=self.tenant_id, audience=resource.uri,
                                     subject_oid=oid, client_id=client_id, lifetime_s=lifetime,
                                     cnf_x5t_s256=tls_x5t if bind else None, mi_resource_id=mirid)
        roles = self.directory.app_roles.roles_for(oid, resource.uri)
        if roles:
            claims["roles"] = roles          # app roles assigned (and propagated) before this token
        token = self.signer.mint(claims)
        expires_in = max(lifetime - 1, 1)
        body = {"token_type": "mtls_pop" if bind else "Bearer", "expires_in": expires_in,
                "ext_expires_in": expires_in, "access_token": token}
        headers = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
        if request.header("client-request-id"):
            headers["client-request-id"] = request.header("client-request-id")
        info["token_type"] = body["token_type"]
        info["response_body"] = {"token_type": body["token_type"], "expires_in": expires_in,
                                 "aud": resource.uri, "cnf": claims.get("cnf"), "access_token": token}
        return Response.json(200, body, headers, **info)

    def _resource_for_scope(self, scope: str):
        scopes = [s for s in scope.split() if s not in RESERVED_SCOPES]
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return ("invalid_scope|The provided value for scope "
                    f"'{scope[:100]}' is not valid. Client credential flows must have a scope value "
                    "with /.default suffixed to the resource identifier (application ID URI).")
        resource = self.directory.find_resource(scopes[0])
        if resource is None:
            return (f"resource_not_found|The resource principal named {scopes[0][:-len('/.default')][:100]} "
                    f"was not found in the tenant {self.tenant_id}.")
        return resource

    # -- client authentication ----------------------------------------------------------
    def _check_tls_client(self, client_id: str, tls_x5t: str | None, request: Request, refuse):
        if tls_x5t is None:
            where = ("this listener does not request client certificates; use the mTLS endpoint"
                     if not request.listener.startswith("mtls") else "no TLS client certificate was presented")
            return refuse("no_client_credential", "The request body must contain the following parameter: "
                          f"'client_assertion' or 'client_secret' ({where}).")
        app = self.directory.find_app(client_id)
        if app is not None:
            if app.has_certificate_x5t(tls_x5t):
                return app
            return refuse("certificate_not_registered", f"The TLS client certificate (x5t#S256 {tls_x5t}) is not "
                          f"registered for application '{client_id}'. Register it on the app or present the registered one.")
        mi = self.directory.managed_identity_by_client_id(client_id)
        if mi is not None:
            if self.directory.issued_to(tls_x5t) == client_id:
                return mi
            return refuse("certificate_not_registered", f"The TLS client certificate (x5t#S256 {tls_x5t}) was not "
                          f"issued by IMDS to managed identity '{client_id}'. Mint one with issuecredential.")
        return refuse("app_not_found", f"Application with identifier '{client_id[:64]}' was not found in the "
                      f"directory '{self.tenant_id}'.")

    def _audiences(self) -> list[str]:
        return [f"{base}/{self.tenant_id}/oauth2/v2.0/token" for base in self.base_urls().values()] + [self.issuer]

    def _check_client_assertion(self, assertion: str, client_id: str, request: Request, refuse):
        """private_key_jwt: an assertion signed by one of the app's registered certificates."""
        app = self.directory.find_app(client_id)
        if app is None:
            return refuse("app_not_found", f"Application with identifier '{client_id[:64]}' was not found in "
                          f"the directory '{self.tenant_id}'.")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.exceptions.PyJWTError:
            return refuse("assertion_malformed", "JWT token is invalid or malformed (client_assertion).")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            return refuse("assertion_malformed", "The client assertion is unsigned (alg 'none'); it must be signed "
                          "with the private key of a registered certificate.")
        if alg not in ASSERTION_ALGORITHMS:
            return refuse("assertion_malformed", f"The client assertion algorithm '{alg[:20]}' is not accepted; "
                          f"use one of {', '.join(ASSERTION_ALGORITHMS)}.")
        candidates = _matching_certificates(app, header)
        if not candidates:
            return refuse("certificate_not_registered", "The certificate named in the client assertion header "
                          f"(x5t / x5t#S256) is not registered for application '{client_id}'.")
        last_error = None
        for cert in candidates:
            if (alg == "ES256") != isinstance(cert.x509.public_key(), ec.EllipticCurvePublicKey):
                continue
            try:
                claims = jwt.decode(assertion, cert.x509.public_key(),  # type: ignore[arg-type]
                                    algorithms=[alg], audience=self._audiences(),
                                    options={"require": ["exp", "aud", "iss", "sub"]}, leeway=60)
            except jwt.exceptions.InvalidSignatureError:
                last_error = "signature"
                continue
            except jwt.exceptions.ExpiredSignatureError:
                return refuse("assertion_expired", "Client assertion is not within its valid time range (expired).")
            except jwt.exceptions.ImmatureSignatureError:
                return refuse("assertion_expired", "Client assertion is not within its valid time range (not yet valid).")
            except jwt.exceptions.InvalidAudienceError:
                return refuse("assertion_audience", "Client assertion audience (aud) is not this token endpoint; "
                              f"expected {self._audiences()[0]}.")
            except jwt.exceptions.MissingRequiredClaimError as exc:
                return refuse("assertion_malformed", f"The client assertion lacks the required claim '{exc.claim}'.")
            except jwt.exceptions.PyJWTError:
                return refuse("assertion_malformed", "JWT token is invalid or malformed (client_assertion).")
            if claims.get("iss") != client_id or claims.get("sub") != client_id:
                return refuse("assertion_subject", "Client assertion application identifier (iss/sub) doesn't match "
                              "'client_id' parameter.")
            return app
        return refuse("assertion_signature", f"Client assertion contains an invalid signature "
                      f"({'signature does not verify' if last_error else 'key type does not match alg'}) for "
                      f"application '{client_id}'.")

    def _check_federated(self, assertion: str, client_id: str, tls_x5t: str | None, refuse, *,
                         bound: bool, wants_pop: bool):
        """FIC leg 2 (``jwt-pop``, bound) or a federated ``jwt-bearer`` assertion (see :mod:`.federation`)."""
        app = self.directory.find_app(client_id)
        if app is None:
            return refuse("app_not_found", f"Application with identifier '{client_id[:64]}' was not found in the "
                          f"directory '{self.tenant_id}' (leg 2 must be a confidential client app).")
        check = self.federation or FederatedAssertionCheck(IssuerKeys(self._own_issuer_keys))
        return check.check(assertion, app, tls_x5t=tls_x5t, bound=bound, wants_pop=wants_pop, refuse=refuse)

    def _own_issuer_keys(self, iss: str):
        return ({self.signer.kid: self.signer.public_key}, "this authority") if iss == self.issuer else None


def _matching_certificates(app: App, header: dict) -> list[Certificate]:
    # msal Python keeps the base64 padding on these thumbprints; JOSE says no padding: accept both
    x5t, x5t256 = (str(v).rstrip("=") if v else None for v in (header.get("x5t"), header.get("x5t#S256")))
    if x5t256:
        return [c for c in app.certificates if c.x5t_s256 == x5t256]
    if x5t:
        return [c for c in app.certificates if c.x5t == x5t]
    return list(app.certificates)


def _parse_form(request: Request):
    """The form body as a dict; duplicated parameters and bad encodings are refused."""
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return oauth_error("malformed_request", "The request body is not valid UTF-8 "
                           "(application/x-www-form-urlencoded, UTF-8 expected).", request)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return oauth_error("malformed_request", "The request body is not a valid form encoding "
                           "(percent-escapes must decode to UTF-8).", request)
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            return oauth_error("malformed_request", f"The parameter '{name[:40]}' is duplicated; each parameter "
                               "may appear once.", request)
        params[name] = value
    return params

