"""The client side's wire: mTLS HTTP with the lab's own trust, bounded retries, timed round trips.

- :mod:`.http` - :class:`Transport` (one TLS identity + one trust anchor, msal's
  ``http_client`` shape), :class:`RoundTrip` records and :func:`record`.
- :mod:`.retry` - :class:`RetryPolicy`: backoff with jitter, ``Retry-After``, bounded.
- :mod:`.sequence` - round trips drawn as a Mermaid sequence diagram.
"""

from .http import (
                   RoundTrip,
                   Transport,
                   build_ssl_context,
                   classify_path,
                   is_connect_failure,
                   record,
                   shared_ssl_context,
                   transport_error,
)
from .retry import RetryPolicy
from .sequence import SequenceDiagram, sequence_diagram

__all__ = ["Transport", "RoundTrip", "record", "RetryPolicy", "SequenceDiagram", "sequence_diagram",
           "build_ssl_context", "shared_ssl_context", "classify_path", "is_connect_failure",
           "transport_error"]
