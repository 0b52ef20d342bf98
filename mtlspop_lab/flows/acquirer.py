"""MtlsPopTokenAcquirer: the guide's vanilla flow, one call for a token, by any identity.

    acq = MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.system_assigned(), cloud=cloud)
    acq = MtlsPopTokenAcquirer.for_confidential_client(client_id, tenant_id, certificate, cloud=cloud)
    result = acq.acquire_token("https://graph.microsoft.com", use_pop=True)

The acquirer owns a binding-aware :class:`~mtlspop_lab.flows.cache.TokenCache`
(pass ``cache=`` to share one) and its transports; reuse it, as the guide
advises: a new acquirer pays discovery and new TLS connections again.
``cloud=None`` targets live Entra ID and IMDS.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import replace

from ..cloud import Cloud
from ..errors import ConfigurationError
from ..transport import record
from ..transport.retry import RetryPolicy
from .cache import TokenCache
from .confidential import ConfidentialClientFlow
from .identity import ManagedIdentityId
from .managed_identity import MIN_CERT_LIFETIME, ManagedIdentityFlow
from .result import IDENTITY_PROVIDER, TokenResult


def check_resource(resource) -> str:
    if not isinstance(resource, str) or not resource.strip():
        raise ConfigurationError("A resource is required.", cause=f"Got {resource!r}.",
                                 fix='Pass the resource URI, e.g. "https://graph.microsoft.com".',
                                 code="invalid_resource")
    resource = resource.strip()
    if " " in resource:
        raise ConfigurationError(f"{resource[:80]!r} is not one resource URI.",
                                 fix="Acquire one token per resource.", code="invalid_resource")
    return resource


class MtlsPopTokenAcquirer:
    """Vanilla token acquisition (Bearer or mTLS PoP) for a managed identity or a confidential client."""

    def __init__(self, flow, *, cache: TokenCache | None = None):
        self._flow = flow
        self.cache = cache if cache is not None else TokenCache()

    @classmethod
    def for_managed_identity(cls, identity: ManagedIdentityId, *, cloud: Cloud | None = None,
                             retry: RetryPolicy | None = None, timeout=(2.0, 10.0),
                             cache: TokenCache | None = None,
                             min_certificate_lifetime: _dt.timedelta = MIN_CERT_LIFETIME,
                             attestation: bool = False) -> "MtlsPopTokenAcquirer":
        """SAMI or UAMI. Bearer through msal (IMDS v1), PoP through IMDS v2.

        ``attestation=True`` attests the IMDS v2 key at the platform's attestation endpoint
        before asking for a certificate: the lab's software stand-in for MSAL.NET's
        ``WithAttestationSupport()`` (KeyGuard + Microsoft Azure Attestation), embedded
        authority only (see :mod:`mtlspop_lab.flows.attestation`)."""
        return cls(ManagedIdentityFlow(identity, cloud=cloud, retry=retry, timeout=timeout,
                                       min_certificate_lifetime=min_certificate_lifetime,
                                       attestation=attestation), cache=cache)

    @classmethod
    def for_confidential_client(cls, client_id: str, tenant_id: str, certificate, *,
                                cloud: Cloud | None = None, region: str | None = None,
                                retry: RetryPolicy | None = None, timeout=(5.0, 15.0),
                                cache: TokenCache | None = None, send_x5c: bool = True) -> "MtlsPopTokenAcquirer":
        """An app registration with a certificate (with private key).

        ``region``: None (global, unless ``MSAL_FORCE_REGION`` is set), a region name, or
        ``"auto"``: ``REGION_NAME``, then IMDS's compute ``location``, as msal's region
        discovery does, else global with a note. ``acquirer.region_choice`` says which and why.
        ``send_x5c`` (msal's ``public_certificate``, MSAL.NET's ``WithSendX5C``): put the
        certificate in the Bearer client assertion's ``x5c`` header, which an app that trusts a
        subject name and issuer (instead of a thumbprint) needs. PoP uses the TLS handshake."""
        return cls(ConfidentialClientFlow(client_id, tenant_id, certificate, cloud=cloud, region=region,
                                          retry=retry, timeout=timeout, send_x5c=send_x5c), cache=cache)

    # -- the one call -----------------------------------------------------------------------
    def acquire_token(self, resource: str, use_pop: bool = True, *, force_refresh: bool = False) -> TokenResult:
        """A token for ``resource`` (e.g. ``https://graph.microsoft.com``): from the cache when a
        fresh one matches (same token type, same binding certificate), else from the identity provider.

        ``force_refresh=True`` (MSAL.NET's ``WithForceRefresh``) skips the cache and asks the
        identity provider even when a fresh token is cached; the new token replaces the cached
        one. Use it when a resource refused a token that still looks valid (revoked, claims
        changed), not on every call: it costs a round trip and counts against throttling.
        """
        return self._acquire(check_resource(resource), bool(use_pop), leg="token", flow="vanilla",
                             force_refresh=force_refresh)

    def _acquire(self, resource: str, use_pop: bool, *, leg: str, flow: str,
                 force_refresh: bool = False) -> TokenResult:
        start = time.perf_counter()
        with record(leg) as trips:
            result = self._flow.acquire(self.cache, resource, use_pop, trips=trips, flow=flow,
                                        force=bool(force_refresh))
        if result.source == IDENTITY_PROVIDER:
            result = replace(result, round_trips=tuple(trips),
                             elapsed_ms=(time.perf_counter() - start) * 1000)
        return result

    # -- facts and knobs ----------------------------------------------------------------------
    @property
    def is_managed_identity(self) -> bool:
        return isinstance(self._flow, ManagedIdentityFlow)

    @property
    def identity(self) -> str:
        return self._flow.describe()

    @property
    def cloud(self) -> Cloud:
        return self._flow.cloud

    @property
    def binding_strength(self) -> str:
        """What this acquirer's PoP tokens are bound to: an attested or unattested software key
        (managed identity), or the app's certificate (confidential client)."""
        if self.is_managed_identity:
            return self._flow.binding_strength
        return "software key: the app's certificate (as strong as where its private key is kept)"

    @property
    def region_choice(self):
        """Confidential client: the :class:`~mtlspop_lab.flows.region.RegionChoice` in use
        (region, source, reason); None for a managed identity (IMDS names its endpoint)."""
        return getattr(self._flow, "region_choice", None)

    @property
    def certificate(self):
        """The certificate PoP tokens are bound to (public part; None before an MI's first PoP token)."""
        cert = self._flow.certificate
        return cert.public_only() if cert is not None else None

    def rotate_certificate(self, certificate) -> None:
        """Confidential client: switch to a new certificate; cached PoP tokens of the old one stop matching."""
        if self.is_managed_identity:
            raise ConfigurationError("A managed identity's certificate is issued by IMDS v2.",
                                     fix="Use forget_issued_certificates() to force a new one.")
        self._flow.rotate_certificate(certificate)

    @property
    def round_trips(self) -> list:
        """Every round trip this acquirer's transports made (redacted), oldest first."""
        trips = [t for transport in self._flow.transports for t in transport.trace]
        return sorted(trips, key=lambda t: t.started_at)

    def close(self) -> None:
        self._flow.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<MtlsPopTokenAcquirer {self.identity} on {self.cloud.describe()}>"
