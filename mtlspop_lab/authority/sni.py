"""Read the server name (SNI) a TLS client asks for, before the handshake starts.

Why not ``ssl.SSLContext.sni_callback``: switching ``ssl_socket.context``
inside the callback changes the certificate but not the verify mode
(OpenSSL's ``SSL_set_SSL_CTX`` keeps the connection's ``verify_mode``), so the
one port could not ask for a client certificate on ``mtlsauth.`` hosts and
stay silent on the ``login.`` host. Instead the listener *peeks* at the
ClientHello (``MSG_PEEK``: the bytes stay in the socket for OpenSSL), reads
the ``server_name`` extension (RFC 6066 section 3), and wraps the socket with
the context of that host. The cost is one extra ``recv`` per new connection.
"""

from __future__ import annotations

import socket
import time

_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
_SERVER_NAME = 0x0000
_MAX_PEEK = 5 * (16384 + 5)


class NotTls(Exception):
    """The first bytes are not a TLS ClientHello (plain HTTP on the TLS port, garbage)."""


def peek_server_name(sock: socket.socket, timeout_s: float) -> str | None:
    """The host name of the ClientHello waiting on ``sock`` (lower case), or None without SNI.

    Raises :class:`NotTls` when the bytes are not a ClientHello, ``TimeoutError``
    when a complete ClientHello does not arrive in time, ``OSError`` when the
    peer goes away.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.0005
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete ClientHello")
        sock.settimeout(remaining)
        data = sock.recv(_MAX_PEEK, socket.MSG_PEEK)
        if not data:
            raise ConnectionResetError("closed before the ClientHello")
        hello = _client_hello(data)
        if hello is not None:
            return _server_name(hello)
        if len(data) >= _MAX_PEEK:
            raise NotTls("ClientHello too large")
        time.sleep(pause)            # the rest of the hello is still on the wire
        pause = min(pause * 2, 0.02)


def _client_hello(data: bytes) -> bytes | None:
    """The ClientHello body from one or more handshake records, or None while incomplete."""
    if data[:1] and data[0] != _HANDSHAKE:
        raise NotTls("not a TLS handshake record")
    payload = b""
    offset = 0
    while offset + 5 <= len(data):
        if data[offset] != _HANDSHAKE:
            raise NotTls("ClientHello interrupted by another record type")
        length = int.from_bytes(data[offset + 3:offset + 5], "big")
        if offset + 5 + length > len(data):
            return None
        payload += data[offset + 5:offset + 5 + length]
        offset += 5 + length
        if len(payload) >= 4:
            if payload[0] != _CLIENT_HELLO:
                raise NotTls("first handshake message is not a ClientHello")
            needed = 4 + int.from_bytes(payload[1:4], "big")
            if len(payload) >= needed:
                return payload[4:needed]
    return None


def _server_name(hello: bytes) -> str | None:
    try:
        pos = 2 + 32                                     # client_version, random
        pos += 1 + hello[pos]                            # session_id
        pos += 2 + int.from_bytes(hello[pos:pos + 2], "big")   # cipher_suites
        pos += 1 + hello[pos]                            # compression_methods
        if pos + 2 > len(hello):
            return None                                  # no extensions at all
        end = pos + 2 + int.from_bytes(hello[pos:pos + 2], "big")
        pos += 2
        while pos + 4 <= end:
            kind = int.from_bytes(hello[pos:pos + 2], "big")
            size = int.from_bytes(hello[pos + 2:pos + 4], "big")
            body = hello[pos + 4:pos + 4 + size]
            pos += 4 + size
            if kind != _SERVER_NAME:
                continue
            inner = 2
            while inner + 3 <= len(body):
                name_type = body[inner]
                name_len = int.from_bytes(body[inner + 1:inner + 3], "big")
                name = body[inner + 3:inner + 3 + name_len]
                inner += 3 + name_len
                if name_type == 0:
                    return name.decode("ascii").rstrip(".").lower()
            return None
    except (IndexError, UnicodeDecodeError):
        raise NotTls("malformed ClientHello") from None
    return None
