"""The request inspector: every round trip of a flow as the wire saw it, secrets shortened.

Why: the difference between the flows is in the requests - which host (login or mtlsauth,
a region, IMDS), which form fields (``token_type=mtls_pop``, leg 2's ``client_assertion``),
which answer (``token_type``, ``expires_in``). The OAuth 2.0 Playground shows exactly that;
this does the same for the lab's flows, from the :class:`~mtlspop_lab.transport.exchanges.Exchange`
records a :func:`~mtlspop_lab.transport.exchanges.capture` block collected.

Secrets (the Authorization header, assertions, access tokens) are shown as their decoded
header and claims - what a learner wants to read - never as a usable string. A learner who
wants one to paste elsewhere asks for it by number with :func:`reveal`, and is warned.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import urlsplit

from .. import _html
from ..errors import ConfigurationError, TokenFormatError
from ..inspector import decode_token
from ..redact import contains_secret, redact_text, redact_token
from ..transport.exchanges import ROLE_TEXT, Exchange, host_role

SECRET_FIELDS = ("client_assertion", "assertion", "access_token", "refresh_token", "id_token",
                 "attestation_token", "client_secret")
REVEAL_WARNING = ("This is a live credential of the lab's local authority: whoever holds it can use it until "
                  "it expires (a bound token also needs its certificate). Keep it on this machine.")

_STEP = {"getplatformmetadata": "IMDS: platform metadata", "issuecredential": "IMDS: certificate (CSR)",
         "imds_token": "IMDS: token", "imds_instance": "IMDS: instance metadata", "discovery": "OIDC discovery",
         "resource": "API call"}
_LEG = {"leg1": "leg 1", "leg2": "leg 2"}


@dataclass(frozen=True)
class Secret:
    """One secret of the captured exchanges, addressable by ``index`` for :func:`reveal`."""

    index: int
    exchange: int        # 1-based number of the exchange it belongs to
    where: str           # "request header Authorization", "form client_assertion", "answer access_token"
    value: str

    @property
    def label(self) -> str:
        return f"#{self.exchange} {self.where}"


def step_name(exchange: Exchange) -> str:
    """What the request was for, in words: 'leg 1: token request', 'IMDS: certificate (CSR)'..."""
    trip = exchange.trip
    kind, leg = getattr(trip, "kind", ""), getattr(trip, "leg", "")
    name = _STEP.get(kind, "token request" if kind == "token" else kind)
    return f"{_LEG[leg]}: {name}" if leg in _LEG else name


def secrets(exchanges: Sequence[Exchange]) -> list[Secret]:
    """Every secret in the exchanges, in order: Authorization headers, assertion fields, answer tokens."""
    found: list[Secret] = []
    for number, exchange in enumerate(exchanges, 1):
        auth = exchange.header("Authorization")
        if auth:
            found.append(Secret(len(found), number, "request header Authorization", auth))
        for name, value in exchange.form:
            if name in SECRET_FIELDS and value:
                found.append(Secret(len(found), number, f"form field {name}", value))
        answer = exchange.response_json
        if isinstance(answer, dict):
            for name in SECRET_FIELDS:
                if isinstance(answer.get(name), str) and answer[name]:
                    found.append(Secret(len(found), number, f"answer {name}", answer[name]))
    return found


def reveal(exchanges: Sequence[Exchange], index: int) -> str:
    """The raw value of secret ``index`` (see :func:`secrets`): only when the learner asks."""
    items = secrets(exchanges)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(items):
        raise ConfigurationError(f"There is no secret number {index!r} in these requests.",
                                 cause=f"The requests hold {len(items)} secret(s), numbered from 0.",
                                 fix="Pick one from the list of secrets.", code="no_such_secret")
    return items[index].value


def shortened(value: str) -> str:
    """A token or assertion as its header and claims (JSON), signature left out; anything else redacted."""
    scheme, _, rest = value.partition(" ")
    prefix, token = (f"{scheme} ", rest) if rest and scheme.lower() in ("bearer", "mtls_pop", "pop") else ("", value)
    try:
        decoded = decode_token(token)
    except TokenFormatError:
        return prefix + redact_token(token)
    return (f"{prefix}JWT, signature ({decoded.signature_length} bytes) hidden\n"
            f"header: {json.dumps(decoded.header, ensure_ascii=False)}\n"
            f"claims: {json.dumps(decoded.claims, ensure_ascii=False, indent=1)}")


def _shown_answer(exchange: Exchange) -> str:
    answer = exchange.response_json
    if isinstance(answer, dict):
        shown = {k: (f"<{k}: header + claims below>" if k in SECRET_FIELDS and isinstance(v, str) else v)
                 for k, v in answer.items()}
        text = json.dumps(shown, ensure_ascii=False, indent=1)
        for name in SECRET_FIELDS:
            if isinstance(answer.get(name), str):
                text += f"\n\n{name} = {shortened(answer[name])}"
        return text
    return exchange.response_body[:2000]


def _block(text: str) -> str:
    """Preformatted text. Secrets were already shortened to header + claims; the redactor runs only if a
    complete token is still there (it would otherwise mangle 'client_assertion = JWT, ...' itself)."""
    shown = _html.esc(text) if contains_secret(text) else html.escape(text, quote=True)
    return (f"<pre style='font-family:{_html.MONO};font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere;"
            f"margin:2px 0;padding:4px 6px;border:1px solid {_html.RULE};border-radius:3px'>{shown}</pre>")


def exchange_html(number: int, exchange: Exchange, cloud: Any = None) -> str:
    """One exchange in full: request line, host role, headers, form fields; status, answer headers, JSON."""
    role = host_role(exchange.url, cloud)
    headers = "\n".join(f"{k}: {shortened(v) if k.lower() == 'authorization' else v}"
                        for k, v in exchange.request_headers)
    form = "\n".join(f"{k} = {shortened(v) if k in SECRET_FIELDS else v}" for k, v in exchange.form)
    ok = exchange.status is not None and 200 <= exchange.status < 400
    status = _html.badge(str(exchange.status) if exchange.status is not None else (exchange.error or "no answer"),
                         "ok" if ok else "bad")
    answer_headers = "\n".join(f"{k}: {v}" for k, v in exchange.response_headers)
    parts = [_html.rows([
        ("Request", _html.mono(f"{exchange.method} {redact_text(exchange.url)}")),
        ("Host", _html.esc(f"{urlsplit(exchange.url).netloc} - {ROLE_TEXT.get(role, role)}")),
        ("Connection", _html.esc(exchange.connection)),
        ("Answer", status + " " + _html.esc(f"{getattr(exchange.trip, 'elapsed_ms', 0):.1f} ms"))]),
        "<div><b>Request headers</b></div>" + _block(headers or "(none)")]
    if exchange.form:
        parts.append("<div><b>Form fields</b></div>" + _block(form))
    elif exchange.request_body:
        parts.append("<div><b>Request body</b></div>" + _block(exchange.request_body[:2000]))
    parts.append("<div><b>Answer headers</b></div>" + _block(answer_headers or "(no answer)"))
    if exchange.response_body:
        parts.append("<div><b>Answer body</b></div>" + _block(_shown_answer(exchange)))
    summary = f"#{number} {exchange.method} {role} · {step_name(exchange)} · {exchange.status or exchange.error}"
    return (f"<details class='mtlspop-exchange' {'open' if not ok else ''} style='margin:3px 0'>"
            f"<summary style='cursor:pointer'>{_html.esc(summary)}</summary>{''.join(parts)}</details>")


def summary_table(exchanges: Sequence[Exchange], cloud: Any = None) -> str:
    """One line per request: step, method, host role, path, status, connection, ms."""
    data = []
    for number, exchange in enumerate(exchanges, 1):
        ok = exchange.status is not None and 200 <= exchange.status < 400
        data.append([number, step_name(exchange), exchange.method, host_role(exchange.url, cloud),
                     urlsplit(exchange.url).path,
                     _html.Raw(_html.badge(str(exchange.status or exchange.error or "no answer"), "ok" if ok else "bad")),
                     exchange.connection, f"{getattr(exchange.trip, 'elapsed_ms', 0):.1f}"])
    return _html.table(["#", "Step", "Method", "Host", "Path", "Status", "Connection", "ms"], data,
                       css_class="mtlspop-table mtlspop-roundtrips-table")


def inspector_html(exchanges: Sequence[Exchange], cloud: Any = None, *, cached: bool = False) -> str:
    """The whole inspector: the summary table, then every exchange (failed ones opened)."""
    if not exchanges:
        text = ("No request: the token came from the cache." if cached else "No request was sent.")
        return _html.card(text, tone="info", css_class="mtlspop-roundtrips mtlspop-requests")
    count = len(exchanges)
    head = (f"<b>Requests ({count})</b> <span style='color:{_html.MUTED}'>tokens and assertions are shown as "
            f"their header and claims; the signature is never shown</span>")
    details = "".join(exchange_html(n, e, cloud) for n, e in enumerate(exchanges, 1))
    return (f"<div class='mtlspop-roundtrips mtlspop-requests'>{head}{summary_table(exchanges, cloud)}"
            f"{details}</div>")
