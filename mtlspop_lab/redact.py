"""Redaction of tokens and other secrets for display, traces, logs and errors.

Why a module of its own: every surface of the lab (reprs, HTML cards, the
authority's trace, exception messages) must agree on one safe form, and one
place makes that easy to test. A redacted JWT keeps what a learner needs to
recognise it (its first characters and length) and drops what would let
anyone replay it: the signature is never shown.
"""

from __future__ import annotations

import hashlib
import re

# A compact JWS: three base64url segments. Header and payload start with "eyJ"
# ('{"' in base64) in every real token; the signature may be empty (alg none).
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_PRIVATE_KEY_RE = re.compile(
    r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.S)
_SECRET_FIELD_RE = re.compile(
    r"(?P<key>\b(?:access_token|client_assertion|assertion|refresh_token|id_token|"
    r"attestation_token)\b(?:\"?\s*[:=]\s*\"?))(?P<value>[^&\"\s,}]+)")


def fingerprint(secret: str | bytes) -> str:
    """A short, stable, non-reversible tag: the first 8 hex digits of SHA-256."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8", "surrogatepass")
    return hashlib.sha256(secret).hexdigest()[:8]


def redact_token(token: str | bytes | None) -> str:
    """``eyJ0eXAi…[jwt 1234 chars, sha256:1a2b3c4d]``: enough to recognise, never to replay."""
    if token is None:
        return "<none>"
    if isinstance(token, bytes):
        token = token.decode("ascii", "replace")
    if not token:
        return "<empty>"
    kind = "jwt" if token.count(".") == 2 else "token"
    return f"{token[:8]}…[{kind} {len(token)} chars, sha256:{fingerprint(token)}]"


def redact_text(text: str) -> str:
    """Replace every JWT, private key and secret form field inside free text."""
    if not text:
        return text
    text = _PRIVATE_KEY_RE.sub("<private key redacted>", text)
    text = _JWT_RE.sub(lambda m: redact_token(m.group(0)), text)
    return _SECRET_FIELD_RE.sub(
        lambda m: m.group("key") + (m.group("value") if "…[" in m.group("value")
                                    else redact_token(m.group("value"))), text)


def contains_secret(text: str) -> bool:
    """True when the text holds a complete signed JWT or a PEM private key (for scans in tests)."""
    if not text:
        return False
    if "PRIVATE KEY-----" in text:
        return True
    return any(all(len(part) >= 10 for part in match.group(0).split("."))
               for match in _JWT_RE.finditer(text))
