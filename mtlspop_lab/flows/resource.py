"""call_resource: the guide's ResourceCaller.

A bound token is only usable together with its certificate: the request goes
over mTLS presenting the binding certificate, with ``Authorization: mtls_pop
<token>``. A Bearer token is sent as ``Bearer`` (over mTLS too when a
certificate is given). A refusal (401/403) raises
:class:`~mtlspop_lab.errors.ResourceAccessError` carrying the resource's
``WWW-Authenticate`` reason, so "other certificate", "no certificate",
"Bearer scheme for a bound token" are told apart.

Transports are reused per (certificate, trust) from the pool of the cloud the
token came from (``result.cloud.pool``), so repeated calls keep their TLS
connection like an ``HttpClient`` would, and ``cloud.close()`` (or the local
authority's ``close()``) closes them. A result without a cloud gets a
connection for the one call, closed when it returns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import requests

from ..errors import CertificateError, ConfigurationError, ResourceAccessError
from ..pool import ReusePool
from ..redact import redact_text
from ..transport import Transport, record, transport_error
from ..transport.retry import RetryPolicy
from .result import TokenResult

_MAX_TRANSPORTS = 16      # per cloud: distinct (certificate, trust) pairs kept open



@dataclass(frozen=True)
class ResourceResponse:
    """The protected API's answer (status, headers, body) and the round trips it took."""

    status_code: int
    headers: dict
    text: str
    round_trips: tuple = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self):
        return json.loads(self.text)

    def __repr__(self) -> str:
        return f"<ResourceResponse {self.status_code} {redact_text(self.text[:120])!r}>"


def _transport(pool: ReusePool | None, certificate, ca_bundle) -> Transport:
    def make() -> Transport:
        return Transport(certificate=certificate, ca_bundle=ca_bundle, retry=RetryPolicy.none(),
                         expect_json=False, name="resource", pool=pool)

    if pool is None:
        return make()
    key = (certificate.x5t_s256 if certificate is not None else None, ca_bundle)
    return pool.get("resource_transport", key, make, limit=_MAX_TRANSPORTS)


def _reason(www_authenticate: str) -> str | None:
    match = re.search(r'error_description="([^"]*)"', www_authenticate or "")
    return match.group(1) if match else None


def call_resource(url: str, result: TokenResult, *, certificate=None, path: str = "",
                  method: str = "GET", ca_bundle: str | None = None, scheme: str | None = None,
                  timeout=(5.0, 15.0)) -> ResourceResponse:
    """Call a protected API with ``result``'s token, over mTLS with its binding certificate.

    ``certificate``: present this one instead (with key) - e.g. to show that a
    stolen token fails with another certificate. ``scheme``: override the
    Authorization scheme (``"Bearer"`` to show a bound token refused).
    ``ca_bundle``: trust for the API; defaults to the trust of the cloud the
    token came from (the system store for live clouds).
    """
    if not isinstance(result, TokenResult):
        raise ConfigurationError("call_resource needs a TokenResult.", cause=f"Got {type(result).__name__}.",
                                 fix="Pass the result of acquire_token() or exchange_assertion_for_access_token().")
    cert = certificate if certificate is not None else result._credential
    if cert is not None and not cert.has_private_key:
        raise CertificateError("The certificate to present has no private key.",
                               cause="A TLS client certificate needs its key for the handshake.",
                               fix="Pass the certificate loaded with its private key.",
                               code="cert_without_private_key")
    if ca_bundle is None and result.cloud is not None:
        ca_bundle = result.cloud.ca_bundle     # None for live clouds: the system trust
    target = url.rstrip("/") + ("/" + path.lstrip("/") if path else "")
    scheme = scheme or ("mtls_pop" if result.is_pop else "Bearer")
    if result.cloud is not None:
        result.cloud.check_open()      # authority_closed after the authority's close()
    pool = result.cloud.pool if result.cloud is not None else None
    transport = _transport(pool, cert, ca_bundle)
    with record("resource") as trips:
        try:
            response = transport.request(method, target, timeout=timeout,
                                         headers={"Authorization": f"{scheme} {result.access_token}"})
        except requests.RequestException as exc:
            raise transport_error(exc, target, what="the resource") from None
        finally:
            if pool is None:
                transport.close()       # nobody to reuse it: no socket outlives the call
    if response.status_code in (401, 403):
        www = response.headers.get("WWW-Authenticate", "")
        reason = redact_text(_reason(www) or response.reason or "refused")
        if response.status_code == 403:
            cause, fix, code = ("The identity has no permission on this resource (insufficient permissions).",
                                "Assign the app role the API requires to the identity, wait for it to propagate "
                                "(up to 5 minutes), then acquire a new token: a cached token keeps the roles "
                                "it was issued with.",
                                "insufficient_permissions")
        elif cert is not None and result.binding_certificate is not None \
                and cert.x5t_s256 != result.binding_certificate.x5t_s256:   # whatever its label says
            cause, fix, code = ("The token is bound to another certificate than the one presented.",
                                "Present the token's binding certificate (result.binding_certificate).",
                                "certificate_mismatch")
        elif result.is_pop and "does not accept certificate-bound" in reason:
            cause, fix, code = ("This resource accepts Bearer tokens only; a certificate-bound token is "
                                "refused even with the right certificate.",
                                "If the resource is known to be Bearer-only and replay risk is acceptable, "
                                "use lab.call_resource_with_fallback(..., allow_bearer=True); otherwise ask "
                                "the resource owner to accept bound tokens.", "bound_token_not_supported")
        elif not result.is_pop:
            cause, fix, code = ("The resource refused the Bearer token; it may require a bound token "
                                "(PoP not requested).", "Acquire with use_pop=True.", "pop_not_requested")
        else:
            cause, fix, code = (None, None, "invalid_token")
        raise ResourceAccessError(f"The resource refused the token (HTTP {response.status_code}): {reason}",
                                  status=response.status_code, error=code, cause=cause, fix=fix, code=code)
    return ResourceResponse(response.status_code, dict(response.headers), response.text, tuple(trips))
