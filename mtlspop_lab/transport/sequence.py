"""A token acquisition as a sequence diagram: Mermaid for JupyterLab, HTML everywhere else.

Why: the difference between the vanilla flow and the FIC two-leg flow is a
difference in arrows (one token request against two, IMDS before the token
service, a certificate presented in the TLS handshake). Drawing the round
trips that really happened, taken from :attr:`TokenResult.round_trips`,
makes that visible and honest: a cache hit draws no arrow at all.

:class:`SequenceDiagram` displays as ``text/vnd.mermaid`` (drawn natively by
JupyterLab 4.1+) with a ``text/plain`` numbered list for front ends without
Mermaid. The HTML fallback (:meth:`SequenceDiagram.html`, or
``display(diagram.as_html())``) is not in the display bundle on purpose:
JupyterLab ranks ``text/html`` above ``text/vnd.mermaid`` and would never draw
the diagram.
Nothing secret is drawn: endpoints are already redacted by the transport,
and a certificate appears as the first characters of its x5t#S256.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Iterable, Sequence
from urllib.parse import urlsplit

from ..redact import redact_text

# participant id -> label (in drawing order)
PARTICIPANTS = {
    "App": "Your app (msal)",
    "IMDS": "IMDS (managed identity endpoint)",
    "MAA": "Attestation service (MAA)",
    "STS": "Token service (Entra ID)",
    "API": "Protected API",
}

_KIND_TO_PARTICIPANT = {
    "discovery": "STS", "token": "STS",
    "imds_token": "IMDS", "imds_instance": "IMDS", "getplatformmetadata": "IMDS",
    "issuecredential": "IMDS", "resource": "API", "attestation": "MAA",
}

_KIND_LABEL = {
    "discovery": "OIDC discovery",
    "token": "token request",
    "imds_token": "IMDS v1 token",
    "imds_instance": "instance metadata",
    "getplatformmetadata": "getplatformmetadata (IMDS v2)",
    "issuecredential": "issuecredential (CSR → certificate)",
    "resource": "call with the token",
    "attestation": "attest the key (KeyGuard stand-in)",
}

_LEG_TITLES = {
    "leg1": "Leg 1: get an assertion (aud api://AzureADTokenExchange)",
    "leg2": "Leg 2: exchange the assertion for the access token",
    "token": "Acquire the token",
    "resource": "Call the protected API",
}


@dataclass(frozen=True)
class Step:
    """One arrow pair: a request and its answer."""

    leg: str
    participant: str
    label: str
    status: str
    elapsed_ms: float
    new_connection: bool
    client_cert: str | None      # first characters of the presented cert's x5t#S256
    attempt: int
    plain_http: bool = False     # http:// (IMDS): no TLS at all

    @property
    def answer(self) -> str:
        if not self.new_connection:
            conn = "reused connection"
        elif self.plain_http:
            conn = "new plain-HTTP connection"
        else:
            conn = "new mTLS connection" if self.client_cert else "new TLS connection"
        return f"{self.status} in {self.elapsed_ms:.1f} ms, {conn}"

    @property
    def request(self) -> str:
        text = self.label
        if self.attempt > 1:
            text += f" (retry {self.attempt - 1})"
        if self.client_cert:
            text += f" + client cert {self.client_cert}…"
        return text


_UNTENANTED = {"common", "organizations", "consumers"}


def _tenant_of(path: str) -> str | None:
    """The tenant segment of a token-service path (``/{tenant}/oauth2/v2.0/token``), if any."""
    first = path.strip("/").split("/", 1)[0]
    return first if first and first.lower() not in _UNTENANTED else None


def _steps(round_trips: Iterable, tenants: dict | None = None) -> list[Step]:
    """``tenants`` collects tenant -> participant id (``STS``, ``STS2``...): one lifeline per tenant."""
    tenants = {} if tenants is None else tenants
    steps = []
    for trip in round_trips:
        kind = getattr(trip, "kind", "resource")
        method = getattr(trip, "method", "GET")
        endpoint = urlsplit(redact_text(str(getattr(trip, "endpoint", ""))))
        path = endpoint.path or "/"
        label = f"{method} {_KIND_LABEL.get(kind, path)}"
        participant = _KIND_TO_PARTICIPANT.get(kind, "API")
        if participant == "STS":
            tenant = _tenant_of(path) or next(iter(tenants), None) or "?"
            participant = tenants.setdefault(tenant, "STS" if not tenants else f"STS{len(tenants) + 1}")
        status = getattr(trip, "status", None)
        cert = getattr(trip, "client_cert_x5t", None)
        steps.append(Step(
            leg=str(getattr(trip, "leg", "-")),
            participant=participant,
            label=label,
            status=str(status) if status is not None else (getattr(trip, "error", None) or "no answer"),
            elapsed_ms=float(getattr(trip, "elapsed_ms", 0.0) or 0.0),
            new_connection=bool(getattr(trip, "new_connection", False)),
            client_cert=cert[:8] if cert else None,
            attempt=int(getattr(trip, "attempt", 1) or 1),
            plain_http=endpoint.scheme == "http",
        ))
    return steps


def _mermaid_text(text: str) -> str:
    """Mermaid message text: no characters that end a message or start a directive."""
    for bad, good in ((";", ","), ("#", "♯"), ("\n", " "), ("<", "‹"), (">", "›")):
        text = text.replace(bad, good)
    return text


class SequenceDiagram:
    """The round trips of one or more results, drawn as request/answer arrows."""

    def __init__(self, steps: Sequence[Step], *, title: str = "", cached: bool = False,
                 tenants: dict | None = None):
        self.steps = list(steps)
        self.title = title
        self.cached = cached
        # one token-service lifeline per tenant, each named with its tenant (cross-tenant FIC has two)
        self.labels = dict(PARTICIPANTS)
        for tenant, pid in (tenants or {}).items():
            short = tenant if len(tenant) <= 12 else tenant[:8] + "…"
            self.labels[pid] = f"Token service (Entra ID, tenant {short})" if tenant != "?" else PARTICIPANTS["STS"]

    @classmethod
    def from_results(cls, *results, title: str = "") -> "SequenceDiagram":
        """From TokenResults (and anything with ``round_trips``), in order."""
        trips = [trip for result in results if result is not None
                 for trip in getattr(result, "round_trips", ())]
        cached = bool(results) and all(getattr(r, "source", "") == "cache" for r in results if r is not None)
        tenants: dict = {}
        return cls(_steps(trips, tenants), title=title, cached=cached, tenants=tenants)

    @classmethod
    def from_round_trips(cls, round_trips: Iterable, *, title: str = "") -> "SequenceDiagram":
        tenants: dict = {}
        return cls(_steps(round_trips, tenants), title=title, tenants=tenants)

    @property
    def participants(self) -> list[str]:
        used = {step.participant for step in self.steps}
        services = sorted((p for p in used if p.startswith("STS")), key=lambda p: (len(p), p))
        return (["App"] + [p for p in ("IMDS", "MAA") if p in used] + services
                + (["API"] if "API" in used else []))

    # -- Mermaid -------------------------------------------------------------------------
    def mermaid(self) -> str:
        lines = ["sequenceDiagram"]
        if self.title:
            lines.insert(0, f"---\ntitle: {_mermaid_text(self.title)}\n---")
        for pid in self.participants:
            lines.append(f"    participant {pid} as {_mermaid_text(self.labels.get(pid, pid))}")
        if not self.steps:
            lines.append("    Note over App: " + ("served from the token cache, no request sent"
                                                   if self.cached else "no request recorded"))
            return "\n".join(lines)
        leg = None
        for number, step in enumerate(self.steps, 1):
            if step.leg != leg:
                leg = step.leg
                span = "App," + (self.participants[-1] if len(self.participants) > 1 else "App")
                lines.append(f"    Note over {span}: {_mermaid_text(_LEG_TITLES.get(leg, leg))}")
            lines.append(f"    App->>{step.participant}: {number}. {_mermaid_text(step.request)}")
            arrow = "-->>" if step.status.startswith(("2", "3")) else "--x"
            lines.append(f"    {step.participant}{arrow}App: {_mermaid_text(step.answer)}")
        return "\n".join(lines)

    # -- HTML fallback ---------------------------------------------------------------------
    def html(self) -> str:
        def esc(text: str) -> str:
            return html.escape(redact_text(text))

        head = f"<b>{esc(self.title)}</b>" if self.title else ""
        if not self.steps:
            body = ("<p>Served from the token cache: no request sent.</p>" if self.cached
                    else "<p>No request recorded.</p>")
            return f"<div class='mtlspop-sequence'>{head}{body}</div>"
        items, leg = [], None
        for number, step in enumerate(self.steps, 1):
            if step.leg != leg:
                leg = step.leg
                items.append(f"<div style='font-weight:600;margin-top:4px'>{esc(_LEG_TITLES.get(leg, leg))}</div>")
            mark = "✔" if step.status.startswith(("2", "3")) else "✘"
            items.append(f"<div style='margin-left:12px'>{number}. {esc(PARTICIPANTS['App'])} → "
                         f"{esc(self.labels.get(step.participant, step.participant))}: {esc(step.request)}<br>"
                         f"<span style='margin-left:16px;opacity:.8'>{mark} {esc(step.answer)}</span></div>")
        return (f"<div class='mtlspop-sequence' style='font-family:system-ui,sans-serif;font-size:13px'>"
                f"{head}{''.join(items)}</div>")

    def __str__(self) -> str:
        if not self.steps:
            return "served from the token cache, no request sent" if self.cached else "no request recorded"
        return "\n".join(f"{n}. App -> {s.participant}: {s.request} -> {s.answer}"
                         for n, s in enumerate(self.steps, 1))

    def __repr__(self) -> str:
        return f"<SequenceDiagram {len(self.steps)} round trips>"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/vnd.mermaid": self.mermaid(), "text/plain": str(self)}

    def as_html(self) -> "_Html":
        """The HTML step list as a displayable object (for front ends without Mermaid)."""
        return _Html(self.html())


class _Html:
    def __init__(self, markup: str):
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup


def sequence_diagram(*results, title: str = "") -> SequenceDiagram:
    """The diagram of one or more TokenResults (e.g. leg 1 then leg 2)."""
    return SequenceDiagram.from_results(*results, title=title)
