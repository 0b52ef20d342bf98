"""Client flows: the seed's vanilla and FIC two-leg flows, by every identity.

- :class:`ManagedIdentityId` - which managed identity (SAMI, UAMI by client/resource/object id)
- :class:`MtlsPopTokenAcquirer` - vanilla: one call, Bearer or mTLS PoP
- :class:`FicLeg1Acquirer`, :class:`FicLeg2Exchanger` - the two-leg exchange
- :class:`TokenResult` - token type, binding certificate, source, timed round trips
- :func:`call_resource` - mTLS + ``Authorization: mtls_pop <token>``
"""

from ..transport import RoundTrip
from .acquirer import MtlsPopTokenAcquirer
from .cache import CacheKey, TokenCache
from .fic import FicLeg1Acquirer, FicLeg2Exchanger
from .identity import ManagedIdentityId
from .managed_identity import forget_issued_certificates
from .resource import ResourceResponse, call_resource
from .result import TokenResult
from .retry import RetryPolicy

__all__ = ["ManagedIdentityId", "MtlsPopTokenAcquirer", "FicLeg1Acquirer", "FicLeg2Exchanger",
           "TokenResult", "RoundTrip", "call_resource", "ResourceResponse", "TokenCache", "CacheKey",
           "RetryPolicy", "forget_issued_certificates"]
