"""Confidential client with a certificate: vanilla Bearer and mTLS PoP, through msal.

msal 1.39 has no mTLS PoP API, but everything the flow needs is reachable
through its public surface:

* msal's authority is the **login host** (``https://login.X/{tenant}``), with
  ``instance_discovery=False``; msal reads its discovery document there;
* the ``http_client`` is a :class:`~mtlspop_lab.transport.Transport` that
  presents the app's certificate in every TLS handshake, behind a small
  :class:`MtlsTokenRoute` that does what MSAL's PoP code does (msal-python PR
  #938 ``msal/mtls.py``, MSAL.NET alike): the discovered token endpoint's host
  ``login.X`` becomes ``[region.]mtlsauth.X``, port and path kept. Live and
  against the local authority alike (its hosts are Entra-shaped);
* ``data={"token_type": "mtls_pop"}`` asks for a bound token, and the client
  assertion msal would add is removed from the body (``data`` wins over
  msal's defaults), because on the mTLS host the TLS handshake *is* the
  client authentication, as in MSAL.NET. msal still needs a
  ``client_credential`` to build an app, so the PoP app gets a placeholder
  assertion source (nothing is signed); the Bearer app gets the certificate
  (private_key_jwt on the login host).

After the answer, the lab checks ``token_type`` really is ``mtls_pop``: a
downgrade to Bearer raises :class:`~mtlspop_lab.errors.TokenTypeMismatchError`,
as MSAL.NET does.

Not testable here: live ``[region.]mtlsauth.microsoft.com`` itself. URL
construction for it is unit-tested, and the local authority serves the same
host names under its loopback domain.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit, urlunsplit

import msal

from ..certs import Certificate
from ..cloud import Cloud, check_tenant
from ..errors import AuthorityError, CertificateError, ConfigurationError, TokenTypeMismatchError
from ..redact import redact_text
from ..transport import Transport
from ..transport.retry import RetryPolicy
from .cache import CacheKey, TokenCache
from .diagnose import authority_error
from .msal_glue import DiscoveryOnlyHttpCache, NoStoreTokenCache, call_msal
from .region import resolve_region
from .result import TokenResult, expiry_from, lifetime_seconds, refresh_on_from

MTLS_POP = "mtls_pop"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_POP = "urn:ietf:params:oauth:client-assertion-type:jwt-pop"


def scope_for(resource: str) -> str:
    """``https://graph.microsoft.com`` -> ``https://graph.microsoft.com/.default``."""
    resource = resource.strip()
    return resource if resource.endswith("/.default") else resource.rstrip("/") + "/.default"


def last_status(trips) -> int | None:
    for trip in reversed(trips):
        if trip.kind == "token":
            return trip.status
    return None


def result_from_token_response(payload: dict, *, asked_pop: bool, certificate, endpoint: str,
                               trips, resource: str, **fields) -> TokenResult:
    """Check an OAuth token answer and build a TokenResult (raises typed errors)."""
    if not isinstance(payload, dict):
        raise malformed_answer(endpoint, "it is not a JSON object", status=last_status(trips))
    if "access_token" not in payload:
        raise authority_error(payload, status=last_status(trips), endpoint=endpoint)
    problem = token_payload_problem(payload)
    if problem:
        raise malformed_answer(endpoint, problem, status=last_status(trips))
    token_type = str(payload.get("token_type") or "Bearer")
    if asked_pop and token_type.lower() != MTLS_POP:
        raise TokenTypeMismatchError(
            f"You asked for token type mtls_pop, but received {token_type} from {endpoint}.",
            error="token_type_mismatch", code="token_type_mismatch", status=last_status(trips))
    if not asked_pop and token_type.lower() == MTLS_POP:
        raise TokenTypeMismatchError(
            f"You asked for a Bearer token, but received mtls_pop from {endpoint}.",
            error="token_type_mismatch", code="token_type_mismatch", status=last_status(trips))
    now = time.time()
    return TokenResult(
        access_token=payload["access_token"],
        token_type=MTLS_POP if asked_pop else "Bearer",
        expires_on=expiry_from(payload.get("expires_in"), now),
        refresh_on=refresh_on_from(payload, now),
        binding_certificate=certificate.public_only() if asked_pop else None,
        _credential=certificate if asked_pop else None,
        resource=resource, scope=scope_for(resource), round_trips=tuple(trips), **fields)


def token_payload_problem(payload: dict) -> str | None:
    """What is wrong with a successful-looking token answer, or None."""
    token = payload.get("access_token")
    if not isinstance(token, str) or not token.strip():
        return "access_token is missing, empty or not a string"
    if len(token) > 64_000 or any(c.isspace() for c in token):
        return "access_token is not a compact token"
    if payload.get("token_type") is not None and not isinstance(payload.get("token_type"), str):
        return "token_type is not a string"
    if "expires_in" in payload and lifetime_seconds(payload["expires_in"]) is None:
        return "expires_in is not a number of seconds between 0 and a year"
    return None


