"""RetryPolicy: when and how long to wait before sending a request again.

Exponential backoff with full jitter on 429, 5xx, timeouts, dropped
connections and malformed answers; ``Retry-After`` is honoured (it wins
over the computed backoff); and both the number of attempts and the total
time are bounded, so a failing authority costs a known, small amount.

The retry loop lives in the transport, *below* msal: msal only sees the
final answer. That keeps msal's own throttling cache from replaying an old
error to a retry, and lets every attempt be timed and recorded.
"""

from __future__ import annotations

import datetime as _dt
import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and pacing of retries.

    ``max_attempts`` counts the first try (1 means never retry).
    ``base_delay_s`` doubles each retry up to ``max_delay_s``; full jitter
    picks uniformly in [0, that]. ``max_total_s`` caps the time spent waiting
    and sending; a ``Retry-After`` that would overrun it stops the retries.
    ``retry_connect_errors``: retry when the TCP connection cannot even be
    opened (off for IMDS, where "refused" means "not on Azure").
    """

    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_total_s: float = 30.0
    jitter: bool = True
    retry_connect_errors: bool = True

    @classmethod
    def none(cls) -> "RetryPolicy":
        """One attempt, no retry."""
        return cls(max_attempts=1)

    @classmethod
    def fast(cls, max_attempts: int = 3) -> "RetryPolicy":
        """Small delays for tests and notebooks (same logic, shorter waits)."""
        return cls(max_attempts=max_attempts, base_delay_s=0.01, max_delay_s=0.05, max_total_s=10.0)

    def backoff_s(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Delay before retry ``retry_number`` (1 for the first retry)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (retry_number - 1)))
        if not self.jitter:
            return ceiling
        return (rng or random).uniform(0, ceiling)

    def delay_s(self, retry_number: int, retry_after_s: float | None = None) -> float:
        """Backoff, or the server's Retry-After when it asks for longer."""
        delay = self.backoff_s(retry_number)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return delay


def parse_retry_after(value: str | None, now: _dt.datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return max(0.0, (when - (now or _dt.datetime.now(_dt.timezone.utc))).total_seconds())
