"""Whole HTTP exchanges (request and answer), captured on request for the request inspector.

Why a second record beside :class:`~mtlspop_lab.transport.http.RoundTrip`: a round trip is
timing and nothing secret, kept in every trace. A learner also needs to *see* the request
as the OAuth Playground shows it - method, full URL, headers, form fields
(``token_type=mtls_pop``, leg 2's ``client_assertion``), status, answer headers and JSON
(``token_type``, ``expires_in``). Those contain tokens and assertions, so they are kept
only while a :func:`capture` block is open in the current thread, only in the list that
block returns (owned by the caller, e.g. a panel), and every display redacts them (see
:mod:`mtlspop_lab.workshop.request_inspector`).

The connection is named for what it was: plain HTTP (IMDS), TLS (server-authenticated),
or mTLS (a client certificate presented), and new (a handshake) or reused. The host's role
(login, mtlsauth, a regional mtlsauth, IMDS, the resource API) comes from the URL's first
label, or, for the embedded authority on 127.0.0.1, from the cloud the flow used.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlsplit

_local = threading.local()

# first DNS label -> role (Entra and IMDS host names, and the lab's Entra-shaped ones)
ROLE_BY_LABEL = {"login": "login", "mtlsauth": "mtlsauth", "imds": "IMDS", "api": "resource API",
                 "attestation": "attestation", "graph": "resource API", "vault": "resource API"}
ROLE_TEXT = {
    "login": "login: the token service (TLS, no client certificate)",
    "mtlsauth": "mtlsauth: the token service's mTLS endpoint",
    "regional mtlsauth": "regional mtlsauth: the token service in one region (mTLS)",
    "regional login": "regional login: the token service in one region (ESTS-R, TLS, no client certificate)",
    "IMDS": "IMDS: the managed identity endpoint (plain HTTP, link-local)",
    "attestation": "attestation service",
    "resource API": "the protected resource API",
    "host": "a host",
}
IMDS_ADDRESS = "169.254.169.254"


@dataclass(frozen=True)
class Exchange:
    """One attempt: the request as sent and the answer as received (raw: display redacts).

    ``request_headers``/``response_headers`` are (name, value) tuples; ``form`` the decoded
    form fields of an ``application/x-www-form-urlencoded`` body; ``response_body`` the answer's
    text. ``trip`` is the matching :class:`RoundTrip` (timing, connection, client certificate).
    """

    method: str
    url: str
    request_headers: tuple
    form: tuple
    request_body: str
    status: int | None
    response_headers: tuple
    response_body: str
    error: str | None
    trip: Any

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def response_json(self) -> Any:
        try:
            return json.loads(self.response_body) if self.response_body else None
        except ValueError:
            return None

    @property
    def connection(self) -> str:
        """``plain HTTP`` / ``TLS`` / ``mTLS``, then ``new`` or ``reused``."""
        secure = "plain HTTP" if self.scheme == "http" else (
            "mTLS" if getattr(self.trip, "client_cert_x5t", None) else "TLS")
        if getattr(self.trip, "new_connection", False):
            handshake = getattr(self.trip, "tls_handshake_ms", None)
            if secure == "plain HTTP":
                return "plain HTTP, new connection"
            return f"{secure}, new connection" + (f" (handshake {handshake:.1f} ms)" if handshake else "")
        return f"{secure}, reused connection"

    def header(self, name: str, *, answer: bool = False) -> str | None:
        for key, value in (self.response_headers if answer else self.request_headers):
            if key.lower() == name.lower():
                return value
        return None


def host_role(url: str, cloud: Any = None) -> str:
    """The role of the host ``url`` points at: login, mtlsauth, regional mtlsauth, IMDS, resource API.

    From the host name's first label (``login.``, ``mtlsauth.``, ``{region}.mtlsauth.``, ``{region}.login.``,
    ``imds.``, ``api.``), or the IMDS address; for hosts named by address only (the embedded
    authority on 127.0.0.1) from the URLs of ``cloud``. ``host`` when nothing says.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    labels = host.split(".")
    if host == IMDS_ADDRESS:
        return "IMDS"
    if len(labels) > 2 and labels[1] == "mtlsauth":
        return "regional mtlsauth"
    if len(labels) > 2 and labels[1] == "login" and not labels[0].isdigit():
        return "regional login"
    if labels and labels[0] in ROLE_BY_LABEL and not host.replace(".", "").isdigit():
        return ROLE_BY_LABEL[labels[0]]
    if cloud is not None:
        netloc = parts.netloc.lower()
        candidates = [(getattr(cloud, "login_url", None), "login"), (getattr(cloud, "mtls_url", None), "mtlsauth"),
                      (getattr(cloud, "imds_url", None), "IMDS"),
                      (getattr(cloud, "resource_url", None), "resource API")]
        candidates += [(u, "regional mtlsauth") for u in (getattr(cloud, "regional_mtls_urls", None) or {}).values()]
        for base, role in candidates:
            if base and urlsplit(base).netloc.lower() == netloc:
                return role
    return "host"


@contextlib.contextmanager
def capture() -> Iterator[list]:
    """Collect every :class:`Exchange` this thread's transports make inside the block.

    The list is filled as requests happen, so it holds what was sent even when the block
    raises (a refused token request is the most instructive one).
    """
    stack = _local.__dict__.setdefault("captures", [])
    collected: list[Exchange] = []
    stack.append(collected)
    try:
        yield collected
    finally:
        stack.remove(collected)


def capturing() -> bool:
    return bool(_local.__dict__.get("captures"))


def publish(method: str, url: str, kwargs: dict, response, error, trip) -> None:
    """Called by the transport after each attempt; records it only inside :func:`capture`."""
    targets = _local.__dict__.get("captures")
    if not targets:
        return
    prepared = getattr(response, "request", None) or getattr(error, "request", None)
    if prepared is not None:
        headers = tuple((str(k), str(v)) for k, v in prepared.headers.items())
        body = prepared.body
        full_url = prepared.url or url
    else:
        headers = tuple((str(k), str(v)) for k, v in (kwargs.get("headers") or {}).items())
        body = kwargs.get("data")
        full_url = url
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, dict):
        form = tuple((str(k), str(v)) for k, v in body.items())
        body = ""
    else:
        body = body or ""
        content_type = dict((k.lower(), v) for k, v in headers).get("content-type", "")
        form = tuple(parse_qsl(body, keep_blank_values=True)) if "form-urlencoded" in content_type else ()
    exchange = Exchange(
        method=method, url=full_url, request_headers=headers, form=form, request_body=body,
        status=getattr(response, "status_code", None),
        response_headers=tuple((str(k), str(v)) for k, v in getattr(response, "headers", {}).items()),
        response_body=getattr(response, "text", "") if response is not None else "",
        error=getattr(trip, "error", None), trip=trip)
    for collected in targets:
        collected.append(exchange)
