"""The authority's record of every exchange, redacted at the door.

A learner wants to see each request a flow made: which listener, which
grant, which certificate, how long, what went wrong. The trace is that view
from the server side. Secrets are redacted *when the entry is made* (tokens
and assertions become ``eyJ0eXAi…[jwt 1234 chars, sha256:…]``), so no later
display path can leak them.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from dataclasses import asdict, dataclass

from ..certs import x5t_s256_of_der
from ..redact import is_secret_field, redact_text, redact_token
from .server import Request, Response


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


def _redact_value(key, value) -> object:
    """A parsed body's value, redacted by its member name (redact.SECRET_FIELDS) and then by its content."""
    if is_secret_field(key) and value is not None:
        return redact_token(value if isinstance(value, str) else json.dumps(value, default=str))
    if key == "csr" and isinstance(value, str):
        return f"<CSR, {len(value)} base64 chars>"
    if isinstance(value, dict):
        return {k: _redact_value(k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(key, v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_body(body) -> str | None:
    """A dict, bytes or text body as one safe line."""
    if body is None:
        return None
    if isinstance(body, dict):
        return json.dumps({k: _redact_value(k, v) for k, v in body.items()}, separators=(",", ":"), ensure_ascii=False)
    if isinstance(body, bytes):
        body = body[:4096].decode("utf-8", "replace")
    return redact_text(str(body))[:4096]


class Trace:
    """A bounded, thread-safe list of :class:`TraceEntry`."""

    def __init__(self, max_entries: int = 20000):
        self._lock = threading.Lock()
        self._entries: collections.deque = collections.deque(maxlen=max_entries)
        self._cleared_at = float("-inf")   # time.monotonic() of the last clear()

    def record(self, request: Request, response: Response, elapsed_ms: float, injected_delay_ms: float) -> None:
        if request.received_at < self._cleared_at:
            return   # arrived before clear(): a slow answer to an earlier experiment, not this one's
        info = response.info
        entry = TraceEntry(
            listener=request.listener, method=request.method, path=redact_text(request.target)[:2048],
            status=0 if response.reset else response.status, elapsed_ms=round(elapsed_ms, 3),
            injected_delay_ms=round(injected_delay_ms, 3), new_connection=request.new_connection,
            client_cert_x5t=x5t_s256_of_der(request.client_cert_der) if request.client_cert_der else None,
            grant_type=_short(info.get("grant_type")), client_id=_short(info.get("client_id")),
            token_type=info.get("token_type"), error=_short(info.get("error"), 300), fault=info.get("fault"),
            timestamp=time.time(),
            request_body=redact_body(info.get("request_body")),
            response_body=redact_body(info["response_body"] if "response_body" in info
                                      else (response.body if response.status >= 400 else None)),
        )
        with self._lock:
            if request.received_at >= self._cleared_at:
                self._entries.append(entry)

    def record_tls_failure(self, listener: str, reason: str) -> None:
        entry = TraceEntry(listener=listener, method="TLS", path="", status=0, elapsed_ms=0.0,
                           injected_delay_ms=0.0, new_connection=True, client_cert_x5t=None, grant_type=None,
                           client_id=None, token_type=None, error=f"TLS handshake failed: {reason}"[:300],
                           fault=None, timestamp=time.time())
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[TraceEntry]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget every entry, and every exchange already under way (its request came before)."""
        with self._lock:
            self._cleared_at = time.monotonic()
            self._entries.clear()

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
