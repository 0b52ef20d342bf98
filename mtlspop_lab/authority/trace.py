"""The authority's record of every exchange, redacted at the door.

A learner wants to see each request a flow made: which listener, which
grant, which certificate, how long, what went wrong. The trace is that view
from the server side. Secrets are redacted *when the entry is made* (tokens
and assertions become ``eyJ0eXAi…[jwt 1234 chars, sha256:…]``), so no later
display path can leak them.

Every stored field is bounded (bodies :data:`MAX_BODY_CHARS`, paths
:data:`MAX_PATH_CHARS`, short facts 120-300 characters) and so is the whole
record: at most :data:`MAX_ENTRIES` entries and :data:`MAX_TRACE_CHARS`
characters, the oldest forgotten first. A client sending megabytes of junk
costs the trace a few kilobytes per request, never the request's size.
"""

from __future__ import annotations

import collections
import itertools
import json
import threading
import time
from dataclasses import asdict, dataclass

from ..redact import is_secret_field, redact_text, redact_token
from .server import Request, Response

MAX_BODY_CHARS = 4096
MAX_PATH_CHARS = 2048
MAX_ENTRIES = 20000
MAX_TRACE_CHARS = 8_000_000        # ~8 MB of text in all; typical entries are a few hundred characters
_MAX_DEPTH = 8                     # nesting kept from a JSON body (deeper: a placeholder)
_MAX_ITEMS = 64                    # members kept per object or array


@dataclass(frozen=True)
class TraceEntry:
    """One HTTP exchange (or one failed TLS handshake, ``method == "TLS"``) as the server saw it."""

    listener: str
    method: str
    path: str
    status: int
    elapsed_ms: float
    injected_delay_ms: float
    new_connection: bool
    client_cert_x5t: str | None
    grant_type: str | None
    client_id: str | None
    token_type: str | None
    error: str | None
    fault: str | None
    timestamp: float
    request_body: str | None = None
    response_body: str | None = None


def _safe(key, value, depth: int):
    """``value`` (the member ``key`` of a parsed body) pruned and redacted in one walk.

    A credential member (redact.SECRET_FIELDS) keeps only a redacted stand-in,
    whatever its type; a ``csr`` only its length; every other string goes
    through :func:`redact_text`. Objects and arrays keep at most
    ``_MAX_DEPTH`` levels and ``_MAX_ITEMS`` members per level, so a hostile
    body costs a bounded walk. Strings are kept whole until redacted (a secret
    cut in two might escape redaction) and cut only in the final line.
    """
    if is_secret_field(key) and value is not None:
        return redact_token(value if isinstance(value, str)
                            else _BODY_ENCODER.encode(_safe(None, value, depth)))
    if isinstance(value, str):
        return f"<CSR, {len(value)} base64 chars>" if key == "csr" else redact_text(value)
    if isinstance(value, dict):
        if depth >= _MAX_DEPTH:
            return f"<object, {len(value)} members>"
        members = {}
        for name, member in itertools.islice(value.items(), _MAX_ITEMS):
            name = str(name)[:200]
            members[name] = _safe(name, member, depth + 1)
        return members
    if isinstance(value, (list, tuple)):
        if depth >= _MAX_DEPTH:
            return f"<array, {len(value)} items>"
        return [_safe(key, item, depth + 1) for item in value[:_MAX_ITEMS]]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_text(str(value))     # anything else a caller put in a body: as redacted text


# one encoder for every body line (json.dumps with options builds a new encoder per call)
_BODY_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def redact_body(body) -> str | None:
    """A dict, bytes or text body as one safe line of at most ``MAX_BODY_CHARS`` characters."""
    if body is None:
        return None
    if isinstance(body, dict):
        return _BODY_ENCODER.encode(_safe(None, body, 0))[:MAX_BODY_CHARS]
    if isinstance(body, bytes):
        body = body[:MAX_BODY_CHARS].decode("utf-8", "replace")
    return redact_text(str(body))[:MAX_BODY_CHARS]


