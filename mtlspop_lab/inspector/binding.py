"""The binding decision: does a token's ``cnf.x5t#S256`` name this certificate?

Binding is decided by ``cnf``, never by ``token_type``: other RFC 8705 servers issue
certificate-bound tokens labelled ``Bearer``. When the two differ, the usual mistakes
(standard base64, padding, SHA-1, hex, hash of the PEM text or of the public key) are named.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
from dataclasses import dataclass, field
from typing import Any

from .. import _html
from ..certs import Certificate, b64url, x5t_of_der, x5t_s256_of_der
from ..certs.parse import read_certificates
from . import glossary as _claims
from ._text import _clip, _first_sentence, _json_type
from .decode import _B64URL_RE, DecodedToken, decode_token

# =====================================================================================
# Binding
# =====================================================================================
_MISTAKE_TEXT = {
    "padding": "'=' padding (x5t#S256 is base64url without padding)",
    "standard_base64": "standard base64 ('+', '/') instead of base64url ('-', '_')",
    "hex": "hex digits instead of base64url",
    "base64_of_hex": "base64url of the hex text instead of base64url of the digest bytes",
    "sha1": "SHA-1 (the x5t / Windows thumbprint) instead of SHA-256",
    "pem_text": "a hash of the PEM text instead of the certificate's DER bytes",
    "public_key": "a hash of the public key (SPKI DER) instead of the whole certificate DER",
    "chain_order": "the thumbprint of another certificate of the chain that was given",
}


_SHORT = {
    "other_certificate": "the token is bound to another certificate",
    "no_cnf": "a bearer token (no cnf claim)",
    "no_certificate": "no certificate to compare with",
    "chain_order": "bound to another certificate of the chain given",
}


@dataclass(frozen=True, repr=False)
class BindingVerdict:
    """Whether a token is bound to a certificate, and why.

    ``bound``: the token's ``cnf.x5t#S256`` equals base64url(SHA-256(DER)) of
    ``certificate``. ``expected`` is that certificate thumbprint, ``actual``
    the token's value (None when absent or not a string). ``mistakes`` holds
    codes (``padding``, ``standard_base64``, ``hex``, ``sha1``, ``pem_text``,
    ``public_key``, ``no_cnf``, ``other_certificate``...) when the comparison
    failed in a recognisable way, and ``reason`` says it in words.
    ``bool(verdict)`` is ``verdict.bound``. The signature is not verified here:
    see :func:`verify_token`.
    """

    bound: bool
    expected: str | None
    actual: str | None
    reason: str
    mistakes: tuple = ()
    fix: str = ""
    certificate: Certificate | None = field(default=None, compare=False)
    token_type: str | None = None
    notes: tuple = ()

    def __bool__(self) -> bool:
        return self.bound

    @property
    def certificate_subject(self) -> str | None:
        return self.certificate.subject if self.certificate is not None else None

    @property
    def mistake(self) -> str | None:
        return self.mistakes[0] if self.mistakes else None

    @property
    def summary(self) -> str:
        """One line: the verdict in words (the reason gives the detail)."""
        if self.bound:
            return "BOUND: the token's cnf.x5t#S256 matches this certificate"
        if self.mistakes and self.mistakes[0] in _SHORT:
            return "NOT BOUND: " + _SHORT[self.mistakes[0]]
        if self.mistakes and set(self.mistakes) <= set(_MISTAKE_TEXT):
            return "NOT BOUND: the right certificate, but its thumbprint was computed or encoded wrongly"
        return "NOT BOUND: " + _first_sentence(self.reason)

    def differences(self) -> list[int]:
        """Positions where ``expected`` and ``actual`` differ (beyond the shorter: all)."""
        a, b = self.expected or "", self.actual or ""
        return [i for i in range(max(len(a), len(b)))
                if i >= len(a) or i >= len(b) or a[i] != b[i]]

    def to_text(self) -> str:
        """Plain text for terminals: the verdict in words, both thumbprints aligned."""
        head = ("✓ " if self.bound else "✗ ") + self.summary
        lines = [head]
        if self.certificate_subject:
            lines.append(f"  certificate          : {self.certificate_subject}")
        lines.append(f"  expected (certificate): {self.expected or '—'}")
        lines.append(f"  actual   (token cnf)  : {self.actual if self.actual is not None else '—'}")
        if self.expected and self.actual is not None and not self.bound:
            diff = set(self.differences())
            marks = "".join("^" if i in diff else " "
                            for i in range(max(len(self.expected), len(self.actual))))
            lines.append(f"                          {marks.rstrip()}  ({len(diff)} position(s) differ)")
        lines.append(f"  reason: {self.reason}")
        if self.mistakes:
            lines.append(f"  mistakes: {', '.join(self.mistakes)}")
        if self.fix and not self.bound:
            lines.append(f"  fix: {self.fix}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        lines.append("  (binding only: the token's signature was not verified; use verify_token)")
        return "\n".join(lines)

    __str__ = to_text

    def __repr__(self) -> str:
        return (f"BindingVerdict(bound={self.bound}, expected={self.expected!r}, "
                f"actual={self.actual!r}, mistakes={self.mistakes!r})")

    def _repr_html_(self) -> str:
        esc = html.escape
        ok = self.bound
        # the theme's success / error colour (these fallbacks outside JupyterLab), a tint of it behind
        border = "var(--jp-success-color1,#1a7f37)" if ok else "var(--jp-error-color1,#cf222e)"
        background = (f"background:{'#e6f4ea' if ok else '#ffebe9'};"
                      f"background:color-mix(in srgb,{border} 13%,var(--jp-layout-color1,#fff))")
        fg = _html.TEXT
        title = ("✔ " if ok else "✘ ") + self.summary
        a, b = self.expected or "", self.actual if self.actual is not None else ""
        diff = set(self.differences()) if (a and self.actual is not None) else set()
        width = max(len(a), len(b))

        def cells(text: str) -> str:
            out = []
            for i in range(width):
                ch = text[i] if i < len(text) else "·"  # nothing here: the other one is longer
                if i in diff:
                    out.append(f"<span style='background:#ffd7d5;color:#5c0f0b;text-decoration:underline;"
                               f"font-weight:bold' title='differs at {i}'>{esc(ch)}</span>")
                else:
                    out.append(esc(ch))
            return "".join(out)

        marks = "".join("^" if i in diff else "&nbsp;" for i in range(width))
        actual_cell = cells(b) if self.actual is not None else "<i>none</i>"
        rows = [("certificate x5t#S256", cells(a) if a else "<i>none</i>"),
                ("token cnf.x5t#S256", actual_cell)]
        if diff:
            rows.append((f"{len(diff)} difference(s)", marks))
        table = "".join(f"<tr><td style='padding-right:1em;font-family:sans-serif'>{label}</td>"
                        f"<td style='font-family:monospace;white-space:pre'>{value}</td></tr>"
                        for label, value in rows)
        extra = ""
        if self.certificate_subject:
            extra += f"<div>certificate: <code>{esc(self.certificate_subject)}</code></div>"
        extra += f"<div>{esc(self.reason)}</div>"
        if self.mistakes:
            extra += f"<div>mistakes: <code>{esc(', '.join(self.mistakes))}</code></div>"
        if self.fix and not ok:
            extra += f"<div><b>fix:</b> {esc(self.fix)}</div>"
        extra += "".join(f"<div>note: {esc(n)}</div>" for n in self.notes)
        return (f"<div role='status' aria-label='{'bound' if ok else 'not bound'}' "
                f"style='border:2px solid {border};{background};color:{fg};border-radius:6px;padding:8px;"
                f"max-width:60em;font-family:sans-serif'>"
                f"<div style='font-weight:bold;color:{border};font-size:110%'>{esc(title)}</div>"
                f"<table>{table}</table>{extra}"
                f"<div style='color:{_html.MUTED};font-size:85%'>binding only: the signature was not "
                f"verified (use verify_token)</div></div>")


def _encodings(digest: bytes) -> list[tuple[tuple[str, ...], str]]:
    """How a digest is usually written, correct form first, with the mistakes each makes."""
    url = b64url(digest)
    std = base64.b64encode(digest).decode("ascii")
    hexd = digest.hex()
    return [((), url),
            (("padding",), url + "=" * (-len(url) % 4)),
            (("standard_base64",), std.rstrip("=")),
            (("standard_base64", "padding"), std),
            (("hex",), hexd),
            (("hex",), hexd.upper()),
            (("hex",), ":".join(hexd[i:i + 2] for i in range(0, len(hexd), 2)).upper()),
            (("base64_of_hex",), b64url(hexd.encode())),
            (("base64_of_hex",), b64url(hexd.upper().encode()))]


def _sources(leaf: Certificate, chain: list[Certificate]) -> list[tuple[tuple[str, ...], bytes]]:
    """Byte strings people hash instead of the leaf's DER, with the mistake each one is."""
    from cryptography.hazmat.primitives import serialization

    pem = leaf.pem.encode("ascii")
    sources: list[tuple[tuple[str, ...], bytes]] = [
        (("pem_text",), pem), (("pem_text",), pem.strip()),
        (("pem_text",), pem.replace(b"\n", b"\r\n")), (("pem_text",), pem.strip().replace(b"\n", b"\r\n")),
        (("public_key",), leaf.x509.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))]
    try:
        sources.append((("public_key",), leaf.x509.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1)))
    except Exception:  # EC keys have no PKCS#1 form
        pass
    sources += [(("chain_order",), other.der) for other in chain[1:]]
    return sources


