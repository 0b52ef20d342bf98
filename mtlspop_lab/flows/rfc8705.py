"""RFC 8705 with any authorization server: certificate-bound tokens by client credentials over mTLS.

:class:`~mtlspop_lab.flows.MtlsPopTokenAcquirer` speaks Entra's dialect of
RFC 8705. A generic RFC 8705 server (oidc-provider, Keycloak, Authlib...)
differs in four ways that the Entra flow cannot absorb, so this module is
its own small client, built on the same pieces (real msal, the lab's
:class:`~mtlspop_lab.transport.Transport`, :class:`~mtlspop_lab.flows.TokenResult`):

1. **Discovery.** Entra's authority is ``{host}/{tenant}`` with metadata at
   ``{authority}/v2.0/.well-known/openid-configuration``; a generic issuer
   publishes ``{issuer}/.well-known/openid-configuration``. msal reads that
   with ``oidc_authority=`` (and checks the document's ``issuer``), so the
   metadata comes from :meth:`Cloud.from_discovery <mtlspop_lab.cloud.Cloud.from_discovery>`.
2. **mTLS endpoint aliases** (RFC 8705 section 5). The server keeps its
   ordinary token endpoint on server-auth TLS and publishes an mTLS one in
   ``mtls_endpoint_aliases``. msal 1.39 reads ``token_endpoint`` only; the
   lab's ``http_client`` here sends each request for an aliased endpoint to
   its alias, and changes nothing else.
3. **token_type.** An RFC 8705 server binds the token because the *client*
   is registered with ``tls_client_certificate_bound_access_tokens``, and
   answers ``token_type: Bearer`` (RFC 8705 section 3 keeps RFC 6750's
   scheme). Entra binds only when the *request* says
   ``token_type=mtls_pop`` (a Microsoft extension) and then labels the
   answer ``mtls_pop``. This client sends ``token_type=mtls_pop`` by default
   (``ask_mtls_pop``): Entra-like servers bind, and RFC 8705 servers ignore
   the unknown parameter (RFC 6749 section 3.2 says they must). Either way
   binding is decided by ``cnf.x5t#S256`` in the token
   (:func:`~mtlspop_lab.inspector.check_binding`), never by the label, and the
   result says so (:attr:`CertificateBoundResult.binding`, ``bound_by``).
4. **Resource.** Entra names the resource inside the scope
   (``<resource>/.default``); RFC 8707 servers take a ``resource``
   parameter and scopes of their own. Both are sent.

The client authenticates with the TLS handshake alone (``tls_client_auth``
or ``self_signed_tls_client_auth``): msal gets no client credential, so the
body carries ``client_id`` and nothing secret (RFC 8705 section 2).

:func:`compare_tokens` puts an Entra-style ``mtls_pop`` token and an RFC 8705
certificate-bound token side by side, for a notebook.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Iterable

import msal

from ..certs import Certificate
from ..cloud import Cloud
from ..errors import AuthorityError, CertificateError, ConfigurationError, TokenFormatError
from ..inspector import BindingVerdict, check_binding
from ..redact import redact_token
from ..transport import Transport, record
from ..transport.retry import RetryPolicy
from .cache import REFRESH_MARGIN_S
from .diagnose import authority_error
from .msal_glue import DiscoveryOnlyHttpCache, NoStoreTokenCache, call_msal
from .result import IDENTITY_PROVIDER, TokenResult, expiry_from

__all__ = ["CertificateBoundClient", "CertificateBoundResult"]



@dataclass(frozen=True, repr=False, eq=False)
class CertificateBoundResult(TokenResult):
    """A token from an RFC 8705 server, with the evidence of its binding.

    ``token_type`` is what the server said (usually ``Bearer``), so
    ``authorization_header`` is ``Bearer <token>`` as RFC 8705 resources
    expect. ``binding`` is :func:`~mtlspop_lab.inspector.check_binding` of the
    token against the client certificate; ``binding_certificate`` is set only
    when that verdict is bound.
    """

    binding: BindingVerdict | None = None

    @property
    def is_bound(self) -> bool:
        return self.binding is not None and self.binding.bound

    @property
    def bound_by(self) -> str:
        """How the binding was decided: by ``cnf``, never by ``token_type``."""
        if self.is_bound:
            return f"cnf.x5t#S256 (the server's token_type says {self.token_type})"
        return "not bound"

    def as_dict(self) -> dict:
        d = super().as_dict()
        d.update({"bound": self.is_bound, "bound_by": self.bound_by,
                  "binding_reason": self.binding.reason if self.binding is not None else None})
        return d

    def __repr__(self) -> str:
        cert = f" bound_to={self.binding_certificate.x5t_s256} (by cnf)" if self.is_bound else " unbound"
        return (f"<CertificateBoundResult token_type={self.token_type} source={self.source} "
                f"token={redact_token(self.access_token)}{cert} round_trips={len(self.round_trips)} "
                f"elapsed_ms={self.elapsed_ms:.1f}>")

    __str__ = __repr__


class _AliasingHttpClient:
    """msal's ``http_client``, sending requests for an aliased endpoint to its mTLS alias."""

    def __init__(self, transport: Transport, aliases: dict[str, str]):
        self.transport = transport
        self.aliases = dict(aliases)

    def get(self, url, **kwargs):
        return self.transport.get(self.aliases.get(url, url), **kwargs)

    def post(self, url, **kwargs):
        return self.transport.post(self.aliases.get(url, url), **kwargs)

    def close(self) -> None:
        self.transport.close()


