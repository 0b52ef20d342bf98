"""Decoding a token: header, claims and signature segment, with every malformed shape named.

Decoding never verifies: :class:`DecodedToken` says so, and the raw token comes out only
through ``DecodedToken.token(reveal=True)``. Nothing here echoes a token back.
"""

from __future__ import annotations

import binascii
import datetime as _dt
import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import TokenFormatError
from ..redact import redact_token
from . import glossary as _claims
from ._text import _as_time, _clip, _compact_json, _json_type, _time_phrase, _utcnow

# Real access tokens are a few KB (Entra's stay under 16 KB). A cap keeps a
# pasted 10 MB blob from costing anything: it is refused by its length alone.
MAX_TOKEN_CHARS = 256 * 1024

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
_SCHEME_RE = re.compile(r"^(?:bearer|mtls_pop|pop)\s+", re.I)
_ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
_SEGMENT_NAMES = ("header", "payload", "signature")
_URL_TO_STD = bytes.maketrans(b"-_", b"+/")
_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"



# =====================================================================================
# Decoding
# =====================================================================================
@dataclass(frozen=True, repr=False, eq=False)
class DecodedToken:
    """Header and claims of a JWS, and what is known about its verification.

    ``verified`` is False for :func:`decode_token` and True only for the
    result of :func:`verify_token`, whose ``verification`` then says what was
    checked (key, algorithm, leeway, audience, issuer). The signature itself
    is never kept for display: only whether it is present and its length.
    """

    header: dict
    claims: dict
    signature_present: bool
    signature_length: int = 0
    verified: bool = False
    verification: dict | None = None
    token_type: str | None = None  # when decoded from a TokenResult that knew it
    _token: str = field(default="", compare=False)

    # -- the raw token: explicit only ---------------------------------------------------
    def token(self, reveal: bool = False) -> str:
        """The redacted token; the raw compact JWS only with ``reveal=True``."""
        return self._token if reveal else redact_token(self._token)

    @property
    def redacted(self) -> str:
        return redact_token(self._token)

    # -- facts ----------------------------------------------------------------------------
    @property
    def alg(self) -> str | None:
        return self.header.get("alg")

    @property
    def kid(self) -> str | None:
        return self.header.get("kid")

    @property
    def cnf(self) -> Any:
        return self.claims.get("cnf")

    @property
    def x5t_s256(self) -> str | None:
        """``cnf.x5t#S256`` when it is a string, else None."""
        cnf = self.cnf
        value = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
        return value if isinstance(value, str) else None

    @property
    def is_certificate_bound(self) -> bool:
        """True when the token carries ``cnf.x5t#S256`` (whatever ``token_type`` said)."""
        return self.x5t_s256 is not None

    @property
    def audience(self) -> Any:
        return self.claims.get("aud")

    @property
    def issuer(self) -> Any:
        return self.claims.get("iss")

    @property
    def subject(self) -> Any:
        return self.claims.get("sub")

    @property
    def expires_at(self) -> _dt.datetime | None:
        return _as_time(self.claims.get("exp"))

    @property
    def issued_at(self) -> _dt.datetime | None:
        return _as_time(self.claims.get("iat"))

    @property
    def not_before(self) -> _dt.datetime | None:
        return _as_time(self.claims.get("nbf"))

    def is_expired(self, now: _dt.datetime | None = None) -> bool | None:
        """None when the token has no usable ``exp``."""
        exp = self.expires_at
        return None if exp is None else (now or _utcnow()) >= exp

    # -- display --------------------------------------------------------------------------
    def _status(self) -> str:
        if not self.verified:
            return "decoded only, signature NOT verified"
        v = self.verification or {}
        parts = [f"signature verified ({v.get('alg')}, kid {v.get('kid')!s})",
                 f"leeway {v.get('leeway')} s",
                 f"audience {'checked' if v.get('audience') is not None else 'not checked'}",
                 f"issuer {'checked' if v.get('issuer') is not None else 'not checked'}"]
        return "VERIFIED: " + ", ".join(parts)

    def _signature_text(self) -> str:
        if not self.signature_present:
            return "absent (an unsigned token proves nothing)"
        return f"present, {self.signature_length} bytes (not shown)"

    def to_text(self) -> str:
        """A plain-text form for terminals and CI logs."""
        lines = [f"JWT ({self._status()})", f"  token: {self.redacted}"]
        if self.token_type:
            lines.append(f"  token_type (from the token response): {self.token_type}")
        lines.append(f"  header: {_compact_json(self.header)}")
        lines.append("  claims:")
        for name, value in self.claims.items():
            shown = _compact_json(value) if not isinstance(value, str) else value
            when = _time_phrase(value) if name in _claims.TIME_CLAIMS else ""
            lines.append(f"    {name}: {_clip(shown)}{'  (' + when + ')' if when else ''}")
        lines.append(f"  signature: {self._signature_text()}")
        bound = self.x5t_s256
        lines.append(f"  binding: {'certificate-bound, cnf.x5t#S256 = ' + bound if bound else 'no cnf.x5t#S256 (not certificate-bound)'}")
        return "\n".join(lines)

    __str__ = to_text

    def __repr__(self) -> str:
        state = "verified" if self.verified else "not verified"
        return (f"<DecodedToken alg={self.alg!r} aud={_clip(str(self.audience), 60)!r} "
                f"bound={self.is_certificate_bound} {state} {self.redacted}>")

    def _repr_html_(self) -> str:
        esc = html.escape
        colour = "#1a7f37" if self.verified else "#9a6700"
        icon = "✔" if self.verified else "⚠"
        rows = []
        for name, value in self.header.items():
            rows.append(("header", name, value))
        for name, value in self.claims.items():
            rows.append(("claim", name, value))
        body = "".join(
            f"<tr><td style='color:#57606a'>{part}</td><td><b>{esc(str(name))}</b></td>"
            f"<td><code>{esc(_clip(value if isinstance(value, str) else _compact_json(value), 300))}</code>"
            f"{' <i>(' + esc(_time_phrase(value)) + ')</i>' if part == 'claim' and name in _claims.TIME_CLAIMS and _time_phrase(value) else ''}"
            f"</td></tr>"
            for part, name, value in rows)
        bound = self.x5t_s256
        binding = (f"certificate-bound: cnf.x5t#S256 = <code>{esc(bound)}</code>" if bound
                   else "no <code>cnf.x5t#S256</code>: not certificate-bound")
        return (f"<div style='border:2px solid {colour};border-radius:6px;padding:8px;"
                f"font-family:sans-serif;max-width:60em'>"
                f"<div style='font-weight:bold;color:{colour}'>{icon} JWT: {esc(self._status())}</div>"
                f"<div style='font-family:monospace;font-size:90%'>token {esc(self.redacted)}</div>"
                f"<table style='font-size:90%'>{body}</table>"
                f"<div>signature: {esc(self._signature_text())}</div><div>{binding}</div></div>")


