"""What the authority's listeners refuse to wait for, hold or guess.

The listeners (``server.py``) are a teaching authority on loopback, but a
notebook shares its machine with other processes and the authority must not
be the weakest thing on it. This module holds the three defences, apart from
the HTTP plumbing so each can be read and tested on its own:

* **Strict framing (RFC 9112).** A request whose body length is ambiguous is
  refused with 400 and the connection closed, because a server and a proxy
  in front of it that disagree on where a request ends is how requests are
  smuggled: two ``Content-Length`` fields, a ``Content-Length`` that is not
  plain digits (``+147``, ``1_47``: Python's ``int()`` accepts both), a
  ``Transfer-Encoding`` without ``chunked`` last, ``Transfer-Encoding`` next
  to ``Content-Length``, folded header lines (obs-fold), CR, LF or NUL inside
  a value, a header line that is not ``name: value``, and an HTTP/1.1
  request with no or several ``Host`` fields (RFC 9112 section 3.2).
* **Read deadlines.** A socket timeout bounds one ``recv``; a client feeding
  a byte every few seconds never trips it. :class:`DeadlineReader` bounds
  the *whole* read: the first request on a connection must arrive within
  :data:`FIRST_REQUEST_S`, a kept-alive connection may sit idle for
  :data:`IDLE_S`, and once a request has started its head must be complete
  within :data:`HEADER_S` and its body within :data:`BODY_S`. The latency
  lab's injected delays are server-side waits *after* a request is read, so
  they never count against these deadlines.
* **A connection cap.** :class:`ConnectionTable` is shared by every listener
  of one authority: at most :data:`MAX_CONNECTIONS` connections (one thread
  each). At the cap a new connection evicts the oldest connection that is
  only waiting for its client (in its TLS handshake, reading a request, or
  idle between requests); a connection whose request the server is working
  on is never evicted. Only when all of them are at work is the newcomer
  closed at once. So silent and slow clients cannot hold the authority's
  threads, and a normal client (which sends its request promptly) is served.
"""

from __future__ import annotations

import io
import re
import socket
import threading
import time

MAX_CONNECTIONS = 128          # per authority, all listeners together
FIRST_REQUEST_S = 20.0         # TCP accept (or TLS handshake) -> first byte of the first request
IDLE_S = 60.0                  # a kept-alive connection between requests
HEADER_S = 10.0                # first byte of a request -> end of its head
BODY_S = 30.0                  # the whole body (up to 1 MB)
WRITE_S = 60.0                 # one send of an answer to a client that does not read
MAX_HEADER_FIELDS = 100        # http.client refuses more than 100 too

_DIGITS = re.compile(r"[0-9]{1,12}")
_BAD_VALUE = re.compile(r"[\r\n\x00]")          # folded lines, or CR/LF/NUL smuggled inside a value
_SPACE_IN_NAME = re.compile(r"\s")


# -- framing ---------------------------------------------------------------------------------------
def framing_problem(message, request_version: str) -> tuple[int, str] | None:
    """``(status, description)`` when the request head is not unambiguous HTTP/1.1, else None.

    ``message`` is the ``email.message.Message`` that ``http.server`` parsed the
    head into; it keeps every field line (``raw_items``) and its parse defects.
    """
    if message.defects or message.get_payload():
        # a line without a colon, or with whitespace before it, ends email's header parsing early
        return 400, "A header line is not 'name: value' (RFC 9112 section 5)."
    framing: dict[str, list[str]] = {"host": [], "content-length": [], "transfer-encoding": []}
    for name, value in message.raw_items():          # one pass; http.client decoded them as latin-1
        if _BAD_VALUE.search(value):
            return 400, ("A header value is folded over several lines or holds CR, LF or NUL "
                         "(RFC 9112 section 5.2, RFC 9110 section 5.5).")
        if not name or _SPACE_IN_NAME.search(name):
            return 400, "A header name holds whitespace (RFC 9112 section 5.1)."
        found = framing.get(name.lower())
        if found is not None:
            found.append(value)
    if request_version == "HTTP/1.1" and len(framing["host"]) != 1:
        return 400, "An HTTP/1.1 request carries exactly one Host header (RFC 9112 section 3.2)."
    lengths, codings = framing["content-length"], framing["transfer-encoding"]
    if codings:
        listed = [c.strip().lower() for field in codings for c in field.split(",") if c.strip()]
        if lengths:
            return 400, "Transfer-Encoding and Content-Length together make the length ambiguous (RFC 9112 section 6.3)."
        if not listed or listed[-1] != "chunked":
            return 400, "Transfer-Encoding without 'chunked' as the last coding: the body length is unknown (RFC 9112 section 6.3)."
    if len(lengths) > 1:
        return 400, "Several Content-Length headers (RFC 9112 section 6.3)."
    if lengths and not _DIGITS.fullmatch(lengths[0].strip(" \t")):
        return 400, "Content-Length is not a number of digits (RFC 9110 section 8.6)."
    return None