def malformed_answer(endpoint: str, problem: str, *, status: int | None = None) -> AuthorityError:
    return AuthorityError(
        f"The token endpoint {redact_text(endpoint)} answered with an unusable token response: {problem}.",
        cause="A faulty or impostor server, a proxy, or a protocol mismatch produced the answer.",
        fix="Check the authority URL and that nothing intercepts the connection; retry later.",
        code="malformed_response", status=status)


class MtlsTokenRoute:
    """msal ``http_client`` that sends token POSTs to the mTLS host, like MSAL's PoP code.

    msal discovers the token endpoint on the login host; a POST to it goes to
    the same path on ``mtls_base`` (``[region.]mtlsauth.X[:port]``, by
    MSAL's rule); discovery GETs stay on the login host.
    """

    def __init__(self, transport: Transport, mtls_base: str):
        self.transport = transport
        self._base = urlsplit(mtls_base)

    def _route(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.path.endswith("/oauth2/v2.0/token"):
            return urlunsplit((self._base.scheme, self._base.netloc, parts.path, parts.query, ""))
        return url

    def get(self, url, **kwargs):
        return self.transport.get(url, **kwargs)

    def post(self, url, **kwargs):
        return self.transport.post(self._route(url), **kwargs)

    def close(self) -> None:
        self.transport.close()


class _MsalApp:
    """One lazily built msal ConfidentialClientApplication over one Transport (thread-safe).

    ``authority`` is where the tokens come from (shown in results and errors).
    With ``login_authority``, msal is given that one (the login host, where
    discovery lives) and its token POSTs are routed to ``authority``'s host
    (:class:`MtlsTokenRoute`).
    """

    def __init__(self, client_id: str, authority: str, client_credential, transport: Transport,
                 azure_region: str | bool = False, *, login_authority: str | None = None):
        # False, not None: the lab resolves the region itself (flows/region.py); msal given None
        # would read MSAL_FORCE_REGION again and prefix the (already regional) host.
        self.client_id = client_id
        self.authority = authority
        self.transport = transport
        self._msal_authority = login_authority or authority
        parts = urlsplit(authority)
        self._http = (MtlsTokenRoute(transport, f"{parts.scheme}://{parts.netloc}")
                      if login_authority else transport)
        self._credential = client_credential
        self._region = azure_region
        self._app = None
        self._lock = threading.Lock()

    def get(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                self._app = call_msal(lambda: msal.ConfidentialClientApplication(
                    self.client_id, client_credential=self._credential, authority=self._msal_authority,
                    instance_discovery=False, http_client=self._http,
                    token_cache=NoStoreTokenCache(), http_cache=DiscoveryOnlyHttpCache(),
                    azure_region=self._region), endpoint=self._msal_authority, what="Authority discovery")
            return self._app

    def token_for_client(self, scope: str, data: dict) -> dict:
        return call_msal(lambda: self.get().acquire_token_for_client([scope], data=dict(data)),
                         endpoint=self.authority)


def certificate_credential(certificate, *, key_object: bool = False, send_x5c: bool = True) -> dict:
    """msal's ``client_credential`` for a lab Certificate (RS256 assertion with x5t and x5c).

    ``key_object=True`` hands msal the already-loaded key instead of PEM text: msal passes it
    unchanged to PyJWT, which accepts key objects, and this skips re-parsing the PEM
    (cryptography's RSA consistency check costs ~100 ms on each new app).
    """
    key = certificate.private_key if key_object else certificate.private_key_pem().decode("ascii")
    credential = {"private_key": key, "thumbprint": certificate.thumbprint}
    if send_x5c:        # msal then puts the chain in the assertion header's x5c (subject name + issuer trust)
        credential["public_certificate"] = certificate.pem
    return credential


def _no_assertion() -> str:
    """Assertion source of the PoP app: on the mTLS host the TLS handshake authenticates the
    client, and the request's ``data`` removes ``client_assertion`` from the body anyway."""
    return ""


class ConfidentialClientFlow:
    """Vanilla flow for an app registration with a certificate."""

    def __init__(self, client_id: str, tenant_id: str, certificate, *, cloud: Cloud | None = None,
                 region: str | None = None, retry: RetryPolicy | None = None,
                 timeout: float | tuple = (5.0, 15.0), send_x5c: bool = True):
        if not isinstance(client_id, str) or not client_id.strip():
            raise ConfigurationError("A client id is required.",
                                     fix="Pass the app registration's 'Application (client) ID'.")
        if not isinstance(certificate, Certificate):
            raise CertificateError(
                "A confidential client needs a lab Certificate with its private key.",
                cause=f"Got {type(certificate).__name__}.",
                fix="Load it with Certificate.load_pfx(path, password) or Certificate.load_pem(cert, key).",
                code="mtls_certificate_not_provided")
        certificate.check_usable()
        if cloud is not None and cloud.is_discovered:
            raise ConfigurationError(
                f"{cloud.describe()} is a generic RFC 8705 server, not an Entra-style authority.",
                cause="This flow follows Entra's rules (tenant paths, the mtlsauth host, "
                      "token_type=mtls_pop); a discovered server names its own endpoints.",
                fix="Use lab.CertificateBoundClient(client_id, certificate, cloud=cloud) for it.",
                code="not_an_entra_authority")
        self.cloud = cloud or Cloud.public()
        self.cloud.check_open()
        self._owns_cloud = cloud is None        # made here, so closed here
        self.client_id = client_id.strip()
        self.tenant_id = check_tenant(tenant_id)
        # region=None / "auto" / a name -> the region actually used, its source and why
        self.region_choice = resolve_region(region, self.cloud)
        self.region = self.region_choice.region
        self.retry = retry
        self.timeout = timeout
        self.send_x5c = bool(send_x5c)
        self.mtls_authority = f"{self.cloud.mtls_base_url(self.region)}/{self.tenant_id}"
        self.login_authority = self.cloud.authority_url(self.tenant_id)
        self._lock = threading.Lock()
        self._set_certificate(certificate)

    def _set_certificate(self, certificate) -> None:
        credential = certificate_credential(certificate, key_object=True, send_x5c=self.send_x5c)
        ca = self.cloud.ca_bundle
        pop_transport = Transport(certificate=certificate, ca_bundle=ca, retry=self.retry,
                                  timeout=self.timeout, name=f"mtls:{self.client_id[:8]}",
                                  pool=self.cloud.pool)
        bearer_transport = getattr(self, "_bearer", None)
        bearer_transport = bearer_transport.transport if bearer_transport is not None else Transport(
            ca_bundle=ca, retry=self.retry, timeout=self.timeout, name=f"login:{self.client_id[:8]}",
            pool=self.cloud.pool)
        live_region = self.region if not self.cloud.is_local and self.region else False
        with self._lock:
            self.certificate = certificate
            self._pop = _MsalApp(self.client_id, self.mtls_authority, {"client_assertion": _no_assertion},
                                 pop_transport, login_authority=self.login_authority)
            self._bearer = _MsalApp(self.client_id, self.login_authority, credential, bearer_transport,
                                    azure_region=live_region)

    def rotate_certificate(self, certificate) -> None:
        """Use a new certificate from now on (PoP tokens bound to the old one are not reused)."""
        certificate.check_usable()
        old = self._pop.transport
        self._set_certificate(certificate)
        old.close()

    @property
    def transports(self) -> list[Transport]:
        return [self._pop.transport, self._bearer.transport]

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        if self._owns_cloud:
            self.cloud.close()

    def describe(self) -> str:
        return f"app {self.client_id}"

    def region_fields(self, use_pop: bool) -> dict:
        """``region``, ``region_source`` and ``notes`` for a result of this flow.

        PoP goes to the (regional) mTLS host. Bearer goes to the login host: regional on a live
        cloud (msal's ``azure_region``), global on the embedded authority, which has no regional
        login listeners."""
        choice = self.region_choice
        if not use_pop and self.cloud.is_local:
            return {"region": None, "region_source": "global"}
        return {"region": choice.region, "region_source": choice.source,
                "notes": (choice.note,) if choice.note else ()}

    def cache_key(self, resource: str, use_pop: bool) -> CacheKey:
        if use_pop:
            return CacheKey(self.mtls_authority, self.client_id, scope_for(resource), MTLS_POP,
                            self.certificate.x5t_s256)
        return CacheKey(self.login_authority, self.client_id, scope_for(resource), "Bearer")

    def acquire(self, cache: TokenCache, resource: str, use_pop: bool, *, trips, flow: str,
                force: bool = False) -> TokenResult:
        self.cloud.check_open()
        with self._lock:      # one consistent (app, certificate, key) even during a rotation
            app, certificate = (self._pop if use_pop else self._bearer), self.certificate
            key = self.cache_key(resource, use_pop)

        def fetch() -> TokenResult:
            certificate.check_usable()        # expired since the acquirer was built: say so, do not send
            mark = len(trips)
            # mTLS host: the TLS handshake authenticates the client; no assertion on the wire.
            data = ({"token_type": MTLS_POP, "client_assertion": None, "client_assertion_type": None}
                    if use_pop else {})
            payload = app.token_for_client(scope_for(resource), data)
            return result_from_token_response(
                payload, asked_pop=use_pop, certificate=certificate, endpoint=app.authority,
                trips=trips[mark:], resource=resource, identity=self.describe(),
                client_id=self.client_id, tenant_id=self.tenant_id, flow=flow, cloud=self.cloud,
                **self.region_fields(use_pop))

        return cache.acquire(key, fetch, force=force)
