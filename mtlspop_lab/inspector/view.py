"""The claims inspector: one token laid open, the way a learner should prefer to jwt.io.

Why a view of its own: :func:`~mtlspop_lab.inspector.explain_claims` is a table for code;
a workshop needs the whole story on one card - the three segments of the compact JWS
colour-coded (and named, so colour is never the only carrier), every claim with its full
meaning, wrapped and left-aligned, times in the reader's local time and relative to now,
``cnf.x5t#S256`` beside the thumbprint of the certificate in hand, and whether the
signature verifies against the issuer's JWKS. jwt.io shows the first two; it cannot know
the certificate or the lab's keys.

What the card says first is the kind of token: certificate-bound (``cnf.x5t#S256``),
Bearer (nothing to bind), or unsigned (``alg: none`` or no signature: it proves nothing).

Nothing here reveals the token: the segments are shown as decoded JSON, the signature as
its length, and the compact form redacted.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any

from .. import _html
from ..errors import TokenValidationError
from . import glossary as _claims
from ._text import _as_time, _duration, _utcnow
from .binding import BindingVerdict, check_binding
from .decode import DecodedToken, decode_token
from .verify import verify_token

# segment -> (label, colour): jwt.io's convention, readable on light and dark backgrounds
SEGMENTS = {"header": ("HEADER", "#e0115f"), "payload": ("PAYLOAD", "#a335ee"),
            "signature": ("SIGNATURE", "#0b8fc7")}

POP, BEARER, UNSIGNED = "certificate_bound", "bearer", "unsigned"
SIGNATURE_VERIFIED, SIGNATURE_INVALID, SIGNATURE_UNSIGNED, SIGNATURE_NOT_CHECKED = (
    "verified", "invalid", "unsigned", "not_checked")
_TIME_CODES = {"token_expired", "token_not_yet_valid", "token_issued_in_future", "missing_exp",
               "bad_time_claim"}   # raised after the signature verified


@dataclass(frozen=True)
class ClaimRow:
    """One header parameter or claim: its full value and meaning; for times, local and relative."""

    part: str            # "header" | "payload"
    name: str
    value: str           # compact JSON or the string itself, never clipped
    meaning: str
    local_time: str = ""
    relative: str = ""


@dataclass(frozen=True)
class TokenView:
    """What :func:`inspect_token` found; ``_repr_html_`` is the card, ``to_text`` the terminal form."""

    decoded: DecodedToken
    kind: str                        # certificate_bound | bearer | unsigned
    rows: tuple
    signature: str                   # verified | invalid | unsigned | not_checked
    signature_detail: str
    verdict: BindingVerdict | None   # cnf against the certificate given, if any
    warnings: tuple = ()             # (code, sentence)

    @property
    def codes(self) -> tuple:
        return tuple(code for code, _ in self.warnings)

    @property
    def headline(self) -> str:
        if self.kind == UNSIGNED:
            return "Unsigned token (alg: none or no signature): it proves nothing; never accept it"
        if self.kind == BEARER:
            return "Bearer token: no cnf claim, so there is nothing to bind; whoever holds it can use it"
        if self.verdict is None:
            return "Certificate-bound token (cnf.x5t#S256); no certificate given to compare with"
        if self.verdict.bound:
            return "Certificate-bound token, bound to this certificate"
        return "Certificate-bound token, but NOT to this certificate"

    @property
    def tone(self) -> str:
        if self.kind == UNSIGNED or self.signature == SIGNATURE_INVALID:
            return "bad"
        if self.kind == BEARER:
            return "warn"
        if self.verdict is not None and not self.verdict.bound:
            return "bad"
        return "ok"

    def to_text(self) -> str:
        lines = [self.headline, f"  signature: {self.signature_detail}"]
        for row in self.rows:
            when = f"  ({row.local_time}, {row.relative})" if row.local_time else ""
            lines.append(f"  {row.part:<7} {row.name}: {row.value}{when}")
            lines.append(f"          {row.meaning}")
        if self.verdict is not None:
            lines.append(f"  certificate x5t#S256: {self.verdict.expected}")
            lines.append(f"  token cnf.x5t#S256  : {self.decoded.x5t_s256}")
        lines += [f"  ⚠ {text}" for _, text in self.warnings]
        return "\n".join(lines)

    __str__ = to_text

    def __repr__(self) -> str:
        return f"<TokenView {self.kind} signature={self.signature} {self.decoded.redacted}>"

    def _repr_html_(self) -> str:
        return token_card(self)


def inspect_token(token: Any, *, certificate: Any = None, jwks: Any = None, authority: Any = None,
                  now: _dt.datetime | None = None, tz: _dt.tzinfo | None = None) -> TokenView:
    """Decode ``token`` and say what it is, claim by claim; verify its signature when keys are given.

    ``certificate``: compare ``cnf.x5t#S256`` with it (a token result's ``binding_certificate``
    by default). ``jwks`` or ``authority`` (anything with ``.jwks``): check the signature
    against those keys (signature only: times, audience and issuer are shown, not enforced).
    ``tz``: the time zone for local times (the machine's by default).
    """
    decoded = decode_token(token)
    if certificate is None and not isinstance(token, (str, bytes, DecodedToken, dict)):
        certificate = getattr(token, "binding_certificate", None)
    moment = now or _utcnow()
    rows = tuple(_rows(decoded, moment, tz))
    unsigned = (decoded.alg or "").lower() == "none" or not decoded.signature_present
    kind = UNSIGNED if unsigned else (POP if decoded.is_certificate_bound else BEARER)
    signature, detail = _signature(decoded, unsigned, jwks if jwks is not None else
                                   getattr(authority, "jwks", None))
    verdict = check_binding(decoded, certificate) if certificate is not None and kind != BEARER else None
    return TokenView(decoded, kind, rows, signature, detail, verdict, tuple(_warnings(decoded, kind, moment)))


def _rows(decoded: DecodedToken, moment: _dt.datetime, tz) -> list[ClaimRow]:
    rows = []
    for part, items in (("header", decoded.header), ("payload", decoded.claims)):
        for name, value in items.items():
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            meaning = _claims.meaning_of(name, header=part == "header")
            local, relative = "", ""
            if part == "payload" and name in _claims.TIME_CLAIMS:
                t = _as_time(value)
                if t is None:
                    local = "not a valid time"
                else:
                    local = t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
                    relative = _relative(name, (t - moment).total_seconds())
            if part == "payload" and name == "cnf" and isinstance(value, dict):
                known = [f"{k}: {_claims.CNF_MEMBER_MEANINGS[k]}." for k in value if k in _claims.CNF_MEMBER_MEANINGS]
                meaning = " ".join(known + [meaning])
            rows.append(ClaimRow(part, str(name), shown, meaning, local, relative))
    return rows


def _relative(name: str, seconds: float) -> str:
    if name == "exp":
        return f"expires in {_duration(seconds)}" if seconds > 0 else f"expired {_duration(-seconds)} ago"
    if name == "nbf":
        return f"valid in {_duration(seconds)}" if seconds > 0 else f"valid since {_duration(-seconds)}"
    return f"in {_duration(seconds)}" if seconds > 0 else f"{_duration(-seconds)} ago"


def _signature(decoded: DecodedToken, unsigned: bool, jwks: Any) -> tuple[str, str]:
    if unsigned:
        return SIGNATURE_UNSIGNED, "none: alg is 'none' or the signature is empty; anyone could have written this token"
    if jwks is None:
        return SIGNATURE_NOT_CHECKED, (f"present ({decoded.signature_length} bytes, {decoded.alg}); not checked: "
                                       "pass jwks= or authority= to verify it")
    try:
        verified = verify_token(decoded, keys=jwks)
    except TokenValidationError as error:
        if error.code in _TIME_CODES:
            return SIGNATURE_VERIFIED, (f"verifies with the issuer's JWKS ({decoded.alg}, kid {decoded.kid}); "
                                        f"but {error.message}")
        return SIGNATURE_INVALID, f"does NOT verify with the issuer's JWKS: {error.message}"
    kid = (verified.verification or {}).get("kid")
    return SIGNATURE_VERIFIED, f"verifies with the issuer's JWKS ({decoded.alg}, kid {kid})"


def _warnings(decoded: DecodedToken, kind: str, moment: _dt.datetime) -> list[tuple[str, str]]:
    found = []
    if kind == UNSIGNED:
        found.append(("unsigned", "alg: none / no signature. A resource that accepts this accepts any claims "
                                  "anyone writes; verify_token refuses it."))
    if (decoded.alg or "").upper().startswith("HS"):
        found.append(("hmac", f"alg {decoded.alg} is a shared-secret algorithm: an identity provider signs "
                              "access tokens with its private key (RS256), never HMAC."))
    expired = decoded.is_expired(moment)
    if expired:
        found.append(("expired", "The token has expired: a resource refuses it."))
    token_type = (decoded.token_type or "").lower()
    if kind == POP and token_type == "bearer":
        found.append(("bound_but_labelled_bearer", "token_type says Bearer, but cnf binds it: binding is decided "
                                                   "by cnf (generic RFC 8705 servers label bound tokens Bearer)."))
    if kind == BEARER and token_type == "mtls_pop":
        found.append(("labelled_pop_but_unbound", "token_type says mtls_pop, but there is no cnf.x5t#S256: "
                                                  "treat it as a Bearer token."))
    return found


# -- rendering ---------------------------------------------------------------------------------
def segment_strip(decoded: DecodedToken) -> str:
    """The compact JWS as three coloured, named blocks (header.payload.signature), nothing secret."""
    header = json.dumps(decoded.header, ensure_ascii=False)
    payload_names = ", ".join(decoded.claims) or "(empty)"
    signature = (f"{decoded.signature_length} bytes, not shown" if decoded.signature_present else "EMPTY")
    parts = [("header", header), ("payload", f"{len(decoded.claims)} claims: {payload_names}"),
             ("signature", signature)]
    blocks = []
    for key, text in parts:
        label, colour = SEGMENTS[key]
        blocks.append(f"<div class='mtlspop-segment mtlspop-segment-{key}' style='border-left:4px solid {colour};"
                      f"padding:2px 8px;margin:2px 0'><span style='color:{colour};font-weight:700;"
                      f"font-size:11px;letter-spacing:.05em'>{label}</span> "
                      f"<span style='font-family:{_html.MONO};font-size:12px'>{_html.esc(text)}</span></div>")
    dot = "<span style='opacity:.6'>.</span>"
    line = dot.join(f"<span style='color:{SEGMENTS[k][1]};font-weight:700'>{SEGMENTS[k][0].lower()}</span>"
                    for k in ("header", "payload", "signature"))
    return (f"<div class='mtlspop-segments'><div style='font-size:12px'>compact JWS = {line}</div>"
            + "".join(blocks) + "</div>")


def claims_table(rows, *, css_class: str = "mtlspop-claims") -> str:
    """Every claim, full value and full meaning, wrapped and left-aligned (readable at 1024 px)."""
    body = []
    for row in rows:
        colour = SEGMENTS[row.part][1]
        when = ""
        if row.local_time:
            when = (f"<div style='margin-top:2px'><b>{_html.esc(row.local_time)}</b>"
                    + (f" · {_html.esc(row.relative)}" if row.relative else "") + "</div>")
        body.append(
            f"<tr style='border-top:1px solid {_html.RULE}'>"
            f"<td style='vertical-align:top;text-align:left;padding:4px 8px;border-left:4px solid {colour};"
            f"white-space:nowrap;width:1%'><code style='font-family:{_html.MONO};font-weight:700;"
            f"white-space:nowrap;word-break:keep-all'>{_html.esc(row.name)}</code></td>"
            f"<td style='vertical-align:top;text-align:left;padding:4px 8px;min-width:0'>"
            f"<div style='font-family:{_html.MONO};font-size:12px;overflow-wrap:anywhere;"
            f"word-break:break-all'>{_html.esc(row.value)}</div>{when}"
            f"<div style='color:{_html.MUTED};margin-top:2px'>{_html.esc(row.meaning)}</div></td></tr>")
    return (f"<table class='{css_class}' style='border-collapse:collapse;width:100%;table-layout:auto;"
            f"text-align:left;font-size:13px;color:inherit'>{''.join(body)}</table>")


def token_card(view: TokenView) -> str:
    """The claims inspector's card: kind, signature, binding, segments, then every claim."""
    d = view.decoded
    sig_tone = {SIGNATURE_VERIFIED: "ok", SIGNATURE_INVALID: "bad", SIGNATURE_UNSIGNED: "bad",
                SIGNATURE_NOT_CHECKED: "info"}[view.signature]
    sig_word = {SIGNATURE_VERIFIED: "verified", SIGNATURE_INVALID: "invalid", SIGNATURE_UNSIGNED: "unsigned",
                SIGNATURE_NOT_CHECKED: "not checked"}[view.signature]
    pairs = [("Token", _html.mono(d.redacted)),
             ("Signature", _html.badge(sig_word, sig_tone) + " " + _html.esc(view.signature_detail))]
    if d.token_type:
        pairs.append(("token_type", _html.esc(d.token_type)))
    if view.kind == POP:
        pairs.append(("Token cnf.x5t#S256", _html.mono(d.x5t_s256, "mtlspop-cnf-x5t")))
        if view.verdict is not None:
            pairs.append(("Certificate x5t#S256", _html.mono(view.verdict.expected, "mtlspop-cert-x5t")))
            pairs.append(("Binding", _html.badge("cnf = certificate", "ok") if view.verdict.bound
                          else _html.badge("cnf ≠ certificate", "bad") + " " + _html.esc(view.verdict.reason)))
    elif view.kind == BEARER:
        pairs.append(("Binding", _html.esc("none: no cnf claim. Nothing ties this token to a certificate "
                                           "or key, so there is nothing to check.")))
    body = _html.rows(pairs)
    if view.warnings:
        body += "".join(f"<div class='mtlspop-warning mtlspop-{code}' style='margin-top:4px'>"
                        f"{_html.badge(code.replace('_', ' '), 'bad' if code == 'unsigned' else 'warn')} "
                        f"{_html.esc(text)}</div>" for code, text in view.warnings)
    body += segment_strip(d) + claims_table(view.rows)
    return _html.card(view.headline, body, tone=view.tone, css_class=f"mtlspop-token mtlspop-kind-{view.kind}")
