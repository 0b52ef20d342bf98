"""Fault injection: what real token services and IMDS do on a bad day, on demand.

Each fault applies to the next ``count`` eligible requests on a listener, so
a test or a notebook can show exactly one retry, one timeout, one downgrade.
Discovery and JWKS requests are not eligible (a fault there would stop msal
before the token request it is meant to disturb) unless ``path_contains``
names them.

Kinds:

``status``          an Entra/IMDS-style error JSON with ``status`` (503 by
                    default) and, when given, ``Retry-After: retry_after``;
``slow``            answer only after ``delay_ms`` (beyond a client timeout);
``reset``           close the connection without an answer;
``malformed_json``  200 with a body that is not JSON;
``bearer_downgrade`` mtls_pop asked, an unbound Bearer token answered.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import parse_qsl

from ..errors import ConfigurationError
from .imds import imds_error
from .oauth_errors import oauth_error
from .server import Request, Response

MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1>An upstream proxy answered.</body></html>"
KINDS = ("status", "slow", "reset", "malformed_json", "bearer_downgrade")
LISTENER_GROUPS = ("all", "login", "mtls", "regional", "imds", "resource")


def listener_matches(selector: str, listener: str) -> bool:
    """``all``, ``regional`` (every ``mtls:<region>``), or one listener name."""
    if selector == "all":
        return True
    if selector == "regional":
        return listener.startswith("mtls:")
    return selector == listener


def check_listener_selector(selector: str, known: list[str]) -> str:
    if selector in LISTENER_GROUPS or selector in known:
        return selector
    raise ConfigurationError(f"Unknown listener {selector!r}.",
                             cause=f"The authority's listeners are: {', '.join(known)}.",
                             fix='Use "all", "login", "mtls", "regional", "mtls:<region>", "imds" or "resource".')


@dataclass
class Fault:
    kind: str
    remaining: int
    listener: str = "all"
    status: int = 503
    retry_after: float | None = None
    delay_ms: float = 3000.0
    path_contains: str | None = None

    @property
    def label(self) -> str:
        """How the trace names it: ``status 503``, ``reset``, ``bearer_downgrade``..."""
        return f"{self.kind} {self.status}" if self.kind == "status" else self.kind

    def eligible(self, listener: str, path: str) -> bool:
        if not listener_matches(self.listener, listener):
            return False
        if self.path_contains is not None:
            return self.path_contains in path
        return "/.well-known/" not in path and "/discovery/" not in path


class FaultPlan:
    """The pending faults, consumed one request at a time (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        if fault.kind not in KINDS:
            raise ConfigurationError(f"Unknown fault kind {fault.kind!r}.", cause=f"Known kinds: {', '.join(KINDS)}.",
                                     fix='inject_fault("status", count=1, status=503)')
        if int(fault.remaining) < 1:
            raise ConfigurationError("count must be at least 1.", fix="inject_fault(kind, count=1)")
        if fault.kind == "status" and not 400 <= int(fault.status) <= 599:
            raise ConfigurationError(f"status {fault.status} is not an error status.", fix="Use 400-599, e.g. 429 or 503.")
        with self._lock:
            self._faults.append(fault)

    def take(self, listener: str, path: str) -> Fault | None:
        """The first pending fault for this request, its count decremented."""
        with self._lock:
            for fault in self._faults:
                if fault.eligible(listener, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return [Fault(**vars(f)) for f in self._faults]


def _client_facts(request: Request) -> dict:
    """grant_type and client_id of a form POST, so a faulted exchange is still attributed in the trace."""
    if request.method != "POST" or not request.body:
        return {}
    try:
        form = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return {}
    return {key: form[key] for key in ("grant_type", "client_id") if key in form}


def fault_response(fault: Fault, request: Request, *, imds: bool) -> Response | None:
    """The answer that replaces the service's for ``status``, ``reset`` and ``malformed_json``.

    None for the kinds that let the service answer (``slow`` after its wait,
    ``bearer_downgrade`` with a flag).
    """
    info = {"fault": fault.label, **_client_facts(request)}
    if fault.kind == "status":
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        if imds:
            response = imds_error(fault.status, "service_unavailable" if fault.status >= 500 else "throttled",
                                  f"Injected fault: HTTP {fault.status}.", **info)
            response.headers.update(headers)
            return response
        return oauth_error("server_error", f"Injected fault: the service answered HTTP {fault.status}.",
                           request, status=fault.status, headers=headers, **info)
    if fault.kind == "reset":
        return Response(0, reset=True, info={**info, "error": "connection reset (injected)"})
    if fault.kind == "malformed_json":
        return Response(200, MALFORMED_BODY, {"Content-Type": "application/json"},
                        info={**info, "error": "malformed JSON (injected)"})
    return None
