"""TLS and HTTP/1.1 plumbing for the authority's listeners.

Each :class:`Listener` is one host with its own TLS policy, its own injected
delay and its own fault queue; a :class:`Port` is one loopback socket that
serves one or more listeners (the TLS port picks the listener by SNI). Neither
knows anything of OAuth: they turn bytes into a :class:`Request`, ask the
handler for a :class:`Response`, and write the answer.

Why it is written this way:

* **Handshake in the connection's thread.** ``socketserver`` accepts on one
  thread; a TLS handshake done there would let one garbage or slow client
  stall every other client. Sockets are wrapped in the per-connection thread,
  with a handshake timeout.
* **Nagle off, one write per response.** ``http.server`` writes headers and
  body separately; with Nagle's algorithm on, loopback responses cost ~40 ms
  of delayed-ACK wait. ``TCP_NODELAY`` is set and each response is one
  ``sendall``.
* **HTTP/1.1 keep-alive with Content-Length**, so a client's second request
  on a connection costs a round trip, not a handshake (what the benchmarks
  compare). Bodies over 1 MB are refused before they are read.
* **close() leaves no thread behind**: open connections are shut down and
  every connection thread is joined.
* **Limits** (``http_limits``): strict RFC 9112 framing, read deadlines and
  a connection cap shared by the authority's listeners.
"""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

from ..certs import x5t_s256_of_der
from . import http_limits
from .sni import NotTls, peek_server_name

MAX_BODY_BYTES = 1024 * 1024
HANDSHAKE_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 60.0
DRAIN_CAP_BYTES = 8 * 1024 * 1024


@dataclass
class Request:
    """One parsed HTTP request, with what the TLS layer learned about the client."""

    listener: str
    method: str
    target: str
    headers: dict                       # lower-case name -> value (last one wins)
    body: bytes
    client_cert_der: bytes | None       # the TLS client certificate, when one was presented
    new_connection: bool                # first request on its connection
    received_at: float = field(default_factory=time.monotonic)   # when the request was read

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.target).query, keep_blank_values=True)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @cached_property
    def client_cert_x5t(self) -> str | None:
        """The TLS client certificate's x5t#S256 (RFC 8705), once per request; None without one."""
        return x5t_s256_of_der(self.client_cert_der) if self.client_cert_der else None


@dataclass
class Response:
    """An answer, plus the facts the trace records about it (already redacted)."""

    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    reset: bool = False                 # close the connection without answering
    info: dict = field(default_factory=dict)   # trace facts: grant_type, client_id, token_type, error...

    @classmethod
    def json(cls, status: int, payload, headers: dict | None = None, **info) -> "Response":
        all_headers = {"Content-Type": "application/json; charset=utf-8"}
        all_headers.update(headers or {})
        return cls(status, json.dumps(payload, separators=(",", ":")).encode("utf-8"), all_headers, info=info)


_REASONS = {code: msg for code, (msg, _) in http.server.BaseHTTPRequestHandler.responses.items()}


class Listener:
    """One host the authority serves: a name, a TLS policy, a handler, its own delay.

    ``tls``: an ``ssl.SSLContext`` (server side) or None for plain HTTP (IMDS).
    ``host``: the DNS name clients use (``login.mtlspop.localhost``) or an
    address. Several listeners share one :class:`Port` (the TLS port routes by
    SNI); their ``url`` then differs by host name only.
    ``handler(request) -> Response``; ``on_exchange(request, response, timing)``
    is called after each answer (the authority's trace), and
    ``on_tls_failure(listener, reason)`` after a failed handshake.
    """

    def __init__(self, name: str, handler: Callable[[Request], Response], *,
                 tls: ssl.SSLContext | None = None, host: str = "127.0.0.1", server_header: str = "mtlspop-lab",
                 on_exchange=None, on_tls_failure=None, stop_event: threading.Event | None = None,
                 connections: http_limits.ConnectionTable | None = None):
        self.name = name
        self.handler = handler
        self.tls = tls
        self.host = host
        self.server_header = server_header
        self.on_exchange = on_exchange
        self.on_tls_failure = on_tls_failure
        self.delay_ms = 0.0
        self.handshake_delay_ms = 0.0   # extra wait before the first answer on a new TLS connection
        self.stop_event = stop_event or threading.Event()
        self.connections = connections if connections is not None else http_limits.ConnectionTable()
        self.port_of: Port | None = None

    @property
    def port(self) -> int:
        return self.port_of.port if self.port_of is not None else 0

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def address(self) -> tuple | None:
        return self.port_of.address if self.port_of is not None else None

    @property
    def running(self) -> bool:
        return self.port_of is not None and self.port_of.running

    def wait(self, seconds: float) -> bool:
        """Sleep for an injected delay; returns early (True) when the authority closes."""
        if seconds <= 0:
            return False
        return self.stop_event.wait(seconds)


