"""HTTP for the lab's clients: mTLS with the right trust, retries, and a timed, redacted trace.

One :class:`Transport` is one TLS identity (a client certificate, or none)
plus one trust anchor (the local authority's CA, a cloud's bundle, or the
system store). It has the ``get``/``post`` shape msal expects of an
``http_client``, so msal runs over it unchanged, and it is what
:func:`~mtlspop_lab.flows.call_resource` uses to present a binding
certificate to an API.

Why not a plain ``requests.Session``:

* ``REQUESTS_CA_BUNDLE`` (set on many machines) silently replaces a session's
  ``verify``; the lab's sessions set ``trust_env = False`` and carry their
  trust in their own ``SSLContext`` (TLS 1.2 minimum).
* Every attempt is timed and recorded as a :class:`RoundTrip`: which leg,
  which endpoint, status, whether a new connection (and so a TLS handshake)
  was needed and how long that handshake took. A flow wraps its work in
  :func:`record` to collect exactly its own round trips, even when many
  threads share one transport.
* Retries (see :mod:`mtlspop_lab.transport.retry`) happen here, below msal.

Nothing secret is recorded: URLs pass through :func:`~mtlspop_lab.redact.redact_text`
and bodies are never kept - except inside an explicit :func:`~mtlspop_lab.transport.exchanges.capture`
block, whose caller owns the list (the request inspector).
"""

from __future__ import annotations

import collections
import contextlib
import json
import ssl
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Iterator
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from ..errors import TransportError
from ..pool import ReusePool
from ..redact import redact_text
from . import exchanges
from .retry import RETRYABLE_STATUS, RetryPolicy, parse_retry_after

_local = threading.local()


@dataclass(frozen=True)
class RoundTrip:
    """One HTTP exchange (one attempt), timed and redacted.

    ``leg``: the flow step it served (``token``, ``leg1``, ``leg2``, ``resource``...).
    ``kind``: what was asked (``discovery``, ``token``, ``imds_token``,
    ``getplatformmetadata``, ``issuecredential``, ``resource``...).
    ``new_connection``: a TCP (+TLS) connection was opened for it;
    ``connect_ms``/``tls_handshake_ms``: how long that took (None when reused).
    ``retry_delay_ms``: time waited before this attempt (0 for a first attempt).
    """

    leg: str
    kind: str
    method: str
    endpoint: str
    status: int | None
    elapsed_ms: float
    new_connection: bool
    connect_ms: float | None = None
    tls_handshake_ms: float | None = None
    attempt: int = 1
    retry_delay_ms: float = 0.0
    error: str | None = None
    client_cert_x5t: str | None = None
    request_id: str | None = None
    started_at: float = field(default=0.0, compare=False)

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        conn = "new conn" if self.new_connection else "reused conn"
        status = self.status if self.status is not None else self.error
        return (f"{self.leg:<8} {self.kind:<19} {self.method:<4} {status!s:<6} "
                f"{self.elapsed_ms:7.1f} ms  {conn}  {self.endpoint}")


# -- recording ----------------------------------------------------------------------------
@contextlib.contextmanager
def record(leg: str) -> Iterator[list]:
    """Collect the round trips this thread makes inside the block, labelled ``leg``.

    Nested blocks each collect their own; the innermost label wins.
    """
    stack = _local.__dict__.setdefault("recorders", [])
    collected: list[RoundTrip] = []
    stack.append((leg, collected))
    try:
        yield collected
    finally:
        stack.pop()


def _current_leg() -> str:
    stack = _local.__dict__.get("recorders")
    return stack[-1][0] if stack else "-"


def _publish(trip: RoundTrip) -> None:
    for _leg, collected in _local.__dict__.get("recorders", ()):
        collected.append(trip)


# -- connection timing --------------------------------------------------------------------
def _note_connect(total_ms: float, tcp_ms: float | None) -> None:
    _local.connect = (total_ms, tcp_ms)


