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
  issuer URL (leg 1 sent unbound, a managed identity's token as in Entra's "managed identity as a
  federated credential" - what azure-identity's ``ClientAssertionCredential`` sends - or a
  Kubernetes or GitHub Actions token),
  trusted through the app's federated credentials (:mod:`.federation`).

``token_type=mtls_pop`` asks for a token bound to the TLS client certificate
(``cnf.x5t#S256``, RFC 8705 section 3); it needs that certificate, and a
resource that accepts bound tokens. Unknown parameters (msal's ``key_id``,
``client_info``) are ignored, as Entra does.

Every path starts with the tenant (id or name), and each tenant is its own
directory: an app registered in tenant A is unknown at tenant B's endpoint
(AADSTS700016), and a token carries the ``iss``/``tid`` of the tenant that
issued it. The discovery documents are in :mod:`.discovery`.
"""

from __future__ import annotations

import re
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from ..certs import Certificate
from ..cloud import UNTENANTED
from . import discovery
from .certificate_trust import CertificateTrust
from .directory import App, Directory
from .federation import FederatedAssertionCheck, IssuerKeys, looks_federated
from .oauth_errors import oauth_error
from .server import Request, Response
from .signing import Signer
from .tenants import Tenants
from .token_claims import app_token_claims, lifetime_for, refresh_in_for, sts_issuer

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_POP = "urn:ietf:params:oauth:client-assertion-type:jwt-pop"
ASSERTION_ALGORITHMS = ("RS256", "PS256", "ES256")   # what msal and MSAL.NET sign client assertions with
RESERVED_SCOPES = {"openid", "profile", "offline_access", "email"}

_TOKEN_PATH = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token/?$")
_DISCOVERY_PATH = re.compile(r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration/?$")
_V1_DISCOVERY_PATH = re.compile(r"^/(?P<tenant>[^/]+)/\.well-known/openid-configuration/?$")
_RFC8414_PATH = re.compile(r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/oauth-authorization-server/?$")
_INSTANCE_PATH = "/common/discovery/instance"
_JWKS_PATH = re.compile(r"^/(?P<tenant>[^/]+)/discovery/(v2\.0/)?keys/?$")


class TokenService:
    """Answers the token-service paths of the login, mTLS and regional hosts, for every tenant.

    ``base_urls()`` returns listener name -> base URL (the HTTPS token hosts
    and ``resource``), so documents name the right hosts and client
    assertions addressed to any token host are accepted. ``lifetime_s()`` is
    the current token lifetime knob. ``certificate_trust`` (set by the LocalAuthority):
    apps that trust a CA and subject name instead of thumbprints (:mod:`.certificate_trust`).
    """

    certificate_trust: CertificateTrust | None = None    # subject name + issuer trusts, when set
    federation: FederatedAssertionCheck | None = None   # set by LocalAuthority (its issuers' keys)

    def __init__(self, tenants: Tenants, signer: Signer, *, base_urls: Callable[[], dict],
                 lifetime_s: Callable[[], int], domain: str):
        self.tenants = tenants
        self.signer = signer
        self.base_urls = base_urls
        self.lifetime_s = lifetime_s
        self.domain = domain

    @property
    def directory(self) -> Directory:
        return self.tenants.home

    @property
    def tenant_id(self) -> str:
        return self.tenants.home.tenant_id

    @property
    def issuer(self) -> str:
        return self.tenants.home.issuer

    # -- routing ---------------------------------------------------------------------
    def handle(self, request: Request, *, downgrade: bool = False) -> Response:
        path = request.path
        read = request.method in ("GET", "HEAD")
        m = _TOKEN_PATH.match(path)
        if m:
            if request.method != "POST":
                return oauth_error("malformed_request", "The token endpoint accepts POST only.", request,
                                   status=405, headers={"Allow": "POST"})
            if m["tenant"].lower() in UNTENANTED:
                return oauth_error("missing_tenant", "Tenant-identifying information was not found in either "
                                   "the request or implied by any provided credentials. Use the tenant id of the "
                                   f"app registration instead of /{m['tenant'][:20]}.", request)
            directory = self.tenants.find(m["tenant"])
            if directory is None:
                return oauth_error("tenant_not_found", f"Tenant '{m['tenant'][:64]}' not found. Check to make "
                                   "sure you have the correct tenant ID and are signing into the correct cloud.",
                                   request)
            return self.token(request, directory, downgrade=downgrade)
        if path.rstrip("/") == _INSTANCE_PATH and read:
            return self.instance_discovery(request)
        for pattern, kind in ((_DISCOVERY_PATH, "v2"), (_V1_DISCOVERY_PATH, "v1"), (_RFC8414_PATH, "rfc8414")):
            m = pattern.match(path)
            if m and read:
                document = self.document(kind, m["tenant"], request.listener)
                if document is None:
                    return oauth_error("invalid_tenant", f"Tenant '{m['tenant'][:64]}' not found. Check to make "
                                       "sure you have the correct tenant ID and are signing into the correct "
                                       "cloud.", request)
                return Response.json(200, document)
        m = _JWKS_PATH.match(path)
        if m and read:
            return Response.json(200, self.signer.jwks)
        return Response.json(404, {"error": "not_found",
                                   "error_description": f"No such endpoint: {request.method} {path[:100]}"},
                             error="not found")

    def _login_base(self) -> str:
        return self.base_urls()["login"]

    def document(self, kind: str, tenant: str, listener: str = "login") -> dict | None:
        """A discovery document (``v2``, ``v1`` or ``rfc8414``) for ``tenant``; None if it is unknown.

        The v2 document names the login host's token endpoint, except when it
        is asked on another token host: then its own. On a regional login host
        (``{region}.login``) that is what msal's ``azure_region=`` needs: it posts
        to the token endpoint of the regional document it read. (Unconfirmed: no
        Microsoft source shows ESTS-R's own discovery document; the lab's choice
        is the one under which msal's regional requests stay regional.) On an mTLS host it
        is a lab convenience, so that msal pointed at an mTLS host posts there
        (Entra's clients derive the mTLS host by rule from the login host's document).
        """
        urls = self.base_urls()
        login = urls["login"]
        untenanted = tenant.lower() in ("common", "organizations")
        directory = None if untenanted else self.tenants.find(tenant)
        if directory is None and not (untenanted and kind == "v2"):
            return None
        tid = directory.tenant_id if directory is not None else tenant.lower()
        if kind == "v1":
            return discovery.v1_document(login_base=login, tenant=tid, domain=self.domain,
                                         issuer=sts_issuer(self.domain, directory.tenant_id))
        if kind == "rfc8414":
            return discovery.rfc8414_document(login_base=login, mtls_base=urls["mtls"], tenant=tid,
                                              issuer=directory.issuer)
        issuer = directory.issuer if directory is not None else self.tenants.issuer(discovery.TENANT_TEMPLATE)
        token_base = urls[listener] if listener.startswith(("mtls", "login:")) else login
        return discovery.v2_document(login_base=login, tenant=tid, issuer=issuer, domain=self.domain,
                                     api_base=urls.get("resource", login), token_base=token_base,
                                     region_scope="NA" if directory is not None else None)

    def instance_discovery(self, request: Request) -> Response:
        """``/common/discovery/instance``: api-version 1.1 ``authority_url`` (MSAL.NET) or 1.0
        ``authorization_endpoint`` (msal Python)."""
        query = dict(request.query_pairs)
        version = query.get("api-version")
        if not version:
            return oauth_error("missing_parameter", "The request body must contain the following parameter: "
                               "'api-version'.", request)
        target = query.get("authority_url") or query.get("authorization_endpoint")
        if not target:
            return oauth_error("missing_parameter", "The request body must contain the following parameter: "
                               "'authority_url'.", request)
        login = self._login_base()
        login_host = urlsplit(login).hostname
        try:
            asked_host = urlsplit(target).hostname
        except ValueError:
            asked_host = None
        found = discovery.tenant_discovery_endpoint(login, target) if asked_host == login_host else None
        if found is None:
            return oauth_error("invalid_instance", "Unknown or invalid instance.", request)
        _tenant, endpoint = found
        return Response.json(200, {"tenant_discovery_endpoint": endpoint, "api-version": version,
                                   "metadata": discovery.instance_metadata(login_host, [login_host])})

    # -- the token endpoint ------------------------------------------------------------
    def token(self, request: Request, directory: Directory | None = None, *, downgrade: bool = False) -> Response:
        directory = directory or self.tenants.home
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
            return refuse("unsupported_grant_type", f"The app requested an unsupported grant type "
                          f"'{params['grant_type'][:40]}'. (The lab supports client_credentials only.)")
        resource = self._resource_for_scope(params["scope"], directory)
        if isinstance(resource, str):
            kind, text = resource.split("|", 1)
            return refuse(kind, text)
        token_type = params.get("token_type", "").lower() or "bearer"
        if token_type not in ("bearer", "mtls_pop"):
            return refuse("malformed_request", f"token_type '{token_type[:30]}' is not supported; use mtls_pop or omit it.")
        wants_pop = token_type == "mtls_pop"
        client_id = params["client_id"]
        tls_x5t = request.client_cert_x5t

        # -- who is the client? ----------------------------------------------------------
        assertion_type = params.get("client_assertion_type")
        principal = None
        if assertion_type is not None or "client_assertion" in params:
            if not params.get("client_assertion"):
                return refuse("missing_parameter", "The request body must contain the following parameter: 'client_assertion'.")
            if assertion_type == JWT_BEARER and looks_federated(params["client_assertion"], client_id):
                principal = self._check_federated(params["client_assertion"], client_id, tls_x5t, directory,
                                                  refuse, bound=False, wants_pop=wants_pop)
            elif assertion_type == JWT_BEARER:
                principal = self._check_client_assertion(params["client_assertion"], client_id, directory,
                                                         refuse)
            elif assertion_type == JWT_POP:
                principal = self._check_federated(params["client_assertion"], client_id, tls_x5t, directory,
                                                  refuse, bound=True, wants_pop=wants_pop)
            elif not assertion_type:
                return refuse("missing_parameter", "The request body must contain the following parameter: 'client_assertion_type'.")
            else:
                return refuse("malformed_request", f"client_assertion_type '{assertion_type[:80]}' is not supported; "
                              f"use {JWT_BEARER} or {JWT_POP}.")
        elif "client_secret" in params:
            return refuse("client_secret_not_supported", "Client secrets are not accepted by the lab's authority; "
                          "authenticate with a certificate (TLS client certificate or client assertion).")
        else:
            principal = self._check_tls_client(client_id, tls_x5t, request, directory, refuse)
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
        is_app = isinstance(principal, App)
        lifetime = lifetime_for(managed_identity=not is_app, fixed=self.lifetime_s())
        oid, mi_res = principal.object_id, (None if is_app else principal.resource_id)
        claims = app_token_claims(version=resource.token_version, domain=self.domain, issuer_v2=directory.issuer,
                                  tenant_id=directory.tenant_id, audience=resource.audience, object_id=oid,
                                  client_id=client_id, lifetime_s=lifetime, cnf_x5t_s256=tls_x5t if bind else None,
                                  mi_resource_id=mi_res, roles=directory.roles_of(oid, resource))
        token = self.signer.mint(claims)
        expires_in = max(lifetime - 1, 1)
        body = {"token_type": "mtls_pop" if bind else "Bearer", "expires_in": expires_in,
                "ext_expires_in": expires_in}
        if refresh_in_for(expires_in):
            body["refresh_in"] = refresh_in_for(expires_in)
        body["access_token"] = token
        headers = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
        if request.header("client-request-id"):
            headers["client-request-id"] = request.header("client-request-id")
        info["token_type"] = body["token_type"]
        info["response_body"] = {"token_type": body["token_type"], "expires_in": expires_in,
                                 "aud": claims["aud"], "cnf": claims.get("cnf"), "access_token": token}
        return Response.json(200, body, headers, **info)

    def _resource_for_scope(self, scope: str, directory: Directory):
        scopes = [s for s in scope.split() if s not in RESERVED_SCOPES]
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return ("invalid_scope|The provided value for scope "
                    f"'{scope[:100]}' is not valid. Client credential flows must have a scope value "
                    "with /.default suffixed to the resource identifier (application ID URI).")
        resource = directory.find_resource(scopes[0])
        if resource is None:
            return (f"resource_not_found|The resource principal named {scopes[0][:-len('/.default')][:100]} "
                    f"was not found in the tenant named {directory.tenant_id}. This can happen if the application "
                    "has not been installed by the administrator of the tenant or consented to by any user in the "
                    "tenant. You might have sent your authentication request to the wrong tenant.")
        return resource

    # -- client authentication ----------------------------------------------------------
    def _check_tls_client(self, client_id: str, tls_x5t: str | None, request: Request, directory: Directory,
                          refuse):
        if tls_x5t is None:
            where = ("this listener does not request client certificates; use the mTLS endpoint"
                     if not request.listener.startswith("mtls") else "no TLS client certificate was presented")
            return refuse("no_client_credential", "'client_assertion', 'client_secret' or 'request' is required "
                          f"for the 'client_credentials' grant type. ({where}.)")
        app = directory.find_app(client_id)
        if app is not None:
            if app.has_certificate_x5t(tls_x5t):
                return app
            sn_trust = self._subject_name_trust(app)
            if sn_trust is not None:      # SN+I: the handshake's certificate, checked by chain
                refused = sn_trust.check_tls(app.client_id, request.client_cert_der or b"")
                return app if refused is None else refuse(*refused)
            return refuse("certificate_not_registered", f"The TLS client certificate (x5t#S256 {tls_x5t}) is not "
                          f"registered for application '{client_id}'. Register it on the app or present the registered one.")
        mi = directory.managed_identity_by_client_id(client_id)
        if mi is not None:
            if directory.issued_to(tls_x5t) == client_id:
                return mi
            return refuse("certificate_not_registered", f"The TLS client certificate (x5t#S256 {tls_x5t}) was not "
                          f"issued by IMDS to managed identity '{client_id}'. Mint one with issuecredential.")
        return refuse("app_not_found", _app_not_found(client_id, directory))

    def _audiences(self, directory: Directory) -> list[str]:
        return [f"{base}/{directory.tenant_id}/oauth2/v2.0/token"
                for name, base in self.base_urls().items() if name != "resource"] + [directory.issuer]

    def _subject_name_trust(self, app: App) -> CertificateTrust | None:
        """The trust store when ``app`` trusts a subject name and issuer, else None."""
        trust = self.certificate_trust
        return trust if trust is not None and trust.trusts_for(app.client_id) else None

    def _check_client_assertion(self, assertion: str, client_id: str, directory: Directory, refuse):
        """private_key_jwt: an assertion signed by one of the app's registered certificates."""
        app = directory.find_app(client_id)
        if app is None:
            return refuse("app_not_found", _app_not_found(client_id, directory))
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
        unnamed_x5c = "x5c" in header and not (header.get("x5t") or header.get("x5t#S256"))
        sn_trust = self._subject_name_trust(app)
        if (not candidates or unnamed_x5c) and sn_trust is not None:   # SN+I: the x5c leaf
            found = sn_trust.check_assertion_header(app.client_id, header)
            if isinstance(found, tuple):
                return refuse(*found)
            candidates = [found]
        if not candidates:
            thumb = str(header.get("x5t#S256") or header.get("x5t") or "none")[:64]
            return refuse("certificate_not_registered", "The certificate with identifier used to sign the client "
                          f"assertion is not registered on application. [Reason - The key was not found., "
                          f"Thumbprint of key used by client: '{thumb}'] (application '{client_id}')")
        last_error = None
        for cert in candidates:
            if (alg == "ES256") != isinstance(cert.x509.public_key(), ec.EllipticCurvePublicKey):
                continue
            try:
                claims = jwt.decode(assertion, cert.x509.public_key(),  # type: ignore[arg-type]
                                    algorithms=[alg], audience=self._audiences(directory),
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
                              f"expected {self._audiences(directory)[0]}.")
            except jwt.exceptions.MissingRequiredClaimError as exc:
                return refuse("assertion_malformed", f"The client assertion lacks the required claim '{exc.claim}'.")
            except jwt.exceptions.PyJWTError:
                return refuse("assertion_malformed", "JWT token is invalid or malformed (client_assertion).")
            if claims.get("iss") != client_id or claims.get("sub") != client_id:
                return refuse("assertion_subject", "Client assertion application identifier (iss/sub) doesn't match "
                              "'client_id' parameter.")
            return app
        return refuse("assertion_signature", "Client assertion failed signature validation. "
                      f"[Reason - {'the signature does not verify' if last_error else 'the key type does not match alg'}"
                      f", application '{client_id}']")

    def _check_federated(self, assertion: str, client_id: str, tls_x5t: str | None, directory: Directory,
                         refuse, *, bound: bool, wants_pop: bool):
        """FIC leg 2 (``jwt-pop``, bound) or a federated ``jwt-bearer`` assertion (see :mod:`.federation`).

        The app is looked up in the tenant of the endpoint (leg 2 at tenant B's endpoint is tenant B's
        app); the assertion may come from any tenant of the authority or an external issuer.
        """
        app = directory.find_app(client_id)
        if app is None:
            return refuse("app_not_found", _app_not_found(client_id, directory) +
                          " Leg 2 must be a confidential client app of this tenant.")
        check = self.federation or FederatedAssertionCheck(IssuerKeys(self._own_issuer_keys))
        return check.check(assertion, app, tls_x5t=tls_x5t, bound=bound, wants_pop=wants_pop, refuse=refuse)

    def _own_issuer_keys(self, iss: str):
        """The authority's key, for tokens any of its tenants issued."""
        tenant = self.tenants.by_issuer(iss) or self.tenants.by_sts_issuer(iss, self.domain)
        if tenant is None:
            return None
        return {self.signer.kid: self.signer.public_key}, "this authority", tenant.tenant_id


def _app_not_found(client_id: str, directory: Directory) -> str:
    return (f"Application with identifier '{client_id[:64]}' was not found in the directory "
            f"'{directory.tenant_id}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant. You might have sent your "
            "authentication request to the wrong tenant.")


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