class Port:
    """One loopback socket serving one or more :class:`Listener` hosts.

    A TLS port reads the server name of each new connection (SNI, see
    :mod:`.sni`) and shakes hands with that host's context, so the
    ``login.`` host never asks for a client certificate while the
    ``mtlsauth.`` hosts on the same port always do. A connection without SNI
    (a client that dialled the address) goes to the first listener; an
    unknown name is refused with TLS's ``unrecognized_name`` alert.
    """

    def __init__(self, name: str, listeners: list[Listener], *, stop_event: threading.Event | None = None):
        if not listeners:
            raise ValueError("a port serves at least one listener")
        self.name = name
        self.listeners = list(listeners)
        self.default = self.listeners[0]
        self.tls = self.default.tls is not None
        self.by_host = {l.host.lower(): l for l in self.listeners}
        self.connections = self.default.connections     # the cap is shared by the authority's listeners
        for listener in self.listeners:
            listener.port_of = self
        self.stop_event = stop_event or threading.Event()
        self._refuse_ctx = None
        if self.tls:
            # a context whose only job is to answer an unknown server name with the right alert
            self._refuse_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._refuse_ctx.sni_callback = lambda *_: ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        self._port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connections: set = set()
        self._conn_threads: set = set()
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> tuple | None:
        server = self._server
        return tuple(server.server_address[:2]) if server is not None else None

    @property
    def running(self) -> bool:
        return self._server is not None

    def route(self, server_name: str | None) -> Listener | None:
        """The listener for a ClientHello's server name (None: refuse the name)."""
        if server_name is None:
            return self.default
        return self.by_host.get(server_name)

    def start(self) -> "Port":
        """Bind 127.0.0.1 (the same port again after a stop) and serve in a daemon thread."""
        with self._lock:
            if self._server is not None:
                return self
            server = _Server(("127.0.0.1", self._port), _Handler, self)
            self._stopping = False
            self._port = server.server_address[1]
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"mtlspop-{self.name}-accept", daemon=True)
            self._thread.start()
        return self

    def stop(self, join_timeout: float = 5.0) -> None:
        """Stop accepting, shut open connections, join every thread of this port."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()          # the port is free again (connection refused from now on)
        if thread is not None:
            thread.join(join_timeout)
        with self._lock:
            self._stopping = True      # a connection accepted just now is dropped, not served
            connections = list(self._connections)
            threads = list(self._conn_threads)
        for sock in connections:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(join_timeout)

    # -- bookkeeping used by the handler -------------------------------------------
    def _track(self, sock) -> bool:
        """Remember an open connection; False when the port is stopping (then drop it)."""
        with self._lock:
            if self._stopping:
                return False
            self._connections.add(sock)
            return True

    def _untrack(self, sock) -> None:
        with self._lock:
            self._connections.discard(sock)

    def _tls_failed(self, listener_name: str, reason: str) -> None:
        callback = self.default.on_tls_failure
        if callback is not None and not self.stop_event.is_set():
            callback(listener_name, reason)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    block_on_close = False             # Port.stop joins its own threads, after shutting sockets
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, handler_class, port: Port):
        self.port = port
        super().__init__(address, handler_class)

    def process_request(self, request, client_address):
        if not self.port.connections.admit(request):
            self.shutdown_request(request)      # at the cap and every connection at work
            return
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                             name=f"mtlspop-{self.port.name}-conn", daemon=True)
        with self.port._lock:
            self.port._conn_threads.add(t)
        t.start()

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.port._lock:
                self.port._conn_threads.discard(threading.current_thread())

    def finish_request(self, request, client_address):
        """Route by SNI and do the TLS handshake here, in the connection's own thread."""
        port = self.port
        listener = port.default
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not port._track(request):
            port.connections.release(request)
            return
        try:
            if port.tls:
                request.settimeout(HANDSHAKE_TIMEOUT_S)
                context = listener.tls
                try:
                    name = peek_server_name(request, HANDSHAKE_TIMEOUT_S)
                    chosen = port.route(name)
                    if chosen is None:
                        port._tls_failed(listener.name, f"unrecognized_name {name[:80]}")
                        context = port._refuse_ctx
                    else:
                        listener, context = chosen, chosen.tls
                except NotTls:
                    pass                # the handshake below fails and says so
                except (OSError, TimeoutError):
                    return
                port._untrack(request)
                # wrap first (the TLS socket takes over the descriptor), track it, then shake
                # hands: stop() can shut a connection that is stuck in its handshake
                raw, request = request, context.wrap_socket(request, server_side=True,
                                                            do_handshake_on_connect=False)
                port.connections.rewrap(raw, request)
                if not port._track(request):
                    return
                try:
                    request.do_handshake()
                except (ssl.SSLError, OSError, ValueError) as exc:
                    if context is not port._refuse_ctx:
                        port._tls_failed(listener.name, _tls_reason(exc))
                    return
            request.settimeout(IDLE_TIMEOUT_S)
            _Handler(request, client_address, self, listener)
        finally:
            port._untrack(request)
            port.connections.release(request)
            if isinstance(request, ssl.SSLSocket):
                request.close()         # socketserver closes only the original (now detached) socket

    def shutdown_request(self, request):
        try:
            request.close()
        except OSError:
            pass

    def handle_error(self, request, client_address):
        pass                           # a client that vanished mid-request is not an error of ours