def _token_text(token: Any) -> tuple[str, str | None]:
    """The compact token as text, and the token_type when a result object carried one."""
    token_type = None
    if isinstance(token, DecodedToken):
        return token._token, token.token_type
    if token is None:
        raise TokenFormatError("No token was given (None).",
                               cause="The token acquisition failed or the variable was never set.",
                               fix="Pass the access_token string, or a TokenResult.",
                               code="token_missing")
    if isinstance(token, dict):
        if "access_token" not in token:
            raise TokenFormatError("This dict has no 'access_token' entry.",
                                   cause="It is probably an error response (look at 'error' and "
                                         "'error_description') or another kind of mapping.",
                                   fix="Pass the token string or a successful token response.",
                                   code="token_missing")
        token_type = token.get("token_type") if isinstance(token.get("token_type"), str) else None
        token = token["access_token"]
    elif not isinstance(token, (str, bytes, bytearray, memoryview)) and hasattr(token, "access_token"):
        raw_type = getattr(token, "token_type", None)
        token_type = raw_type if isinstance(raw_type, str) else None
        token = token.access_token
        if token is None:
            raise TokenFormatError("The token result has no access_token (None).",
                                   cause="The acquisition did not produce a token.",
                                   fix="Check the result's error before inspecting it.",
                                   code="token_missing")
    if isinstance(token, (bytes, bytearray, memoryview)):
        if len(token) > MAX_TOKEN_CHARS:
            raise _too_long(len(token))
        try:
            token = bytes(token).decode("ascii")
        except UnicodeDecodeError:
            raise TokenFormatError("The token bytes are not ASCII text.",
                                   cause="A JWT is ASCII (base64url and dots); these bytes are binary "
                                         "or another encoding.",
                                   fix="Pass the access_token string exactly as the token endpoint "
                                       "returned it.") from None
    if not isinstance(token, str):
        raise TokenFormatError(f"A token must be a string, bytes or a token result, not "
                               f"{type(token).__name__}.",
                               cause="An object of another kind was passed where a token was expected.",
                               fix="Pass result.access_token (a str) or the TokenResult itself.")
    return token, token_type


def _too_long(length: int) -> TokenFormatError:
    return TokenFormatError(f"The token is {length:,} characters long; the inspector reads tokens "
                            f"up to {MAX_TOKEN_CHARS:,}.",
                            cause="Real access tokens are a few kilobytes: this is a file, a log or "
                                  "a response body rather than one token.",
                            fix="Pass only the access_token value.", code="token_too_long")


def _b64url_segment(segment: str, name: str) -> bytes:
    """Decode one base64url segment strictly, naming what is wrong without echoing it."""
    data = segment.encode("ascii", "replace") if segment.isascii() else None
    if data is None or data.translate(None, _B64URL_ALPHABET):
        bad = next(ch for ch in segment if not (ch.isascii() and (ch.isalnum() or ch in "-_")))
        position = segment.index(bad)
        if bad in "+/=":
            what = ("'=' padding" if bad == "=" else "standard base64 characters ('+' or '/')")
            fix = "Encode JWS segments as base64url without padding (RFC 7515 section 2)."
        else:
            what = "a character outside the base64url alphabet" + (
                " (whitespace)" if bad.isspace() else "")
            fix = "Copy the token again without line breaks, quotes or surrounding text."
        raise TokenFormatError(f"The {name} segment contains {what} at position {position}.",
                               cause="JWS segments use the base64url alphabet (A-Z a-z 0-9 - _) "
                                     "and no padding.",
                               fix=fix, code="bad_base64url")
    if len(data) % 4 == 1:
        raise TokenFormatError(f"The {name} segment has an impossible base64url length "
                               f"({len(data)} characters).",
                               cause="The token was truncated or characters were lost when copying it.",
                               fix="Copy the whole token again.", code="bad_base64url")
    try:
        return binascii.a2b_base64(data.translate(_URL_TO_STD) + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - the checks above catch these
        raise TokenFormatError(f"The {name} segment is not valid base64url.",
                               code="bad_base64url") from None


def _reject_duplicates(pairs: list) -> dict:
    """Duplicate members make a JSON object ambiguous (verifiers may read different values)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name")
    return result


def _reject_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


_JSON = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


def _json_object(data: bytes, name: str) -> dict:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenFormatError(f"The {name} is not UTF-8 text after base64url decoding.",
                               cause="The segment is binary, encrypted or damaged.",
                               fix="A JWS header and payload are UTF-8 JSON; check that this is "
                                   "a signed JWT and not an encrypted or opaque token.",
                               code="bad_json") from None
    try:
        value = _JSON.decode(text)
    except RecursionError:
        raise TokenFormatError(f"The {name} JSON is nested too deeply to read.",
                               cause="No real token nests JSON thousands of levels deep.",
                               fix="Check where this value came from.", code="bad_json") from None
    except ValueError as exc:  # JSONDecodeError, duplicates, NaN, huge integers
        detail = str(exc).split(":")[0] if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise TokenFormatError(f"The {name} is not valid JSON ({_clip(detail, 80)}).",
                               cause="The token is damaged, truncated, or not a JWT.",
                               fix="Copy the whole token again.", code="bad_json") from None
    if not isinstance(value, dict):
        raise TokenFormatError(f"The {name} is JSON but a {_json_type(value)}, not an object.",
                               cause="A JWT header and payload are JSON objects ({...}).",
                               fix="Check that this is a JWT.", code="not_an_object")
    return value


def decode_token(token: Any) -> DecodedToken:
    """Read a JWS's header and claims, **without verifying anything**.

    ``token``: the compact string (an ``Authorization`` value such as
    ``"mtls_pop eyJ..."`` works too), its bytes, a token response dict, a
    :class:`~mtlspop_lab.flows.TokenResult` (anything with ``.access_token``)
    or a :class:`DecodedToken`. Raises :class:`TokenFormatError` with the
    reason when it is not a well-formed JWS; the message never contains the
    token. Use :func:`verify_token` to check the signature.
    """
    if isinstance(token, DecodedToken):
        return token
    text, token_type = _token_text(token)
    if len(text) > MAX_TOKEN_CHARS:
        raise _too_long(len(text))
    text = _SCHEME_RE.sub("", text.strip(), count=1).strip()
    if not text:
        raise TokenFormatError("The token is empty.", cause="An empty string was passed.",
                               fix="Pass the access_token value.", code="token_empty")
    if "-----BEGIN" in text[:200]:
        raise TokenFormatError("This is PEM text (a certificate or key), not a token.",
                               cause="The arguments may be swapped.",
                               fix="Pass the access token first and the certificate second.",
                               code="pem_not_token")
    parts = text.split(".")
    if len(parts) == 5:
        raise TokenFormatError("This is an encrypted token (JWE, 5 segments); its claims cannot be read.",
                               cause="The issuer encrypted the token for the resource (token "
                                     "encryption is configured on the resource's app registration).",
                               fix="Only the resource can decrypt it. Inspect an unencrypted token, "
                                   "or decode it at the resource after decryption.",
                               code="jwe_not_supported")
    if len(parts) != 3:
        raise TokenFormatError(f"The token has {len(parts)} segment{'s' if len(parts) != 1 else ''} "
                               f"separated by dots; a JWS has 3 (header.payload.signature).",
                               cause=("It is truncated, an opaque (non-JWT) token, or several "
                                      "values pasted together."),
                               fix="Pass the complete access_token string.", code="bad_segments")
    for name, part in zip(_SEGMENT_NAMES[:2], parts[:2]):
        if not part:
            raise TokenFormatError(f"The {name} segment is empty.",
                                   cause="The token is damaged or truncated.",
                                   fix="Pass the complete access_token string.", code="bad_segments")
    header = _json_object(_b64url_segment(parts[0], "header"), "header")
    claims = _json_object(_b64url_segment(parts[1], "payload"), "payload")
    signature_length = _signature_length(parts[2])
    if not isinstance(header.get("alg"), str):
        raise TokenFormatError("The header has no 'alg' string.",
                               cause="Every JWS names its signature algorithm in 'alg'.",
                               fix="Check that this is a JWT from an identity provider.",
                               code="missing_alg")
    return DecodedToken(header=header, claims=claims, signature_present=signature_length > 0,
                        signature_length=signature_length, token_type=token_type, _token=text)


def _signature_length(segment: str) -> int:
    """Bytes in the signature, checked as base64url but never decoded (nothing shows it)."""
    if (not segment.isascii() or segment.encode("ascii").translate(None, _B64URL_ALPHABET)
            or len(segment) % 4 == 1):
        _b64url_segment(segment, "signature")  # raises the precise error
    return len(segment) * 3 // 4

