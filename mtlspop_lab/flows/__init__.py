"""Client flows: the guide's vanilla and FIC two-leg flows, by every identity.

- :class:`ManagedIdentityId` - which managed identity (SAMI, UAMI by client/resource/object id)
- :class:`MtlsPopTokenAcquirer` - vanilla: one call, Bearer or mTLS PoP
- :class:`FicLeg1Acquirer`, :class:`FicLeg2Exchanger` - the two-leg exchange
- :class:`FicAssertionProvider` - leg 1's token as a bound (jwt-pop) or unbound (jwt-bearer) assertion
- :class:`TokenResult` - token type, binding certificate, source, timed round trips
- :func:`call_resource` - mTLS + ``Authorization: mtls_pop <token>``
- :func:`acquire_with_fallback`, :func:`call_resource_with_fallback` - Bearer only
  where the resource refuses bound tokens, and only when the caller allows it

What msal does and what the lab adds: msal 1.39 sends every confidential-client
request (discovery, Bearer, PoP, FIC leg 2) and every IMDS v1 request; the lab
adds the mTLS transport, ``token_type=mtls_pop`` and the downgrade check, the
``jwt-pop`` assertion type, a binding-aware cache, and the IMDS v2 client
(msal has none).

``cloud=None`` means live Entra ID and IMDS. What cannot be tested on this
machine (no Azure, no internet) and is therefore only covered by unit tests of
URL and request construction: the real ``[region.]mtlsauth.microsoft.com``
hosts (including whether they serve OIDC discovery, which msal always does
first), a real IMDS v1/v2 (an Azure VM), real attestation (KeyGuard keys and MAA tokens: the lab's
``attestation=True`` is a software stand-in against its own attestation service),
sovereign clouds, and Entra's exact AADSTS codes for FIC mismatches (the
embedded authority uses the documented ones).
"""

from ..transport import RoundTrip
from ..transport.retry import RetryPolicy
from .acquirer import MtlsPopTokenAcquirer
from .cache import CacheKey, TokenCache
from .fallback import acquire_with_fallback, call_resource_with_fallback
from .fic import FicLeg1Acquirer, FicLeg2Exchanger
from .fic_assertion import ClientSignedAssertion, FicAssertionProvider
from .identity import ManagedIdentityId
from .managed_identity import close_issued_connections, forget_issued_certificates, issued_certificate_count
from .resource import ResourceResponse, call_resource
from .result import TokenResult

__all__ = ["ManagedIdentityId", "MtlsPopTokenAcquirer", "FicLeg1Acquirer", "FicLeg2Exchanger",
           "FicAssertionProvider", "ClientSignedAssertion",
           "TokenResult", "RoundTrip", "call_resource", "ResourceResponse", "TokenCache", "CacheKey",
           "RetryPolicy", "forget_issued_certificates", "close_issued_connections",
           "issued_certificate_count", "acquire_with_fallback", "call_resource_with_fallback"]
