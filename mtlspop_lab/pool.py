"""ReusePool: what the clients of one target share, released together by ``close()``.

Building an SSLContext reads the trust store and loads a private key (several
milliseconds), and a TLS connection costs a handshake: reusing them is what
makes a second acquirer or a second API call cheap. A module-level memo would
do that too, but it would keep keys and sockets alive after the user is done,
with nothing to close. So the reusable things live in a pool owned by the
object that stands for the target - a :class:`~mtlspop_lab.cloud.Cloud`
(``cloud.pool``) - and ``close()`` releases them: every pooled value that has
a ``close()`` is closed and the pool is emptied (a later use fills it again).

The pool knows nothing of HTTP: the transport layer stores its SSL contexts
and the resource caller its transports in it, each under a kind and a key.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


class ReusePool:
    """A bounded, thread-safe store of reusable values, grouped by kind; ``close()`` empties it.

    Each kind keeps at most ``limit`` values, the least recently used going
    first (and closed, when it can be).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kinds: dict[str, OrderedDict] = {}

    def get(self, kind: str, key: Hashable, make: Callable[[], T], *, limit: int) -> T:
        """The value stored under (``kind``, ``key``), made by ``make()`` on first use."""
        with self._lock:
            values = self._kinds.setdefault(kind, OrderedDict())
            if key in values:
                values.move_to_end(key)
                return values[key]
        value = make()                       # outside the lock: making may take milliseconds
        evicted = []
        with self._lock:
            values = self._kinds.setdefault(kind, OrderedDict())
            if key in values:                # another thread made one meanwhile: keep theirs
                evicted.append(value)
                value = values[key]
                values.move_to_end(key)
            else:
                values[key] = value
                while len(values) > limit:
                    evicted.append(values.popitem(last=False)[1])
        for old in evicted:
            _close(old)
        return value

    def close(self) -> None:
        """Close every pooled value that can be closed, and forget them all. Idempotent."""
        with self._lock:
            values = [v for kind in self._kinds.values() for v in kind.values()]
            self._kinds.clear()
        for value in values:
            _close(value)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(kind) for kind in self._kinds.values())

    def __repr__(self) -> str:
        with self._lock:
            sizes = ", ".join(f"{kind}={len(values)}" for kind, values in self._kinds.items())
        return f"<ReusePool {sizes or 'empty'}>"


def _close(value) -> None:
    close = getattr(value, "close", None)
    if callable(close):
        close()