def _diagnose(actual: str, leaf: Certificate, chain: list[Certificate]) -> tuple[str, ...] | None:
    """The list of mistakes that turns the certificate into ``actual``, or None if unrecognised."""
    der = leaf.der
    candidates = [((), der)] + _sources(leaf, chain)
    for source_mistakes, data in candidates:
        for hash_mistakes, algorithm in (((), hashlib.sha256), (("sha1",), hashlib.sha1)):
            for encoding_mistakes, value in _encodings(algorithm(data).digest()):
                if actual == value:
                    found = source_mistakes + hash_mistakes + encoding_mistakes
                    return found or None
    return None


def check_binding(token: Any, certificate: Any = None) -> BindingVerdict:
    """Is ``token`` bound to ``certificate``? Decided by ``cnf.x5t#S256`` alone.

    ``token``: anything :func:`decode_token` takes. ``certificate``: anything
    :func:`x5t_s256` takes; when omitted and ``token`` is a token result, its
    ``binding_certificate``. A malformed token raises :class:`TokenFormatError`
    and an unreadable certificate :class:`CertificateError`; a readable pair
    always gives a verdict, whose ``reason`` names the mistake when the
    thumbprint was computed or encoded the wrong way.
    """
    decoded = decode_token(token)
    if certificate is None and isinstance(token, dict):
        certificate = token.get("binding_certificate")  # msal's proposed {x5c, thumbprint_sha256}
    elif certificate is None and not isinstance(token, (str, bytes, DecodedToken)):
        certificate = getattr(token, "binding_certificate", None)
    if certificate is None:
        return _verdict_without_certificate(decoded)
    chain = read_certificates(certificate)
    leaf = chain[0]
    expected = x5t_s256_of_der(leaf.der)
    notes = []
    if len(chain) > 1:
        notes.append(f"A chain of {len(chain)} certificates was given; the first (the leaf, "
                     f"{leaf.subject}) was compared.")
    common: dict[str, Any] = dict(expected=expected, certificate=leaf, token_type=decoded.token_type)

    cnf = decoded.claims.get("cnf")
    if cnf is None:
        return BindingVerdict(
            bound=False, actual=None, mistakes=("no_cnf",),
            reason="The token has no cnf claim: it is a bearer token, bound to no certificate.",
            fix="Request token_type=mtls_pop over the mTLS endpoint with this certificate; a resource "
                "that enforces binding refuses bearer tokens sent as mtls_pop.",
            notes=tuple(notes + _token_type_notes(decoded)), **common)
    if not isinstance(cnf, dict):
        return BindingVerdict(
            bound=False, actual=None, mistakes=("cnf_not_object",),
            reason=f"The token's cnf claim is a {_json_type(cnf)}, not a JSON object, so it binds "
                   f"nothing (RFC 7800 section 3.1).",
            fix="The issuer must write cnf as {\"x5t#S256\": \"<thumbprint>\"}.",
            notes=tuple(notes), **common)
    if "x5t#S256" not in cnf:
        return _verdict_without_x5t_s256(cnf, leaf, notes, common)
    actual = cnf["x5t#S256"]
    if not isinstance(actual, str):
        return BindingVerdict(
            bound=False, actual=None, mistakes=("not_a_string",),
            reason=f"cnf.x5t#S256 is a {_json_type(actual)}, not a string.",
            fix="x5t#S256 is a base64url string of 43 characters.", notes=tuple(notes), **common)
    if hmac.compare_digest(actual.encode("utf-8", "replace"), expected.encode("ascii")):
        return BindingVerdict(
            bound=True, actual=actual,
            reason="cnf.x5t#S256 equals base64url(SHA-256(DER)) of this certificate: a resource "
                   "accepts this token over mTLS with this certificate only.",
            notes=tuple(notes + _token_type_notes(decoded)), **common)
    shown = _clip(actual, 120)
    mistakes = _diagnose(actual, leaf, chain)
    if mistakes:
        words = "; ".join(_MISTAKE_TEXT[m] for m in mistakes)
        if "chain_order" in mistakes:
            index = next(i for i, c in enumerate(chain[1:], 1) if x5t_s256_of_der(c.der) == actual)
            reason = (f"The token is bound to certificate #{index + 1} of the chain given "
                      f"({chain[index].subject}), not to the first one (the leaf).")
            fix = "Pass the certificate the token was issued for, or put the leaf first."
        else:
            reason = (f"cnf.x5t#S256 was computed or encoded the wrong way: {words}. It is the "
                      f"right certificate, but a resource comparing the exact string refuses it.")
            fix = ("Compute x5t#S256 as base64url without padding of SHA-256 over the certificate's "
                   "DER bytes (lab.x5t_s256(cert)); fix the issuer that wrote this cnf.")
        return BindingVerdict(bound=False, actual=shown, mistakes=mistakes, reason=reason, fix=fix,
                              notes=tuple(notes), **common)
    well_formed = len(actual) == 43 and bool(_B64URL_RE.fullmatch(actual))
    reason = ("The token is bound to another certificate: its cnf.x5t#S256 differs from this "
              "certificate's thumbprint." if well_formed else
              f"cnf.x5t#S256 is not a well-formed SHA-256 thumbprint ({len(actual)} characters; "
              f"base64url of SHA-256 is 43) and matches no encoding of this certificate.")
    return BindingVerdict(
        bound=False, actual=shown, mistakes=("other_certificate",) if well_formed else ("malformed_thumbprint",),
        reason=reason,
        fix="Call the resource with the certificate the token was issued for (the result's "
            "binding_certificate), or acquire a new token with this certificate.",
        notes=tuple(notes + _token_type_notes(decoded)), **common)


