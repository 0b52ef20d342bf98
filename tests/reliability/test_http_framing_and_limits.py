"""The authority's HTTP layer: strict RFC 9112 framing, read deadlines and a connection cap.

Driven over raw sockets, since clients that follow the RFC never send these
requests. Deadlines are shortened through ``http_limits``' constants (the
mechanism is what is tested; SECURITY.md states the real values).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from mtlspop_lab.authority import http_limits

COMPUTE = b"/metadata/instance/compute?api-version=2021-02-01"


def _imds(lab):
    return lab.listener_addresses()["imds"]


def _exchange(address, raw: bytes, *, tls_ca: str | None = None, timeout: float = 5.0) -> bytes:
    """Send ``raw`` and read until the server closes (or ``timeout``)."""
    sock = socket.create_connection(address, timeout=timeout)
    if tls_ca:
        sock = ssl.create_default_context(cafile=tls_ca).wrap_socket(sock, server_hostname="127.0.0.1")
    data = b""
    try:
        sock.sendall(raw)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionError):
        pass
    finally:
        sock.close()
    return data


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


GOOD_HEAD = b"GET " + COMPUTE + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nMetadata: true\r\nConnection: close\r\n"

AMBIGUOUS = {
    "two differing Content-Length": b"Content-Length: 0\r\nContent-Length: 5\r\n\r\nhello",
    "two equal Content-Length": b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "Content-Length with underscore": b"Content-Length: 1_0\r\n\r\n0123456789",
    "Content-Length with plus sign": b"Content-Length: +5\r\n\r\nhello",
    "Content-Length negative zero": b"Content-Length: -0\r\n\r\n",
    "Transfer-Encoding gzip": b"Transfer-Encoding: gzip\r\n\r\n",
    "Transfer-Encoding chunked then gzip": b"Transfer-Encoding: chunked, gzip\r\n\r\n",
    "Transfer-Encoding with Content-Length": b"Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello",
    "folded header (obs-fold)": b"X-Note: first\r\n second\r\n\r\n",
    "space before colon": b"Content-Length : 5\r\n\r\nhello",
    "bare CR inside a value": b"X-Note: a\rb\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(AMBIGUOUS))
def test_ambiguous_framing_is_400_and_close(lab, name):
    address = _imds(lab)
    assert _status(_exchange(address, GOOD_HEAD + b"\r\n")) == 200          # the control request
    answer = _exchange(address, GOOD_HEAD.replace(b"Connection: close\r\n", b"") + AMBIGUOUS[name])
    assert _status(answer) == 400, answer[:200]
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert b"connection: close" in head
    assert answer.count(b"HTTP/1.1 ") == 1          # nothing after the body was read as a request
    entry = [e for e in lab.trace if e.listener == "imds"][-1]
    assert entry.status == 400 and entry.error == "bad framing"


@pytest.mark.parametrize("hosts", [b"", b"Host: a\r\nHost: b\r\n"])
def test_http11_needs_exactly_one_host(lab, hosts):
    head = b"GET " + COMPUTE + b" HTTP/1.1\r\n" + hosts + b"Metadata: true\r\n\r\n"
    assert _status(_exchange(_imds(lab), head)) == 400


def test_framing_is_checked_on_the_tls_listeners_too(lab):
    address = lab.listener_addresses()["login"]
    path = f"/{lab.tenant_id}/v2.0/.well-known/openid-configuration".encode()
    good = b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    assert _status(_exchange(address, good + b"\r\n", tls_ca=lab.ca_bundle)) == 200
    assert _status(_exchange(address, good + b"Content-Length: +0\r\n\r\n", tls_ca=lab.ca_bundle)) == 400


# -- deadlines -------------------------------------------------------------------------------------
def test_a_request_trickled_byte_by_byte_is_cut_at_the_header_deadline(lab, monkeypatch):
    monkeypatch.setattr(http_limits, "HEADER_S", 1.0)
    sock = socket.create_connection(_imds(lab), timeout=5)
    started = time.monotonic()
    answer = b""
    try:
        for byte in GOOD_HEAD:                       # never the final blank line
            sock.sendall(bytes([byte]))
            time.sleep(0.1)
            sock.settimeout(0.001)
            try:
                answer += sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                pass
            if answer or time.monotonic() - started > 4:
                break
        sock.settimeout(3)
        while not answer.endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    except (TimeoutError, ConnectionError):
        pass
    finally:
        sock.close()
    assert _status(answer) == 408
    assert time.monotonic() - started < 3.5


def test_a_silent_connection_is_closed_at_the_first_request_deadline(lab, monkeypatch):
    monkeypatch.setattr(http_limits, "FIRST_REQUEST_S", 0.5)
    for address, ca in ((_imds(lab), None), (lab.listener_addresses()["login"], lab.ca_bundle)):
        started = time.monotonic()
        assert _exchange(address, b"", tls_ca=ca, timeout=5) == b""     # closed without an answer
        assert time.monotonic() - started < 3


def test_a_body_that_never_completes_is_cut_at_the_body_deadline(lab, monkeypatch):
    monkeypatch.setattr(http_limits, "BODY_S", 0.5)
    head = (b"POST /metadata/identity/issuecredential?cred-api-version=2.0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Metadata: true\r\nContent-Length: 100\r\n\r\n{\"csr\":")
    started = time.monotonic()
    assert _status(_exchange(_imds(lab), head)) == 408
    assert time.monotonic() - started < 3


def test_injected_delays_do_not_count_against_the_deadlines(lab, monkeypatch):
    monkeypatch.setattr(http_limits, "HEADER_S", 0.3)
    monkeypatch.setattr(http_limits, "IDLE_S", 0.3)
    lab.set_delay(800, "imds")
    started = time.monotonic()
    assert _status(_exchange(_imds(lab), GOOD_HEAD + b"\r\n")) == 200
    assert time.monotonic() - started >= 0.8


# -- the connection cap ----------------------------------------------------------------------------
def _connection_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("mtlspop-") and t.name.endswith("-conn"))


def test_slow_clients_cannot_take_every_thread_and_a_normal_client_is_still_served(lab):
    limit = http_limits.MAX_CONNECTIONS
    slow = []
    others = _connection_threads()       # other authorities of this test session may hold connections
    try:
        imds, login = _imds(lab), lab.listener_addresses()["login"]
        for i in range(limit + 72):        # half-sent requests on IMDS
            s = socket.create_connection(imds, timeout=5)
            s.sendall(b"GET " + COMPUTE + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(s)
        for i in range(limit + 72):        # silent TCP connections on a TLS listener (no ClientHello)
            slow.append(socket.create_connection(login, timeout=5))
        time.sleep(0.5)
        assert _connection_threads() - others <= limit + 2
        started = time.monotonic()
        assert _status(_exchange(imds, GOOD_HEAD + b"\r\n")) == 200
        answer = _exchange(login, f"GET /{lab.tenant_id}/v2.0/.well-known/openid-configuration HTTP/1.1\r\n"
                                  "Host: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(), tls_ca=lab.ca_bundle)
        assert _status(answer) == 200
        assert time.monotonic() - started < 3
    finally:
        for s in slow:
            s.close()