def endpoint_aliases(cloud: Cloud) -> dict[str, str]:
    """``{ordinary endpoint URL: mTLS alias URL}`` from a discovered cloud's metadata."""
    aliases = cloud.metadata.get("mtls_endpoint_aliases") or {}
    return {cloud.metadata[name]: alias for name, alias in aliases.items()
            if isinstance(cloud.metadata.get(name), str) and isinstance(alias, str)}


class CertificateBoundClient:
    """Client credentials over mTLS with any RFC 8705 server; certificate-bound tokens.

        cloud = Cloud.from_discovery("https://as.example", ca_bundle="ca.pem")
        client = CertificateBoundClient("my-client", certificate, cloud=cloud)
        result = client.acquire_token("https://api.example", scopes=["api:read"])
        result.token_type, result.is_bound, result.bound_by

    One client holds one certificate, one msal application and one
    connection pool; reuse it. Tokens are cached per (resource, scopes) and
    never outlive the certificate they are bound to (a new certificate means
    a new client).

    ``require_binding``: refuse a token whose ``cnf`` does not name this
    certificate (or that is opaque). ``ask_mtls_pop``: also send Entra's
    ``token_type=mtls_pop`` (see the module docstring).
    """

    def __init__(self, client_id: str, certificate: Certificate, *, cloud: Cloud,
                 retry: RetryPolicy | None = None, timeout: float | tuple = (5.0, 15.0),
                 require_binding: bool = True, ask_mtls_pop: bool = True):
        if not isinstance(client_id, str) or not client_id.strip():
            raise ConfigurationError("A client id is required.",
                                     fix="Pass the client_id the server registered for this certificate.")
        if not isinstance(certificate, Certificate):
            raise CertificateError("An mTLS client needs a lab Certificate with its private key.",
                                   cause=f"Got {type(certificate).__name__}.",
                                   fix="Load it with Certificate.load_pem(cert, key) or load_pfx(path, password).",
                                   code="mtls_certificate_not_provided")
        certificate.check_usable()
        if not isinstance(cloud, Cloud) or not cloud.is_discovered:
            raise ConfigurationError(
                "CertificateBoundClient needs a cloud read from a discovery document.",
                cause="A generic RFC 8705 server's endpoints are published in its metadata; "
                      "Entra-style clouds derive them by MSAL's host rule instead.",
                fix="Use Cloud.from_discovery(issuer_url, ca_bundle=...), or MtlsPopTokenAcquirer "
                    "for Entra ID and the local authority.", code="not_a_discovered_cloud")
        self.client_id = client_id.strip()
        self.certificate = certificate
        self.cloud = cloud
        self._owns_cloud = False                # True when from_discovery() made the cloud
        self.require_binding = require_binding
        self.ask_mtls_pop = ask_mtls_pop
        self.transport = Transport(certificate=certificate, ca_bundle=cloud.ca_bundle, retry=retry,
                                   timeout=timeout, name=f"rfc8705:{self.client_id[:8]}", pool=cloud.pool)
        self._http = _AliasingHttpClient(self.transport, endpoint_aliases(cloud))
        self._app: msal.ConfidentialClientApplication | None = None
        self._cache: dict[tuple, CertificateBoundResult] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_discovery(cls, url: str, client_id: str, certificate: Certificate, *,
                       ca_bundle: str | None = None, **kwargs) -> "CertificateBoundClient":
        """Read the server's metadata at ``url`` and build a client for it."""
        client = cls(client_id, certificate, cloud=Cloud.from_discovery(url, ca_bundle=ca_bundle), **kwargs)
        client._owns_cloud = True
        return client

    @property
    def token_endpoint(self) -> str:
        """Where token requests go: the mTLS alias when the server publishes one."""
        return self.cloud.mtls_token_endpoint("")

    def _msal(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                issuer = self.cloud.issuer
                # No client_credential: the TLS handshake authenticates the client (RFC 8705 s2),
                # so the body carries client_id and no secret or assertion.
                self._app = call_msal(lambda: msal.ConfidentialClientApplication(
                    self.client_id, client_credential=None, oidc_authority=issuer,
                    http_client=self._http, token_cache=NoStoreTokenCache(),
                    http_cache=DiscoveryOnlyHttpCache()), endpoint=issuer, what="Authority discovery")
            return self._app

    def acquire_token(self, resource: str | None = None, *, scopes: Iterable[str] = (),
                      force_refresh: bool = False) -> CertificateBoundResult:
        """A certificate-bound token for ``resource`` (RFC 8707) and/or ``scopes``.

        Served from this client's cache while fresh (``force_refresh=True``: always a new
        token from the server, which then replaces the cached one). Raises
        :class:`~mtlspop_lab.errors.AuthorityError` when the server refuses,
        and (with ``require_binding``) when the token it issued is not bound
        to this client's certificate.
        """
        if isinstance(scopes, (str, bytes)):
            raise ConfigurationError("scopes must be a list of scope strings, not one string.",
                                     cause=f"Got {scopes[:60]!r}.", fix='Pass scopes=["api:read"].')
        scopes = tuple(scopes or ())
        if not all(isinstance(s, str) and s and " " not in s for s in scopes):
            raise ConfigurationError("scopes must be a list of scope strings without spaces.",
                                     cause=f"Got {scopes!r}.", fix='Pass scopes=["api:read"].')
        if resource is not None and (not isinstance(resource, str) or not resource.strip()):
            raise ConfigurationError("resource must be an absolute URI or None.", cause=f"Got {resource!r}.",
                                     fix='Pass the API identifier, e.g. "https://api.example".',
                                     code="invalid_resource")
        if resource is None and not scopes:
            raise ConfigurationError("Name a resource, scopes, or both.",
                                     fix='acquire_token("https://api.example", scopes=["api:read"])',
                                     code="invalid_resource")
        resource = resource.strip() if resource else None
        start = time.perf_counter()
        key = (resource, scopes)
        with self._lock:
            cached = self._cache.get(key)
        if not force_refresh and cached is not None and cached.expires_in > REFRESH_MARGIN_S:
            return cached.cached_copy((time.perf_counter() - start) * 1000)  # type: ignore[return-value]
        with record("token") as trips:
            data = {"resource": resource} if resource else {}
            if self.ask_mtls_pop:
                data["token_type"] = "mtls_pop"
            payload = call_msal(lambda: self._msal().acquire_token_for_client(list(scopes), data=data),
                                endpoint=self.token_endpoint)
        result = self._result(payload, resource, scopes, tuple(trips), (time.perf_counter() - start) * 1000)
        with self._lock:
            self._cache[key] = result
        return result

    def _result(self, payload: dict, resource, scopes, trips, elapsed_ms) -> CertificateBoundResult:
        status = next((t.status for t in reversed(trips) if t.method == "POST"), None)
        if "access_token" not in payload:
            raise authority_error(payload, status=status, endpoint=self.token_endpoint)
        token_type = str(payload.get("token_type") or "Bearer")
        try:
            verdict = check_binding(payload["access_token"], self.certificate)
        except TokenFormatError:
            verdict = None  # an opaque token: its binding is invisible to the client
        bound = verdict is not None and verdict.bound
        if self.require_binding and not bound:
            reason = (verdict.reason if verdict is not None else
                      "The token is opaque (not a JWT), so its binding cannot be seen by the client.")
            raise AuthorityError(
                f"{self.token_endpoint} issued a token that is not bound to this certificate: {reason}",
                error="token_not_bound", status=status,
                cause="The client is not registered with tls_client_certificate_bound_access_tokens, "
                      "the request did not reach the mTLS endpoint, or the server issues opaque tokens.",
                fix="Register the client for certificate-bound tokens and use the mTLS endpoint alias; "
                    "pass require_binding=False to accept unbound or opaque tokens knowingly.",
                code="token_not_bound")
        return CertificateBoundResult(
            access_token=payload["access_token"], token_type=token_type,
            expires_on=expiry_from(payload.get("expires_in")), source=IDENTITY_PROVIDER,
            binding_certificate=self.certificate.public_only() if bound else None,
            _credential=self.certificate if bound else None,
            round_trips=trips, elapsed_ms=elapsed_ms, resource=resource,
            scope=" ".join(scopes) or None, identity=f"client {self.client_id}",
            client_id=self.client_id, flow="rfc8705", cloud=self.cloud, binding=verdict)

    @property
    def round_trips(self) -> list:
        return list(self.transport.trace)

    def close(self) -> None:
        self.transport.close()
        if self._owns_cloud:
            self.cloud.close()

    def __enter__(self) -> "CertificateBoundClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<CertificateBoundClient {self.client_id} cert={self.certificate.x5t_s256} "
                f"on {self.cloud.describe()}>")
