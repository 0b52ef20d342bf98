"""A binding-aware token cache with single flight.

Why not msal's cache: msal 1.39 keys access tokens by client, authority,
scope and (only when given) ``key_id``, but not by ``token_type``; a PoP
token cached with ``data={"token_type": "mtls_pop", "key_id": ...}`` is later
served to a plain Bearer request for the same scope (the test suite shows
it). MSAL.NET keeps the two apart and matches PoP entries on the binding
certificate's x5t#S256. This cache does the same, by construction: the key
is ``(authority, client, scope, token_type, key_id)`` and a Bearer key has
``key_id == ""``, so no lookup can cross the line.

Freshness follows msal: an entry is *fresh* until 5 minutes before expiry
(or its ``refresh_on``); an *aging* entry triggers a refresh but is still
served if the refresh fails; an *expired* one never is.

Single flight: identical acquisitions started together share one request
(the first caller fetches, the others wait for its answer); different keys
proceed in parallel. Thread-safe.

Force refresh (MSAL.NET's ``WithForceRefresh``, msal's ``force_refresh``):
``acquire(key, fetch, force=True)`` skips the fresh entry and asks the
identity provider once; forced callers of the same key started together
share that one request (a forced flight of its own, so a forced caller never
settles for a cached answer), and the new token replaces the entry. A failed
forced request raises: the caller asked not to be served the old token.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .result import TokenResult

REFRESH_MARGIN_S = 300.0   # msal: "if expires_in < 5*60: consider it expired"


@dataclass(frozen=True)
class CacheKey:
    """Where a token may be reused. ``key_id`` is the binding certificate's x5t#S256 ('' for Bearer)."""

    authority: str
    client: str
    scope: str
    token_type: str
    key_id: str = ""

    def __post_init__(self):
        object.__setattr__(self, "token_type", self.token_type.lower())
        object.__setattr__(self, "scope", self.scope.lower())
        if self.token_type == "bearer" and self.key_id:
            raise ValueError("A Bearer cache key has no key_id")
        if self.token_type == "mtls_pop" and not self.key_id:
            raise ValueError("An mtls_pop cache key needs the binding certificate's x5t#S256")


class _Flight:
    __slots__ = ("event", "result", "error")

    def __init__(self):
        self.event = threading.Event()
        self.result = None
        self.error = None


class TokenCache:
    """In-memory, thread-safe, binding-aware."""

    def __init__(self, refresh_margin_s: float = REFRESH_MARGIN_S):
        self.refresh_margin_s = refresh_margin_s
        self._entries: dict[CacheKey, TokenResult] = {}
        self._flights: dict[tuple[CacheKey, bool], _Flight] = {}
        self._lock = threading.Lock()

    # -- plain access --------------------------------------------------------------------------
    def get(self, key: CacheKey) -> TokenResult | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: CacheKey, result: TokenResult) -> None:
        if result.token_type.lower() != key.token_type:
            raise ValueError("token_type of the result does not match the cache key")
        if key.key_id and (result.binding_certificate is None
                           or result.binding_certificate.x5t_s256 != key.key_id):
            raise ValueError("the result is not bound to the cache key's certificate")
        with self._lock:
            self._entries[key] = result

    def remove(self, key: CacheKey) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keys(self) -> list[CacheKey]:
        with self._lock:
            return list(self._entries)

    def state(self, result: TokenResult | None, now: float | None = None) -> str:
        """``absent``, ``fresh``, ``aging`` (refresh, but usable) or ``expired``."""
        if result is None:
            return "absent"
        now = now if now is not None else time.time()
        expires = result.expires_on.timestamp()
        if expires <= now:
            return "expired"
        if expires - now < self.refresh_margin_s:
            return "aging"
        if result.refresh_on is not None and result.refresh_on.timestamp() <= now:
            return "aging"
        return "fresh"

    # -- the one entry point flows use ---------------------------------------------------------
    def acquire(self, key: CacheKey, fetch: Callable[[], TokenResult], *, force: bool = False) -> TokenResult:
        """Serve a fresh entry, or fetch once for all concurrent callers of ``key``.

        ``fetch`` returns a :class:`TokenResult` from the identity provider.
        If it raises while an aging (still valid) entry exists, that entry is
        served instead; otherwise the error propagates to every waiter.
        ``force=True`` ignores the entry (fresh or aging) and always fetches,
        once for all forced callers of ``key`` in flight together.
        """
        start = time.perf_counter()
        force = bool(force)
        cached = self.get(key)
        if not force and self.state(cached) == "fresh":
            return cached.cached_copy(_ms_since(start))
        with self._lock:
            flight = self._flights.get((key, force))
            leader = flight is None
            if leader:
                flight = self._flights[(key, force)] = _Flight()
        if not leader:
            flight.event.wait()
            if flight.error is not None:
                raise _own_copy(flight.error)
            return flight.result.cached_copy(_ms_since(start))
        try:
            flight.result = self._fetch(key, fetch, start, force)
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[(key, force)]
            flight.event.set()

    def _fetch(self, key, fetch, start, force: bool = False) -> TokenResult:
        if force:                       # asked to bypass the cache: no fallback to the old entry
            result = fetch()
            self.put(key, result)
            return result
        cached = self.get(key)          # another flight may have just filled it
        state = self.state(cached)
        if state == "fresh":
            return cached.cached_copy(_ms_since(start))
        try:
            result = fetch()
        except Exception:
            if state == "aging":        # still valid: serve it while the authority fails
                return cached.cached_copy(_ms_since(start))
            raise
        self.put(key, result)
        return result


def _own_copy(error: BaseException) -> BaseException:
    """A copy of the leader's error for a waiting thread, so threads never share one traceback."""
    try:
        twin = copy.copy(error)
    except Exception:  # noqa: BLE001 - an exception type that cannot be copied: share it
        return error
    return twin if type(twin) is type(error) else error


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000