def _tls_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.__class__.__name__
    return exc.__class__.__name__


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_S
    server: _Server

    def __init__(self, request, client_address, server, listener: Listener):
        self.listener = listener
        super().__init__(request, client_address, server)

    def setup(self):
        super().setup()
        self.requests_on_connection = 0
        self.client_cert_der = None
        if isinstance(self.connection, ssl.SSLSocket):
            self.client_cert_der = self.connection.getpeercert(binary_form=True)
        self.deadlines, self.rfile = http_limits.deadline_rfile(self.connection)

    def log_message(self, format, *args):   # noqa: A002 - stdlib signature
        pass

    def version_string(self):
        return self.listener.server_header

    def send_error(self, code, message=None, explain=None):
        """Protocol-level errors (bad request line, huge headers) as JSON, then close."""
        self.close_connection = True
        payload = {"error": "invalid_request", "error_description": message or _REASONS.get(code, "")}
        self._write(Response.json(code, payload))

    def handle_one_request(self):
        self.deadlines.arm_request(first=self.requests_on_connection == 0)
        self.listener.connections.waiting(self.connection)
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError):
            self.close_connection = True
        if self.deadlines.timed_out:
            self.close_connection = True
            if self.deadlines.partial:
                try:
                    self.connection.sendall(http_limits.timeout_answer(self.listener.server_header))
                except OSError:
                    pass

    def _dispatch(self):
        started = time.perf_counter()
        listener = self.listener
        new_connection = self.requests_on_connection == 0
        self.requests_on_connection += 1
        headers = {name.lower(): value for name, value in self.headers.items()}
        body_or_error = self._framing_error() or self._read_body(headers)
        self.deadlines.request_read()
        listener.connections.busy(self.connection)
        if isinstance(body_or_error, Response):
            response = body_or_error
            request = Request(listener.name, self.command, self.path, headers, b"",
                              self.client_cert_der, new_connection)
        else:
            request = Request(listener.name, self.command, self.path, headers, body_or_error,
                              self.client_cert_der, new_connection)
            try:
                response = listener.handler(request)
            except Exception as exc:  # a bug of ours must not kill the connection thread silently
                response = Response.json(500, {"error": "server_error",
                                               "error_description": f"Internal error: {type(exc).__name__}"},
                                         error=f"internal error {type(exc).__name__}")
        delay = listener.delay_ms
        if new_connection and listener.tls is not None:
            delay += listener.handshake_delay_ms     # the handshake's round trip, paid once per connection
        injected = float(response.info.pop("_injected_delay_ms", 0.0)) + delay
        if delay:
            listener.wait(delay / 1000.0)
        # recorded before the answer leaves, so a client that has its answer also sees it in the trace
        elapsed = (time.perf_counter() - started) * 1000.0
        if listener.on_exchange is not None:
            listener.on_exchange(request, response, elapsed, injected)
        if response.reset:
            self.close_connection = True
            self._abort()
        else:
            self._write(response)
            if getattr(self, "_drain_bytes", 0):
                self._drain()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def _framing_error(self) -> Response | None:
        """400 and close for a head whose framing is ambiguous (see ``http_limits``)."""
        problem = http_limits.framing_problem(self.headers, self.request_version)
        if problem is None:
            return None
        self.close_connection = True
        status, description = problem
        return Response.json(status, {"error": "invalid_request", "error_description": description},
                             error="bad framing")

    def _read_body(self, headers: dict):
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.close_connection = True
            return Response.json(411, {"error": "invalid_request",
                                       "error_description": "Chunked bodies are not accepted; send Content-Length."},
                                 error="chunked body")
        raw = headers.get("content-length")
        if raw is None:
            return b""
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            return Response.json(400, {"error": "invalid_request",
                                       "error_description": "Content-Length is not a number."},
                                 error="bad content-length")
        if length > MAX_BODY_BYTES:
            # refused without parsing; the body is drained after the answer (up to a cap), because
            # closing with unread bytes makes TCP send a reset that can destroy the answer in flight
            self.close_connection = True
            self._drain_bytes = min(length, DRAIN_CAP_BYTES)
            return Response.json(413, {"error": "invalid_request",
                                       "error_description": f"The request body is larger than {MAX_BODY_BYTES} bytes."},
                                 error="body too large")
        self.deadlines.arm_body()
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            self.close_connection = True
            return Response.json(400, {"error": "invalid_request", "error_description": "Truncated body."},
                                 error="truncated body")
        return body

    def _write(self, response: Response) -> None:
        headers = getattr(self, "headers", None)
        if getattr(self, "request_version", "") == "HTTP/1.0" or headers is None \
                or headers.get("Connection", "").lower() == "close":
            self.close_connection = True
        lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}"]
        if not any(name.lower() == "server" for name in response.headers):   # one Server header, never two
            lines.append(f"Server: {self.listener.server_header}")
        lines += [f"Date: {self.date_time_string()}", f"Content-Length: {len(response.body)}"]
        for name, value in response.headers.items():
            if name.lower() not in ("date", "content-length"):
                lines.append(f"{name}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + (b"" if getattr(self, "command", None) == "HEAD" else response.body))
            self.wfile.flush()
        except (OSError, ssl.SSLError):
            self.close_connection = True

    def _drain(self) -> None:
        remaining, self._drain_bytes = self._drain_bytes, 0
        try:
            self.deadlines.arm(2.0)
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 65536))
                if not chunk:
                    break
                remaining -= len(chunk)
        except (OSError, ssl.SSLError):
            pass

    def _abort(self) -> None:
        """Close without an answer; a zero linger makes the peer see a reset."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