def _verdict_without_certificate(decoded: DecodedToken) -> BindingVerdict:
    actual = decoded.x5t_s256
    if actual is not None:
        reason = "No certificate was given to compare with; the token is bound to the certificate in its cnf."
    else:
        reason = "No certificate was given, and the token has no cnf.x5t#S256: it is a bearer token."
    return BindingVerdict(bound=False, expected=None, actual=_clip(actual, 120) if actual else None,
                          reason=reason, mistakes=("no_certificate",),
                          fix="Pass the certificate to check, e.g. result.binding_certificate.",
                          token_type=decoded.token_type,
                          notes=tuple(_token_type_notes(decoded)))


def _verdict_without_x5t_s256(cnf: dict, leaf: Certificate, notes: list, common: dict) -> BindingVerdict:
    members = ", ".join(repr(_clip(str(k), 40)) for k in list(cnf)[:6]) or "none"
    lower = {str(k).lower(): k for k in cnf}
    if "x5t#s256" in lower:
        key = lower["x5t#s256"]
        return BindingVerdict(
            bound=False, actual=_clip(str(cnf[key]), 120), mistakes=("member_case",),
            reason=f"cnf has {key!r} but the member is spelled 'x5t#S256' (JSON names are case-sensitive).",
            fix="Use the exact member name x5t#S256.", notes=tuple(notes), **common)
    if "x5t" in cnf:
        value = cnf["x5t"]
        same = isinstance(value, str) and value == x5t_of_der(leaf.der)
        return BindingVerdict(
            bound=False, actual=None, mistakes=("sha1",),
            reason="cnf carries 'x5t' (SHA-1) instead of 'x5t#S256': RFC 8705 binds with SHA-256. "
                   + ("Its value is this certificate's SHA-1 x5t." if same else
                      "Its value is not this certificate's SHA-1 x5t either."),
            fix="Bind with x5t#S256 = base64url(SHA-256(DER)).", notes=tuple(notes), **common)
    key_members = [k for k in ("jkt", "jwk", "kid", "jwe", "jku") if k in cnf]
    if key_members:
        member = key_members[0]
        return BindingVerdict(
            bound=False, actual=None, mistakes=("key_bound",),
            reason=f"cnf binds the token to a key, not to a certificate: cnf.{member} means "
                   f"{_claims.CNF_MEMBER_MEANINGS[member]}.",
            fix="This is another proof-of-possession scheme; mTLS PoP tokens carry cnf.x5t#S256.",
            notes=tuple(notes), **common)
    return BindingVerdict(
        bound=False, actual=None, mistakes=("no_x5t_s256",),
        reason=f"The token's cnf has no 'x5t#S256' member (members: {members}).",
        fix="A certificate-bound token carries cnf.x5t#S256 (RFC 8705 section 3.1).",
        notes=tuple(notes), **common)


def _token_type_notes(decoded: DecodedToken) -> list[str]:
    token_type = (decoded.token_type or "").lower()
    if not token_type:
        return []
    if decoded.is_certificate_bound and token_type == "bearer":
        return ["token_type says Bearer, but the token carries cnf.x5t#S256: binding is decided "
                "by cnf (some RFC 8705 servers label bound tokens Bearer)."]
    if not decoded.is_certificate_bound and token_type == "mtls_pop":
        return ["token_type says mtls_pop, but the token has no cnf.x5t#S256: nothing binds it, "
                "whatever the label; treat it as a bearer token."]
    return []