class Trace:
    """A bounded, thread-safe list of :class:`TraceEntry`."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_chars: int = MAX_TRACE_CHARS):
        self._lock = threading.Lock()
        self._entries: collections.deque = collections.deque()
        self._max_entries = max_entries
        self._max_chars = max_chars
        self._chars = 0                    # sum of _size() over the entries kept
        self._cleared_at = float("-inf")   # time.monotonic() of the last clear()

    def _append(self, entry: "TraceEntry") -> None:
        """Keep ``entry``; forget the oldest until both bounds hold (call with the lock held)."""
        self._entries.append(entry)
        self._chars += _size(entry)
        while self._entries and (len(self._entries) > self._max_entries or self._chars > self._max_chars):
            self._chars -= _size(self._entries.popleft())

    @property
    def size_chars(self) -> int:
        """Characters held by the trace's text fields (what ``MAX_TRACE_CHARS`` bounds)."""
        with self._lock:
            return self._chars

    def record(self, request: Request, response: Response, elapsed_ms: float, injected_delay_ms: float) -> None:
        if request.received_at < self._cleared_at:
            return   # arrived before clear(): a slow answer to an earlier experiment, not this one's
        info = response.info
        entry = TraceEntry(
            listener=request.listener[:64], method=request.method[:16],
            path=redact_text(request.target)[:MAX_PATH_CHARS],
            status=0 if response.reset else response.status, elapsed_ms=round(elapsed_ms, 3),
            injected_delay_ms=round(injected_delay_ms, 3), new_connection=request.new_connection,
            client_cert_x5t=request.client_cert_x5t,
            grant_type=_short(info.get("grant_type")), client_id=_short(info.get("client_id")),
            token_type=_short(info.get("token_type"), 40), error=_short(info.get("error"), 300),
            fault=_short(info.get("fault"), 120),
            timestamp=time.time(),
            request_body=redact_body(info.get("request_body")),
            response_body=redact_body(info["response_body"] if "response_body" in info
                                      else (response.body if response.status >= 400 else None)),
        )
        with self._lock:
            if request.received_at >= self._cleared_at:
                self._append(entry)

    def record_tls_failure(self, listener: str, reason: str) -> None:
        entry = TraceEntry(listener=listener, method="TLS", path="", status=0, elapsed_ms=0.0,
                           injected_delay_ms=0.0, new_connection=True, client_cert_x5t=None, grant_type=None,
                           client_id=None, token_type=None, error=f"TLS handshake failed: {reason}"[:300],
                           fault=None, timestamp=time.time())
        with self._lock:
            self._append(entry)

    def entries(self) -> list[TraceEntry]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget every entry, and every exchange already under way (its request came before)."""
        with self._lock:
            self._cleared_at = time.monotonic()
            self._entries.clear()
            self._chars = 0

    def frame(self):
        """The entries as a pandas DataFrame (one row per exchange)."""
        import pandas as pd
        rows = [asdict(e) for e in self.entries()]
        columns = list(TraceEntry.__dataclass_fields__)
        df = pd.DataFrame(rows, columns=columns)
        if not df.empty:
            df["time"] = pd.to_datetime(df["timestamp"], unit="s", utc=True)
        return df

    def count(self, listener: str | None = None, path_contains: str | None = None,
              client_id: str | None = None) -> int:
        """HTTP exchanges (not TLS failures) on ``listener`` whose path contains ``path_contains``.

        ``client_id`` keeps only one client's requests: a test sharing the
        authority is then blind to a slow answer of an earlier test that is
        recorded late.
        """
        return sum(1 for e in self.entries()
                   if e.method != "TLS"
                   and (listener is None or e.listener == listener
                        or (listener == "regional" and e.listener.startswith("mtls:")))
                   and (path_contains is None or path_contains in e.path)
                   and (client_id is None or e.client_id == client_id))


def _short(value, limit: int = 120):
    if value is None:
        return None
    return redact_text(str(value))[:limit]


_OVERHEAD = 200      # the numbers, flags and object of one entry, counted as characters


def _size(entry: TraceEntry) -> int:
    return _OVERHEAD + sum(len(v) for v in (entry.listener, entry.method, entry.path, entry.client_cert_x5t,
                                            entry.grant_type, entry.client_id, entry.token_type, entry.error,
                                            entry.fault, entry.request_body, entry.response_body) if v)