class _TimedHTTPConnection(HTTPConnection):
    def connect(self):
        start = time.perf_counter()
        super().connect()
        _note_connect((time.perf_counter() - start) * 1000, None)


class _TimedHTTPSConnection(HTTPSConnection):
    def _new_conn(self):
        start = time.perf_counter()
        sock = super()._new_conn()
        _local.tcp_ms = (time.perf_counter() - start) * 1000
        return sock

    def connect(self):
        _local.tcp_ms = None
        start = time.perf_counter()
        super().connect()
        _note_connect((time.perf_counter() - start) * 1000, getattr(_local, "tcp_ms", None))


class _TimedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _TimedHTTPConnection


class _TimedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _TimedHTTPSConnection


class _LabAdapter(HTTPAdapter):
    """An HTTPAdapter whose pools use one SSLContext and timed connections."""

    def __init__(self, ssl_context: ssl.SSLContext, pool_maxsize: int = 16):
        self._ssl_context = ssl_context
        super().__init__(pool_connections=8, pool_maxsize=pool_maxsize, max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _TimedHTTPConnectionPool,
                                                   "https": _TimedHTTPSConnectionPool}

    def cert_verify(self, conn, url, verify, cert):
        """Trust lives in our SSLContext only. requests' default would set ``ca_certs`` to
        certifi's bundle on every pool, which urllib3 then loads into the context on each new
        connection: ~20 ms per handshake and a widened trust store."""
        if url.lower().startswith("https"):
            conn.cert_reqs = "CERT_REQUIRED"
            conn.ca_certs = None
            conn.ca_cert_dir = None


def build_ssl_context(ca_bundle: str | None = None, certificate=None) -> ssl.SSLContext:
    """A client SSLContext: TLS 1.2+, verifying against ``ca_bundle`` (or the system store),
    presenting ``certificate`` (a lab Certificate with its key) when given."""
    try:
        context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    except FileNotFoundError:
        raise TransportError(f"The CA bundle {redact_text(str(ca_bundle))[:200]} does not exist.",
                             cause="The file was deleted; a LocalAuthority deletes its CA bundle when it is "
                                   "closed.",
                             fix="Use the ca_bundle of a running authority (authority.cloud), or the path "
                                 "of an existing PEM file.",
                             code="ca_bundle_missing") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if certificate is not None:
        certificate.load_into(context)
    return context


def shared_ssl_context(ca_bundle: str | None = None, certificate=None, *,
                       pool: ReusePool | None = None) -> ssl.SSLContext:
    """:func:`build_ssl_context`, reused from ``pool`` per (certificate, trust file contents).

    Building a context reads the trust store and passes the key through a
    private temporary file: several milliseconds that a new acquirer would
    otherwise pay each time. A context holds no connection state, so sharing
    it between transports and threads is safe; connections stay per transport.
    The memo is the ``pool`` of the target (``cloud.pool``), not the process:
    ``cloud.close()`` forgets the contexts and the keys loaded in them. Without
    a pool, a new context is built.
    """
    if pool is None:
        return build_ssl_context(ca_bundle, certificate)
    trust = None
    if ca_bundle:
        try:
            with open(ca_bundle, "rb") as handle:
                trust = hash(handle.read())
        except OSError:
            trust = None          # let build_ssl_context raise the real error
    key = (certificate.x5t_s256 if certificate is not None else None, ca_bundle, trust)
    return pool.get("ssl_context", key, lambda: build_ssl_context(ca_bundle, certificate), limit=64)


def classify_path(path: str) -> str:
    """Name the kind of request from its URL path (for traces and tables)."""
    p = path.lower()
    if "well-known/openid-configuration" in p or "/discovery/" in p:
        return "discovery"
    if "/getplatformmetadata" in p:
        return "getplatformmetadata"
    if "/issuecredential" in p:
        return "issuecredential"
    if "/metadata/identity/oauth2/token" in p:
        return "imds_token"
    if "/metadata/instance" in p:
        return "imds_instance"
    if p.endswith("/attest/keyguard"):
        return "attestation"
    if p.endswith("/oauth2/v2.0/token") or p.endswith("/oauth2/token"):
        return "token"
    return "resource"