def content_length(message) -> int | None:
    """The checked body length (call :func:`framing_problem` first); None without a body."""
    raw = message.get("Content-Length")
    return None if raw is None else int(raw.strip(" \t"))


# -- deadlines -------------------------------------------------------------------------------------
class DeadlineReader(io.RawIOBase):
    """A socket read side whose reads end at a deadline, not after a quiet period.

    ``arm_request(first)`` before waiting for a request, ``arm_body()`` before
    reading a body. A read after the deadline raises ``TimeoutError``, which
    ``http.server`` treats as the end of the connection.
    """

    def __init__(self, sock):
        super().__init__()
        self._sock = sock
        self._deadline = time.monotonic() + FIRST_REQUEST_S
        self._after_first_byte: float | None = None
        self.partial = False          # a request has started but not been read whole
        self.timed_out = False

    def arm_request(self, first: bool) -> None:
        self._deadline = time.monotonic() + (FIRST_REQUEST_S if first else IDLE_S)
        self._after_first_byte = HEADER_S
        self.partial = False

    def arm_body(self) -> None:
        self._deadline = time.monotonic() + BODY_S
        self._after_first_byte = None
        self.partial = True

    def arm(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds
        self._after_first_byte = None

    def request_read(self) -> None:
        """The head (and body) are in: the server is at work, nothing is partial any more.

        The socket's timeout is reset for the answer's writes (the last read may
        have left it at a few milliseconds before its deadline).
        """
        self.partial = False
        try:
            self._sock.settimeout(WRITE_S)
        except OSError:
            pass                       # the connection is already gone; the write will say so

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            self.timed_out = True
            raise TimeoutError("read deadline passed")
        self._sock.settimeout(remaining)
        try:
            n = self._sock.recv_into(buffer)
        except TimeoutError:
            self.timed_out = True
            raise
        if n and self._after_first_byte is not None:
            self._deadline = time.monotonic() + self._after_first_byte
            self._after_first_byte = None
            self.partial = True
        return n


def deadline_rfile(sock) -> tuple[DeadlineReader, io.BufferedReader]:
    raw = DeadlineReader(sock)
    return raw, io.BufferedReader(raw, 65536)


def timeout_answer(server_header: str) -> bytes:
    """408 for a client that started a request and did not finish it in time (then close)."""
    body = b'{"error":"invalid_request","error_description":"The request was not received in time."}'
    return (f"HTTP/1.1 408 Request Timeout\r\nServer: {server_header}\r\nContent-Type: application/json; "
            f"charset=utf-8\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1") + body


# -- connection cap --------------------------------------------------------------------------------
class ConnectionTable:
    """Every open connection of one authority, with whether the server is working on it.

    ``admit(sock)`` is called by a listener's accepting thread before it
    starts a connection thread: True to serve it. At the cap, the oldest
    waiting connection is shut down (its thread sees end-of-file and ends)
    to make room; when none is waiting, the newcomer is refused.
    """

    def __init__(self, limit: int = MAX_CONNECTIONS):
        self.limit = limit
        self._lock = threading.Lock()
        self._open: dict[int, list] = {}      # id(raw socket) -> [socket, waiting since or None when busy]
        self.evicted = 0
        self.refused = 0

    def admit(self, sock) -> bool:
        victim = None
        with self._lock:
            if len(self._open) >= self.limit:
                waiting = [(since, key) for key, (_, since) in self._open.items() if since is not None]
                if not waiting:
                    self.refused += 1
                    return False
                _, key = min(waiting)
                victim = self._open.pop(key)[0]
                self.evicted += 1
            self._open[id(sock)] = [sock, time.monotonic()]
        if victim is not None:
            _shut(victim)
        return True

    def rewrap(self, old, new) -> None:
        """The connection is now ``new`` (its TLS socket, which took over the descriptor)."""
        with self._lock:
            entry = self._open.pop(id(old), None)
            if entry is not None:
                self._open[id(new)] = [new, entry[1]]

    def waiting(self, sock) -> None:
        with self._lock:
            entry = self._open.get(id(sock))
            if entry is not None and entry[1] is None:
                entry[1] = time.monotonic()

    def busy(self, sock) -> None:
        with self._lock:
            entry = self._open.get(id(sock))
            if entry is not None:
                entry[1] = None

    def release(self, sock) -> None:
        with self._lock:
            entry = self._open.get(id(sock))
            if entry is not None and entry[0] is sock:
                del self._open[id(sock)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)


def _shut(sock) -> None:
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass
