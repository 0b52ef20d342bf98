"""The binding inspector: decode, verify and explain a token against a certificate.

The moment mTLS PoP clicks is when a learner sees the token's ``cnf.x5t#S256``
next to the thumbprint of the certificate they hold, and watches the
comparison fail for any other certificate. jwt.io and jwt.ms decode and
explain claims; neither checks a binding. This module does both, for tokens
from any RFC 8705 issuer, not only the lab's own.

Four functions, each honest about what it did:

* :func:`decode_token` reads header and claims and says "not verified".
* :func:`verify_token` checks signature, times, audience and issuer with pyjwt.
* :func:`check_binding` compares ``cnf.x5t#S256`` with a certificate and names
  the usual mistakes (standard base64, padding, SHA-1, hex, hash of the PEM
  text or of the public key) when the two differ.
* :func:`explain_claims` returns a pandas table of claims in plain words.

Binding is decided by ``cnf``, never by ``token_type``: other RFC 8705 servers
issue certificate-bound tokens labelled ``Bearer``.

Nothing here echoes a token back: messages give lengths and positions, reprs
and HTML show a redacted form, and the raw token comes out only through
``DecodedToken.token(reveal=True)``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import hmac
import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import claims as _claims
from .certs import Certificate, b64url, sha1_hex_of_der, x5t_of_der, x5t_s256_of_der
from .errors import CertificateError, ConfigurationError, TokenFormatError, TokenValidationError
from .redact import redact_text, redact_token

__all__ = ["decode_token", "verify_token", "check_binding", "explain_claims", "BindingVerdict",
           "DecodedToken", "x5t_s256", "x5t", "sha1_thumbprint"]

# Real access tokens are a few KB (Entra's stay under 16 KB). A cap keeps a
# pasted 10 MB blob from costing anything: it is refused by its length alone.
MAX_TOKEN_CHARS = 256 * 1024
# Certificates (or chains) larger than this are not certificates.
MAX_CERTIFICATE_BYTES = 1024 * 1024

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
_SCHEME_RE = re.compile(r"^(?:bearer|mtls_pop|pop)\s+", re.I)
_ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
_SEGMENT_NAMES = ("header", "payload", "signature")
_URL_TO_STD = bytes.maketrans(b"-_", b"+/")
_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


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


# =====================================================================================
# Certificates and thumbprints
# =====================================================================================
def _certificates(certificate: Any) -> list[Certificate]:
    """One or more public certificates (leaf first) from any of the accepted forms."""
    from cryptography import x509

    if isinstance(certificate, Certificate):
        return [certificate]
    if isinstance(certificate, x509.Certificate):
        return [Certificate(certificate)]
    if certificate is None:
        raise CertificateError("No certificate was given (None).",
                               cause="The token result is a Bearer result (binding_certificate is "
                                     "None) or the variable was never set.",
                               fix="Pass the certificate the token should be bound to.",
                               code="certificate_missing")
    if isinstance(certificate, dict) and isinstance(certificate.get("x5c"), list):
        certificate = certificate["x5c"]  # msal's proposed binding_certificate shape
    if isinstance(certificate, (list, tuple)):
        if not certificate:
            raise CertificateError("The certificate list is empty.", cause="No certificate in it.",
                                   fix="Pass the binding (leaf) certificate.")
        chain: list[Certificate] = []
        for item in certificate:
            if isinstance(item, (list, tuple, dict)):
                raise CertificateError("A certificate chain is a flat list of certificates.",
                                       cause=f"One item is a {type(item).__name__}.",
                                       fix="Pass [leaf, intermediate, ...] or the leaf alone.")
            chain.extend(_certificates(item))
        return chain
    if hasattr(certificate, "binding_certificate") and not isinstance(certificate, (str, bytes)):
        return _certificates(certificate.binding_certificate)
    if isinstance(certificate, os.PathLike):
        return _certificates_from_bytes(_read_certificate_file(certificate), source="file")
    if isinstance(certificate, (bytes, bytearray, memoryview)):
        return _certificates_from_bytes(bytes(certificate), source="bytes")
    if isinstance(certificate, str):
        if "-----BEGIN" in certificate:
            return _certificates_from_bytes(certificate.encode("utf-8", "replace"), source="text")
        stripped = certificate.strip()
        if not stripped:
            raise CertificateError("The certificate is an empty string.", cause="Nothing was passed.",
                                   fix="Pass a certificate, PEM text or a file path.",
                                   code="certificate_missing")
        if stripped.startswith("eyJ") and stripped.count(".") in (2, 4):
            raise CertificateError("This is a token, not a certificate.",
                                   cause="The arguments may be swapped.",
                                   fix="Call check_binding(token, certificate): the token first.",
                                   code="token_not_certificate")
        if not _is_file(stripped) and len(stripped) > 200 and re.fullmatch(r"[A-Za-z0-9+/=\s]+", stripped):
            try:  # base64 DER, as in x5c or the IMDS v2 'certificate' field
                return _certificates_from_bytes(base64.b64decode(stripped), source="base64")
            except (binascii.Error, ValueError):
                pass
        return _certificates_from_bytes(_read_certificate_file(stripped), source="file")
    raise CertificateError(f"Cannot read a certificate from a {type(certificate).__name__}.",
                           cause="Accepted: lab Certificate, cryptography x509.Certificate, PEM text "
                                 "or bytes, DER bytes, or a file path.",
                           fix="Pass one of those (for a PFX with a password, load it with "
                               "lab.Certificate.load_pfx first).")


def _shown_path(path: Any) -> str:
    """A path for a message: clipped, and redacted in case a secret was passed as a "path"."""
    return repr(_clip(redact_text(os.fspath(path)), 120))


def _is_file(text: str) -> bool:
    try:
        return len(text) < 4096 and Path(text).is_file()
    except (OSError, ValueError):
        return False


def _read_certificate_file(path: Any) -> bytes:
    try:
        p = Path(path)
        size = p.stat().st_size
        if size > MAX_CERTIFICATE_BYTES:
            raise CertificateError(f"The file {_shown_path(path)} is {size:,} bytes: too large for a "
                                   f"certificate.", cause="It is another kind of file.",
                                   fix="Name the certificate file (.pem, .crt, .cer or .der).")
        return p.read_bytes()
    except CertificateError:
        raise
    except FileNotFoundError:
        raise CertificateError(f"The certificate file {_shown_path(path)} was not found.",
                               cause="The path is wrong, or the text is neither PEM nor a path.",
                               fix="Check the path, or pass the PEM text itself.",
                               code="certificate_not_found") from None
    except IsADirectoryError:
        raise CertificateError(f"{_shown_path(path)} is a folder, not a certificate file.",
                               cause="A directory was given.", fix="Name the file itself.") from None
    except (OSError, ValueError):
        raise CertificateError("The certificate file cannot be read.",
                               cause="The path is invalid (too long, bad characters) or access was denied.",
                               fix="Check the path and the file's permissions.") from None


def _certificates_from_bytes(data: bytes, *, source: str) -> list[Certificate]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if not data:
        raise CertificateError("The certificate data is empty.", cause="An empty file or value.",
                               fix="Pass the certificate's PEM or DER.", code="certificate_missing")
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise CertificateError(f"The certificate data is {len(data):,} bytes: too large for a certificate.",
                               cause="It is another kind of data.", fix="Pass one certificate.")
    if b"-----BEGIN" in data:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except Exception:
            certs = []
        if certs:
            return [Certificate(c) for c in certs]
        if b"PRIVATE KEY-----" in data:
            raise CertificateError("This PEM holds a private key, not a certificate.",
                                   cause="A key was given where the certificate was expected. The "
                                         "binding is to the certificate (its DER), not to the key.",
                                   fix="Pass the certificate PEM (-----BEGIN CERTIFICATE-----). "
                                       "Keep private keys out of notebooks and logs.",
                                   code="private_key_not_certificate")
        if b"PUBLIC KEY-----" in data:
            raise CertificateError("This PEM holds a public key, not a certificate.",
                                   cause="x5t#S256 is computed over the whole certificate DER, so a "
                                         "public key alone cannot be compared.",
                                   fix="Pass the certificate PEM (-----BEGIN CERTIFICATE-----).",
                                   code="public_key_not_certificate")
        if b"CERTIFICATE REQUEST-----" in data:
            raise CertificateError("This PEM is a certificate signing request (CSR), not a certificate.",
                                   cause="A CSR is what is sent to be signed; the certificate is "
                                         "what comes back.", fix="Pass the issued certificate.")
        raise CertificateError("The PEM certificate cannot be parsed.",
                               cause="The base64 inside the BEGIN/END CERTIFICATE block is damaged, "
                                     "truncated or mixed with other text.",
                               fix="Export the certificate again as PEM.", code="bad_certificate")
    try:
        return [Certificate(x509.load_der_x509_certificate(data))]
    except Exception:
        pass
    for loader in (serialization.load_der_private_key,):
        try:
            loader(data, None)
        except TypeError:  # encrypted key
            raise CertificateError("These bytes are an encrypted private key, not a certificate.",
                                   cause="A key was given where the certificate was expected.",
                                   fix="Pass the certificate (PEM or DER).",
                                   code="private_key_not_certificate") from None
        except Exception:
            continue
        raise CertificateError("These bytes are a private key (DER), not a certificate.",
                               cause="A key was given where the certificate was expected.",
                               fix="Pass the certificate (PEM or DER); keep private keys private.",
                               code="private_key_not_certificate")
    try:
        from cryptography.hazmat.primitives.serialization import pkcs12
        _key, cert, extra = pkcs12.load_key_and_certificates(data, None)
        if cert is not None:
            return [Certificate(cert)] + [Certificate(c) for c in (extra or [])]
    except Exception as exc:
        text = str(exc).lower()
        if "password" in text or "mac" in text or "decrypt" in text:
            raise CertificateError("This PFX is password-protected.",
                                   cause="The inspector does not take passwords.",
                                   fix="Load it with lab.Certificate.load_pfx(path, password) and "
                                       "pass that Certificate.", code="invalid_pfx_password") from None
    raise CertificateError("The data is not a certificate (neither PEM nor DER).",
                           cause=("The DER is truncated or damaged, or the data is another kind of "
                                  "file." if data[:1] == b"\x30" else
                                  "It does not start like DER (0x30) and has no PEM block."),
                           fix="Pass the certificate file as exported (PEM or DER), or a lab Certificate.",
                           code="bad_certificate")


def _leaf(certificate: Any) -> Certificate:
    return _certificates(certificate)[0]


def x5t_s256(certificate: Any) -> str:
    """RFC 8705 ``x5t#S256``: base64url, no padding, of SHA-256 over the certificate DER.

    ``certificate``: a lab Certificate, a cryptography certificate, PEM text
    or bytes, DER bytes, or a file path. For a chain, the first (leaf).
    """
    return x5t_s256_of_der(_leaf(certificate).der)


def x5t(certificate: Any) -> str:
    """JWS ``x5t``: base64url SHA-1 of the DER (client-assertion headers use it)."""
    return x5t_of_der(_leaf(certificate).der)


def sha1_thumbprint(certificate: Any) -> str:
    """The Windows / Azure portal "thumbprint": upper-case hex SHA-1 of the DER."""
    return sha1_hex_of_der(_leaf(certificate).der)


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
        border, bg = ("#1a7f37", "#e6f4ea") if ok else ("#cf222e", "#ffebe9")
        title = ("✔ " if ok else "✘ ") + self.summary
        a, b = self.expected or "", self.actual if self.actual is not None else ""
        diff = set(self.differences()) if (a and self.actual is not None) else set()
        width = max(len(a), len(b))

        def cells(text: str) -> str:
            out = []
            for i in range(width):
                ch = text[i] if i < len(text) else "·"  # nothing here: the other one is longer
                if i in diff:
                    out.append(f"<span style='background:#ffd7d5;text-decoration:underline;"
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
                f"style='border:2px solid {border};background:{bg};border-radius:6px;padding:8px;"
                f"max-width:60em;font-family:sans-serif'>"
                f"<div style='font-weight:bold;color:{border};font-size:110%'>{esc(title)}</div>"
                f"<table>{table}</table>{extra}"
                f"<div style='color:#57606a;font-size:85%'>binding only: the signature was not "
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
    chain = _certificates(certificate)
    leaf = chain[0]
    expected = x5t_s256_of_der(leaf.der)
    notes = []
    if len(chain) > 1:
        notes.append(f"A chain of {len(chain)} certificates was given; the first (the leaf, "
                     f"{leaf.subject}) was compared.")
    common = dict(expected=expected, certificate=leaf, token_type=decoded.token_type)

    cnf = decoded.claims.get("cnf")
    if cnf is None:
        return BindingVerdict(
            bound=False, actual=None, mistakes=("no_cnf",),
            reason="The token has no cnf claim: it is a bearer token, bound to no certificate.",
            fix="Request token_type=mtls_pop over the mTLS endpoint with this certificate; a resource "
                "that enforces binding refuses bearer tokens sent as mtls_pop.",
            notes=tuple(notes + _token_type_notes(decoded, bound=False)), **common)
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
            notes=tuple(notes + _token_type_notes(decoded, bound=True)), **common)
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
        notes=tuple(notes + _token_type_notes(decoded, bound=False)), **common)


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
                          notes=tuple(_token_type_notes(decoded, bound=False)))


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


def _token_type_notes(decoded: DecodedToken, *, bound: bool) -> list[str]:
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


# =====================================================================================
# Verification
# =====================================================================================
def verify_token(token: Any, keys: Any = None, *, jwks_url: str | None = None,
                 authority: Any = None, audience: Any = None, issuer: Any = None,
                 leeway: float = 60, algorithms: tuple | list | None = None,
                 ca_bundle: str | os.PathLike | None = None, timeout: float = 10,
                 now: _dt.datetime | float | None = None) -> DecodedToken:
    """Verify signature, ``exp``/``nbf``/``iat`` (with ``leeway`` seconds), audience and issuer.

    The keys come from exactly one of: ``keys`` (a JWKS dict, one JWK dict, a
    public or private key object, a certificate in any form
    :func:`x5t_s256` accepts, or PEM public-key text), ``jwks_url`` (fetched
    with requests, ``verify=ca_bundle``, environment proxies and CA variables
    ignored) or ``authority`` (anything with ``.jwks`` and ``.issuer``, such
    as :class:`~mtlspop_lab.authority.LocalAuthority`; its issuer is then
    checked unless ``issuer`` is given). ``audience``/``issuer`` None means
    "not checked", and the result says so.

    ``alg: none`` and HMAC algorithms are refused before any key is touched
    (an HMAC "verified" with a public key is the classic confusion attack).
    Returns a :class:`DecodedToken` with ``verified=True``; every failure is
    a :class:`TokenValidationError` whose ``code`` says which check failed.
    """
    import jwt  # pyjwt: imported here so that decoding alone stays light

    decoded = decode_token(token)
    if isinstance(leeway, bool) or not isinstance(leeway, (int, float)) or not 0 <= leeway <= 86400:
        raise ConfigurationError("leeway must be a number of seconds between 0 and 86400.",
                                 cause=f"Got {_clip(repr(leeway), 40)}.",
                                 fix="Pass leeway=60 (a minute of clock skew) or similar.")
    if now is not None and (isinstance(now, bool) or not isinstance(now, (int, float, _dt.datetime))):
        raise ConfigurationError("now must be a datetime or a number of seconds since 1970.",
                                 cause=f"Got {type(now).__name__}.", fix="Leave now=None for the clock.")
    sources = sum(x is not None for x in (keys, jwks_url, authority))
    if sources != 1:
        raise ConfigurationError("verify_token needs exactly one of keys=, jwks_url= or authority=.",
                                 cause=f"{sources} key sources were given.",
                                 fix="Pass the issuer's JWKS (keys=...), its jwks_uri, or the authority.")
    alg = decoded.alg
    if alg.lower() == "none":
        raise TokenValidationError("The token is unsigned (alg: none) and is refused.",
                                   cause="An unsigned token proves nothing about who issued it; "
                                         "accepting it is a known attack.",
                                   fix="Only accept tokens signed by the issuer's published keys.",
                                   code="alg_none_refused")
    if alg.upper().startswith("HS"):
        raise TokenValidationError(f"The token claims an HMAC algorithm ({_clip(alg, 20)}) and is refused.",
                                   cause="Identity providers sign with asymmetric keys. An HMAC token "
                                         "checked with the issuer's public key as the secret is the "
                                         "algorithm-confusion attack: anyone can forge it.",
                                   fix="Only accept RS256/PS256/ES256-style tokens verified with the JWKS.",
                                   code="hmac_refused")
    allowed = tuple(algorithms) if algorithms else _ASYMMETRIC_ALGS
    if alg not in allowed:
        raise TokenValidationError(f"The token's algorithm {_clip(alg, 20)!r} is not allowed "
                                   f"(allowed: {', '.join(allowed)}).",
                                   cause="The verifier accepts only the algorithms it was told to.",
                                   fix="Pass algorithms=[...] if this algorithm is expected.",
                                   code="unsupported_algorithm")
    if authority is not None:
        jwks = getattr(authority, "jwks", None)
        if jwks is None:
            raise ConfigurationError("authority= needs an object with a .jwks dict (and .issuer).",
                                     cause=f"Got {type(authority).__name__} without .jwks.",
                                     fix="Pass a LocalAuthority, or keys=/jwks_url=.")
        if issuer is None:      # any of the authority's issuers: v1.0 and v2.0, of every tenant
            issuer = getattr(authority, "issuers", None) or getattr(authority, "issuer", None)
        candidates = _keys_from_jwks(jwks, decoded)
        source = "the authority's JWKS"
    elif jwks_url is not None:
        candidates = _keys_from_jwks(_fetch_jwks(jwks_url, ca_bundle, timeout), decoded)
        source = "the JWKS at the given URL"
    else:
        candidates, source = _keys_from_argument(keys, decoded)

    family = alg[:2]
    usable = [(kid, key) for kid, key in candidates if _key_family(key) == family or
              (family == "PS" and _key_family(key) == "RS")]
    if not usable:
        kinds = sorted({_key_family(key) or "unknown" for _kid, key in candidates})
        raise TokenValidationError(f"No {family} key in {source} fits the token's algorithm {alg} "
                                   f"(keys found: {', '.join(kinds) or 'none'}).",
                                   cause="The token and the keys disagree on the key type "
                                         "(an RSA algorithm needs an RSA key, ES* an EC key).",
                                   fix="Verify against the issuer that signed the token.",
                                   code="key_type_mismatch")
    options = {"verify_signature": True, "verify_exp": False, "verify_nbf": False,
               "verify_iat": False, "verify_aud": audience is not None,
               "verify_iss": issuer is not None}
    last_error: Exception | None = None
    for kid, key in usable:
        try:
            jwt.decode(decoded.token(reveal=True), key=key, algorithms=[alg], options=options,
                       audience=audience, issuer=issuer)
        except jwt.InvalidSignatureError as exc:
            last_error = exc
            continue
        except jwt.InvalidAudienceError:
            raise TokenValidationError(
                f"The token's audience {_clip(str(decoded.audience), 120)!r} is not the expected "
                f"{_clip(str(audience), 120)!r}.",
                cause="The token was issued for another resource.",
                fix="Acquire a token with scope '<resource>/.default' for this resource.",
                code="invalid_audience") from None
        except jwt.InvalidIssuerError:
            raise TokenValidationError(
                f"The token's issuer {_clip(str(decoded.issuer), 120)!r} is not the expected "
                f"{_clip(str(issuer), 120)!r}.",
                cause="Another authority or tenant issued the token (v1 and v2 issuers differ too).",
                fix="Verify against the authority and tenant that issued it.",
                code="invalid_issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenValidationError(f"The token has no {exc.claim!r} claim to check.",
                                       cause="The check was asked for but the claim is absent.",
                                       fix="Do not pass that check, or use a token that carries it.",
                                       code="missing_claim") from None
        except Exception as exc:  # InvalidKeyError, DecodeError, anything the library raises
            raise TokenValidationError(f"The token cannot be verified ({type(exc).__name__}).",
                                       cause="The key or the token is unusable with this algorithm.",
                                       fix="Check the key source and the token's alg.",
                                       code="verification_failed") from None
        _check_times(decoded, leeway, now)
        checked_issuer = decoded.issuer if isinstance(issuer, (list, tuple)) else issuer   # the one that matched
        verification = {"alg": alg, "kid": kid, "key_source": source, "leeway": leeway,
                        "audience": audience, "issuer": checked_issuer}
        return DecodedToken(header=decoded.header, claims=decoded.claims,
                            signature_present=decoded.signature_present,
                            signature_length=decoded.signature_length, verified=True,
                            verification=verification, token_type=decoded.token_type,
                            _token=decoded.token(reveal=True))
    tried = ", ".join(str(kid) for kid, _ in usable)
    raise TokenValidationError(f"The signature does not verify with {source} (key(s) tried: {tried}).",
                               cause="The token was altered, or another key (another issuer, a "
                                     "rotated key) signed it." if last_error else "No key matched.",
                               fix="Verify against the issuer's current JWKS; never trust an "
                                   "altered token.", code="invalid_signature")


def _check_times(decoded: DecodedToken, leeway: float, now: Any) -> None:
    if isinstance(now, _dt.datetime):
        moment = now.timestamp()
    elif now is None:
        moment = _utcnow().timestamp()
    else:
        moment = float(now)
    claims = decoded.claims
    values = {}
    for name in ("exp", "nbf", "iat"):
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise TokenValidationError(f"The {name} claim is not a number of seconds ({_json_type(value)}).",
                                       cause="NumericDate claims are JSON numbers (RFC 7519 section 2).",
                                       fix="The issuer must write times as numbers.",
                                       code="bad_time_claim")
        values[name] = float(value)
    if "exp" not in values:
        raise TokenValidationError("The token has no exp claim: it would never expire.",
                                   cause="Access tokens always carry an expiry.",
                                   fix="Refuse tokens without exp.", code="missing_exp")
    if moment >= values["exp"] + leeway:
        raise TokenValidationError(
            f"The token expired at {_fmt_time(values['exp'])} ({_ago(moment - values['exp'])}; "
            f"leeway {leeway:g} s).",
            cause="Its lifetime is over.", fix="Acquire a new token (msal does so when the cached one expires).",
            code="token_expired")
    if "nbf" in values and moment < values["nbf"] - leeway:
        raise TokenValidationError(
            f"The token is not valid before {_fmt_time(values['nbf'])} (leeway {leeway:g} s).",
            cause="Its nbf is in the future: the issuer's or this machine's clock is off.",
            fix="Check both clocks (NTP); wait until nbf.", code="token_not_yet_valid")
    if "iat" in values and moment < values["iat"] - leeway:
        raise TokenValidationError(
            f"The token claims to be issued in the future, at {_fmt_time(values['iat'])} "
            f"(leeway {leeway:g} s).",
            cause="The issuer's or this machine's clock is off.",
            fix="Check both clocks (NTP).", code="token_issued_in_future")


def _key_family(key: Any) -> str | None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if isinstance(key, rsa.RSAPublicKey):
        return "RS"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ES"
    return None


def _keys_from_jwks(jwks: Any, decoded: DecodedToken) -> list[tuple[str | None, Any]]:
    """Public keys from a JWKS (or one JWK), narrowed to the token's kid when it has one."""
    import jwt

    if isinstance(jwks, dict) and "kty" in jwks:
        jwks = {"keys": [jwks]}
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise TokenValidationError("The key set is not a JWKS (a JSON object with a 'keys' list).",
                                   cause="The jwks_uri answered something else, or the wrong dict was passed.",
                                   fix="Use the issuer's jwks_uri from its OpenID configuration.",
                                   code="bad_jwks")
    keys = []
    for jwk in jwks["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        if str(jwk.get("kty")).lower() == "oct":
            continue  # symmetric keys never verify an identity provider's token
        try:
            keys.append((jwk.get("kid"), jwt.PyJWK(jwk).key))
        except Exception:
            continue
    if not keys:
        raise TokenValidationError("The JWKS has no usable signing key.",
                                   cause="It is empty or holds only unsupported keys.",
                                   fix="Check the jwks_uri.", code="no_keys")
    kid = decoded.kid
    if kid is not None:
        matching = [(k, key) for k, key in keys if k == kid]
        if not matching:
            raise TokenValidationError(f"No key with kid {_clip(str(kid), 80)!r} in the JWKS "
                                       f"(kids: {', '.join(str(k) for k, _ in keys[:10])}).",
                                       cause="Another issuer signed the token, or its keys rotated.",
                                       fix="Verify against the issuer that signed the token; refresh "
                                           "the JWKS.", code="key_not_found")
        return matching
    return keys


def _keys_from_argument(keys: Any, decoded: DecodedToken) -> tuple[list, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(keys, dict):
        return _keys_from_jwks(keys, decoded), "the JWKS given"
    if isinstance(keys, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        return [(None, keys.public_key())], "the key given"
    if isinstance(keys, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        return [(None, keys)], "the key given"
    if isinstance(keys, (str, bytes)) and (b"PUBLIC KEY-----" in _as_bytes(keys)):
        try:
            return [(None, serialization.load_pem_public_key(_as_bytes(keys)))], "the public key given"
        except Exception:
            raise TokenValidationError("The public key PEM cannot be read.", code="bad_key",
                                       fix="Pass the issuer's public key or its JWKS.") from None
    if isinstance(keys, (str, bytes)) and b"PRIVATE KEY-----" in _as_bytes(keys):
        raise ConfigurationError("A private key was given to verify with; verification needs only "
                                 "the public key.", cause="Private keys do not belong in verifiers.",
                                 fix="Pass the public key, certificate or JWKS.")
    try:
        leaf = _leaf(keys)
    except CertificateError as exc:
        raise ConfigurationError(f"keys= is not a JWKS, a key or a certificate: {exc.message}",
                                 fix="Pass a JWKS dict, a public key or the signing certificate.") from None
    return [(None, leaf.x509.public_key())], f"the certificate {leaf.subject}"


def _fetch_jwks(url: str, ca_bundle: Any, timeout: float) -> dict:
    import requests

    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ConfigurationError("jwks_url must be an http(s) URL.", fix="Pass the jwks_uri.")
    if ca_bundle is not None and not (isinstance(ca_bundle, (str, os.PathLike))
                                      and os.path.isfile(ca_bundle)):
        raise ConfigurationError("ca_bundle must be the path of an existing PEM file.",
                                 cause=f"Got {_shown_path(ca_bundle) if isinstance(ca_bundle, (str, os.PathLike)) else type(ca_bundle).__name__}.",
                                 fix="Pass the CA bundle that verifies the JWKS server (e.g. authority.ca_bundle).")
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies must not override verify=
    try:
        response = session.get(url, verify=os.fspath(ca_bundle) if ca_bundle else True, timeout=timeout)
    except (requests.RequestException, OSError, ValueError) as exc:
        raise TokenValidationError(f"The JWKS could not be fetched from {_clip(url, 200)} "
                                   f"({type(exc).__name__}).",
                                   cause="The server is unreachable, slow, or its TLS certificate is "
                                         "not trusted by ca_bundle.",
                                   fix="Check the URL and pass ca_bundle= for a private CA.",
                                   code="jwks_fetch_failed") from None
    finally:
        session.close()
    if response.status_code != 200:
        raise TokenValidationError(f"The JWKS endpoint answered HTTP {response.status_code}.",
                                   cause="Wrong URL or tenant.", fix="Use the jwks_uri from discovery.",
                                   code="jwks_fetch_failed")
    try:
        return response.json()
    except ValueError:
        raise TokenValidationError("The JWKS endpoint did not answer JSON.",
                                   cause="Wrong URL (an HTML page?).", fix="Use the jwks_uri from discovery.",
                                   code="bad_jwks") from None


# =====================================================================================
# Explanation
# =====================================================================================
def explain_claims(token: Any, *, now: _dt.datetime | None = None):
    """A pandas DataFrame: one row per header parameter and claim, in plain words.

    Columns: ``claim``, ``value``, ``meaning``, ``when`` (UTC, for time
    claims), ``time_left`` (e.g. "in 59 min", "expired 3 min ago"), ``part``
    ("header" or "payload"). ``cnf`` gets the binding explained. The table's
    ``attrs["verified"]`` says whether the token was verified (decoding alone
    never verifies).
    """
    import pandas as pd

    decoded = decode_token(token)
    moment = now or _utcnow()
    rows = []
    for name, value in decoded.header.items():
        rows.append({"claim": name, "value": _display_value(value),
                     "meaning": _claims.meaning_of(name, header=True), "when": "", "time_left": "",
                     "part": "header"})
    for name, value in decoded.claims.items():
        when, left = "", ""
        if name in _claims.TIME_CLAIMS:
            t = _as_time(value)
            if t is None:
                when = "not a valid time"
            else:
                when = f"{t:%Y-%m-%d %H:%M:%S} UTC"
                left = _time_left(name, (t - moment).total_seconds())
        meaning = _claims.meaning_of(name)
        if name == "cnf":
            meaning = _cnf_meaning(value) + " " + meaning
        elif name == "ver":
            meaning = _claims.version_of(decoded.claims) + " " + meaning
        rows.append({"claim": name, "value": _display_value(value), "meaning": meaning,
                     "when": when, "time_left": left, "part": "payload"})
    if decoded.verified:
        v = decoded.verification or {}
        state = (f"VERIFIED with {v.get('key_source')} (kid {v.get('kid')}), leeway {v.get('leeway')} s, "
                 f"audience {'checked' if v.get('audience') is not None else 'not checked'}, "
                 f"issuer {'checked' if v.get('issuer') is not None else 'not checked'}.")
    else:
        state = "NOT verified: decoding reads the claims and checks nothing. Use verify_token."
    rows.append({"claim": "(signature)", "value": decoded._signature_text(), "meaning": state,
                 "when": "", "time_left": "", "part": "signature"})
    frame = pd.DataFrame(rows, columns=["claim", "value", "meaning", "when", "time_left", "part"])
    frame.attrs["verified"] = decoded.verified
    frame.attrs["note"] = ("signature verified" if decoded.verified
                           else "decoded only: the signature was NOT verified")
    return frame


def _cnf_meaning(cnf: Any) -> str:
    if not isinstance(cnf, dict):
        return f"This cnf is a {_json_type(cnf)}, not an object: it binds nothing."
    parts = [f"{k}: {_claims.CNF_MEMBER_MEANINGS[k]}." for k in cnf if k in _claims.CNF_MEMBER_MEANINGS]
    return " ".join(parts) if parts else "This cnf has no member the lab knows."


def _time_left(name: str, seconds: float) -> str:
    if name == "exp":
        return f"expires in {_duration(seconds)}" if seconds > 0 else f"expired {_duration(-seconds)} ago"
    if name == "nbf":
        return f"valid in {_duration(seconds)}" if seconds > 0 else f"valid since {_duration(-seconds)}"
    return f"in {_duration(seconds)}" if seconds > 0 else f"{_duration(-seconds)} ago"


# =====================================================================================
# Small helpers
# =====================================================================================
def _as_time(value: Any) -> _dt.datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return _dt.datetime.fromtimestamp(value, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _fmt_time(seconds: float) -> str:
    t = _as_time(seconds)
    return f"{t:%Y-%m-%d %H:%M:%S} UTC" if t else "an invalid time"


def _time_phrase(value: Any) -> str:
    t = _as_time(value)
    if t is None:
        return ""
    delta = (t - _utcnow()).total_seconds()
    return f"{t:%Y-%m-%d %H:%M:%S} UTC, " + (f"in {_duration(delta)}" if delta > 0 else f"{_duration(-delta)} ago")


def _ago(seconds: float) -> str:
    return f"{_duration(seconds)} ago"


def _duration(seconds: float) -> str:
    seconds = int(abs(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s" if seconds % 60 else f"{seconds // 60} min"
    if seconds < 86400 * 2:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def _display_value(value: Any) -> str:
    return _clip(value if isinstance(value, str) else _compact_json(value), 500)


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError):
        return repr(value)
    except RecursionError:
        return "<JSON nested too deeply to show>"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number"}.get(
        type(value), type(value).__name__)


def _clip(text: Any, limit: int = 200) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _first_sentence(text: str) -> str:
    head, dot, _rest = text.partition(". ")
    return head + ("." if dot else "")


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