class Transport:
    """An HTTP client with one TLS identity and one trust anchor; msal-compatible.

    ``certificate``: the client certificate (with key) presented in every TLS
    handshake, or None for server-authenticated TLS only.
    ``ca_bundle``: PEM file of trusted roots, or None for the system store.
    ``timeout``: (connect, read) seconds, applied when the caller gives none.
    ``expect_json``: a 200 whose body is not JSON counts as a failed attempt
    and is retried (token endpoints and IMDS always answer JSON).
    ``pool``: where to reuse an SSL context from (the target's ``cloud.pool``);
    without one the transport builds its own.
    """

    def __init__(self, *, certificate=None, ca_bundle: str | None = None,
                 retry: "RetryPolicy | None" = None, timeout: float | tuple = (5.0, 15.0),
                 expect_json: bool = True, trace_size: int = 500, name: str = "transport",
                 pool: ReusePool | None = None):
        self.certificate = certificate.public_only() if certificate is not None else None
        self.ca_bundle = ca_bundle
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.expect_json = expect_json
        self.name = name
        self._cert_x5t = certificate.x5t_s256 if certificate is not None else None
        self._trace: collections.deque[RoundTrip] = collections.deque(maxlen=trace_size)
        self._trace_lock = threading.Lock()
        session = requests.Session()
        session.trust_env = False   # REQUESTS_CA_BUNDLE and proxies must not override our trust
        adapter = _LabAdapter(shared_ssl_context(ca_bundle, certificate, pool=pool))
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self.session = session

    # -- msal's http_client interface ------------------------------------------------------
    def get(self, url, **kwargs) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url, **kwargs) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the loop ---------------------------------------------------------------------------
    def request(self, method: str, url: str, *, leg: str | None = None, retry=None,
                **kwargs) -> requests.Response:
        """Send with retries; record each attempt. Returns the last response or raises the
        last ``requests`` exception (msal expects those).

        Redirects are never followed: token endpoints and IMDS do not redirect, and following
        one would re-send a client assertion or a token to wherever ``Location`` points.
        ``retry`` overrides this transport's policy for one call.
        """
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        kwargs.pop("verify", None)   # trust lives in the SSLContext, never per call
        kwargs["allow_redirects"] = False
        leg = leg or _current_leg()
        policy = retry or self.retry
        deadline = time.monotonic() + policy.max_total_s
        delay_ms = 0.0
        attempt = 0
        while True:
            attempt += 1
            response, error, retry_after = self._attempt(method, url, leg, attempt, delay_ms, kwargs)
            retryable = error is not None and self._retryable_exception(error)
            if response is not None:
                retryable = self._retryable_response(response)
            if not retryable or attempt >= policy.max_attempts:
                break
            delay = policy.delay_s(attempt, retry_after)
            if time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
            delay_ms = delay * 1000
        if error is not None:
            raise error
        return response

    def _attempt(self, method, url, leg, attempt, delay_ms, kwargs):
        _local.connect = None
        request_id = str(uuid.uuid4())
        started = time.time()
        start = time.perf_counter()
        response = error = None
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            error = exc
        elapsed = (time.perf_counter() - start) * 1000
        connect = getattr(_local, "connect", None)
        parts = urlsplit(url)
        status = response.status_code if response is not None else None
        problem = _describe_exception(error) if error is not None else None
        if response is not None and self._malformed(response):
            problem = "malformed_json"
        trip = RoundTrip(
            leg=leg, kind=classify_path(parts.path), method=method,
            endpoint=redact_text(f"{parts.scheme}://{parts.netloc}{parts.path}"),
            status=status, elapsed_ms=round(elapsed, 3), new_connection=connect is not None,
            connect_ms=round(connect[0], 3) if connect else None,
            tls_handshake_ms=(round(connect[0] - connect[1], 3)
                              if connect and connect[1] is not None else None),
            attempt=attempt, retry_delay_ms=round(delay_ms, 3), error=problem,
            client_cert_x5t=self._cert_x5t, request_id=request_id, started_at=started)
        with self._trace_lock:
            self._trace.append(trip)
        _publish(trip)
        exchanges.publish(method, url, kwargs, response, error, trip)   # only inside exchanges.capture()
        retry_after = None
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return response, error, retry_after

    def _malformed(self, response) -> bool:
        if not self.expect_json or response.status_code != 200:
            return False
        try:
            return not isinstance(json.loads(response.text), dict)   # token services answer objects
        except ValueError:
            return True

    def _retryable_response(self, response) -> bool:
        return response.status_code in RETRYABLE_STATUS or self._malformed(response)

    def _retryable_exception(self, exc: Exception) -> bool:
        if is_connect_failure(exc):
            return self.retry.retry_connect_errors
        return isinstance(exc, (requests.Timeout, requests.ConnectionError))

    # -- the trace ---------------------------------------------------------------------------
    @property
    def trace(self) -> list[RoundTrip]:
        """Every recorded attempt, oldest first (bounded; redacted)."""
        with self._trace_lock:
            return list(self._trace)

    def clear_trace(self) -> None:
        with self._trace_lock:
            self._trace.clear()

    def trace_frame(self):
        """The trace as a pandas DataFrame."""
        import pandas as pd
        return pd.DataFrame([t.as_dict() for t in self.trace])

    def __repr__(self) -> str:
        who = f"client cert x5t#S256={self._cert_x5t}" if self._cert_x5t else "no client cert"
        return f"<Transport {self.name} {who} trust={'system' if not self.ca_bundle else self.ca_bundle}>"


def is_connect_failure(exc: BaseException) -> bool:
    """True when no connection could be opened (refused, unreachable, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError) or isinstance(exc.args[0] if exc.args else None,
                                                                    NewConnectionError)
    return False


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connect_timeout"
    if isinstance(exc, requests.ReadTimeout):
        return "read_timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls_error"
    if is_connect_failure(exc):
        return "connection_refused"
    if isinstance(exc, requests.ConnectionError):
        return "connection_reset"
    return type(exc).__name__


def transport_error(exc: BaseException, endpoint: str, *, what: str = "the identity provider") -> TransportError:
    """A :class:`TransportError` that says what failed, why it likely did and what to do."""
    kind = _describe_exception(exc)
    where = redact_text(endpoint)
    text = {
        "connect_timeout": (f"Timed out connecting to {what} at {where}.",
                            "The host is unreachable from here (no route, firewall, or it is down).",
                            "Check the URL and network path; for the live cloud check outbound HTTPS."),
        "read_timeout": (f"{what.capitalize()} at {where} did not answer in time (after retries).",
                         "The service is slow or overloaded.",
                         "Retry later or raise timeout=; the lab already retried with backoff."),
        "tls_error": (f"The TLS handshake with {where} failed.",
                      "The server's certificate is not trusted by this client, or the server refused "
                      "the client certificate.",
                      "Use the target's CA bundle (cloud.ca_bundle) and a certificate registered "
                      "for this app."),
        "connection_refused": (f"Nothing accepts connections at {where}.",
                               "The service is not running at that address.",
                               "Check the URL; for a local authority make sure it is started."),
        "connection_reset": (f"The connection to {where} was closed without an answer (after retries).",
                             "The server or a middlebox dropped the connection.",
                             "Retry later; if it persists check proxies and TLS inspection."),
    }.get(kind, (f"HTTP request to {where} failed ({kind}).", None, None))
    message, cause, fix = text
    return TransportError(message, cause=cause, fix=fix, code=kind)
