"""Redaction of tokens and other secrets for display, traces, logs and errors.

Why a module of its own: every surface of the lab (reprs, HTML cards, the
authority's trace, exception messages) must agree on one safe form, and one
place makes that easy to test. A redacted JWT keeps what a learner needs to
recognise it (the start of its header, its length and a short hash) and
drops what would let anyone replay it: the signature is never shown.

Any other secret (a client secret, a password, an authorization code, an
opaque token) keeps nothing of its value: not a prefix, and, when it is
short, not even a hash, since a short hash of a short secret can be
brute-forced. Only its length is shown.

What counts as a credential is one list, :data:`SECRET_FIELDS`, used for
form bodies, URL queries, JSON and Python reprs alike (and by the authority's
trace for parsed bodies), plus the ``Authorization`` header, whose scheme
stays readable and whose credentials do not.
"""

from __future__ import annotations

import hashlib
import re

# Field names whose value is a credential, in any syntax (form, query, JSON, repr, "name: value").
SECRET_FIELDS = frozenset({
    "access_token", "id_token", "refresh_token", "client_secret", "client_assertion", "assertion",
    "attestation_token", "password", "passwd", "passphrase", "device_code", "code_verifier", "code",
})
# "code" is also an ordinary word ("error code: 50") and the member that names a failure in
# Microsoft's JSON error bodies ({"error": {"code": "InvalidAuthenticationToken"}}): in free text
# it is a credential only as a query or form parameter (``?code=``, ``&code=``, a body starting
# ``code=``), where an OAuth authorization code travels.
_ANYWHERE = sorted(SECRET_FIELDS - {"code"}, key=len, reverse=True)

# A compact JWS: three base64url segments. Header and payload start with "eyJ"
# ('{"' in base64) in every real token; the signature may be empty (alg none).
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
# A PEM private key of any kind (PKCS#8, RSA, EC, ENCRYPTED, OPENSSH...): the whole block, or, when
# the text was cut before the footer, the header and every base64 or header line that follows it.
_PRIVATE_KEY_RE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?:.*?-----END \1PRIVATE KEY-----|[A-Za-z0-9+/=\s:,-]*)", re.S)
_PRIVATE_KEY_HEADER_RE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
# A value: a placeholder (<token>: words only), quoted (JSON, repr), or bare up to a separator; a quote never
# closed (text cut short) still counts.
_VALUE = r"(?:<[A-Za-z _-]{1,40}>|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[\"']?[^&\"'\s,}\]]+)"
_SECRET_FIELD_RE = re.compile(
    r"(?P<key>(?<![\w-])(?:" + "|".join(_ANYWHERE) + r")[\"']?\s*[:=]\s*"
    r"|(?:(?<=[?&])|^)code=)"
    r"(?P<value>" + _VALUE + ")", re.I | re.M)
# The Authorization header (or a member named so): the scheme stays readable, the credentials do not.
_AUTHORIZATION_RE = re.compile(
    r"(?P<key>(?<![\w-])(?:proxy-)?authorization[\"']?\s*[:=][ \t]*[\"']?)"
    r"(?:(?P<scheme>[A-Za-z][\w.-]*)[ \t]+)?(?P<value>[^\s\"',;&}\]]+)", re.I)
_FIELD_NAMES = tuple(sorted(SECRET_FIELDS)) + ("authorization",)   # what _may_hold_secret looks for
_SCHEMES = {"bearer", "basic", "mtls_pop", "pop", "dpop", "digest", "negotiate", "ntlm"}
_PLACEHOLDER_RE = re.compile(r"<[A-Za-z _-]{1,40}>")     # <token>, <your secret>: words, never a value
_REDACTED = "…["          # every redacted form holds this; a value holding it is already redacted
_SHORT_SECRET = 32        # below this length an opaque value shows no hash either


def fingerprint(secret: str | bytes) -> str:
    """A short, stable, non-reversible tag: the first 8 hex digits of SHA-256."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8", "surrogatepass")
    return hashlib.sha256(secret).hexdigest()[:8]


def redact_token(token: str | bytes | None) -> str:
    """A safe stand-in for a token or any other secret value.

    A JWT: ``eyJ0eXAi…[jwt 1234 chars, sha256:1a2b3c4d]``, the start of its
    (public) header, its length and a short hash: enough to recognise, never to
    replay. Anything else: ``…[token 40 chars, sha256:1a2b3c4d]``, or for a
    value under 32 characters ``…[secret 8 chars]``: nothing of the value.
    """
    if token is None:
        return "<none>"
    if isinstance(token, bytes):
        token = token.decode("ascii", "replace")
    if not token:
        return "<empty>"
    if token.startswith("eyJ") and token.count(".") == 2:
        header = token.split(".", 1)[0]
        return f"{header[:8]}{_REDACTED}jwt {len(token)} chars, sha256:{fingerprint(token)}]"
    if len(token) < _SHORT_SECRET:
        return f"{_REDACTED}secret {len(token)} chars]"
    return f"{_REDACTED}token {len(token)} chars, sha256:{fingerprint(token)}]"


def _redact_value(value: str) -> str:
    lead = value[0] if value[0] in "\"'" else ""
    trail = lead if lead and len(value) >= 2 and value[-1] == lead else ""
    inner = value[len(lead):len(value) - len(trail)]
    if _REDACTED in inner or _PLACEHOLDER_RE.fullmatch(inner):
        return value              # already redacted, or a placeholder such as <token> in a message
    return f"{lead}{redact_token(inner)}{trail}"


def _authorization(match: re.Match) -> str:
    scheme, value = match.group("scheme"), match.group("value")
    if scheme is None and value.lower() in _SCHEMES:
        return match.group(0)     # a scheme named alone ("send Authorization: Bearer"): no credentials
    return match.group("key") + (f"{scheme} " if scheme else "") + _redact_value(value)


def _may_hold_secret(text: str) -> bool:
    """False only for text none of the patterns can match.

    A private key needs ``PRIVATE KEY`` and a JWT ``eyJ``. A credential field
    and the Authorization header need ``:`` or ``=`` *and* the field's name
    (or ``authorization``) in any case. Case-insensitive ``re`` folds a few
    non-ASCII letters (``ı``, ``ſ``, the Kelvin sign) onto ASCII ones, which
    ``str.lower`` does not, so text that is not ASCII always takes the full
    path. Most of what the authority's trace stores (GUIDs, grant types,
    paths, resource URIs) is then kept as it is without four substitutions.
    """
    if "eyJ" in text or "PRIVATE KEY" in text:
        return True
    if "=" not in text and ":" not in text:
        return False
    if not text.isascii():
        return True
    lowered = text.lower()
    return any(name in lowered for name in _FIELD_NAMES)


def redact_text(text: str) -> str:
    """Replace every private key, JWT, credential field and Authorization credential inside free text."""
    if not text or not _may_hold_secret(text):
        return text
    text = _PRIVATE_KEY_RE.sub("<private key redacted>", text)
    text = _JWT_RE.sub(lambda m: redact_token(m.group(0)), text)
    text = _AUTHORIZATION_RE.sub(_authorization, text)
    return _SECRET_FIELD_RE.sub(lambda m: m.group("key") + _redact_value(m.group("value")), text)


_SECRET_NAMES = SECRET_FIELDS | {"authorization", "proxy-authorization"}


def is_secret_field(name: object) -> bool:
    """True when a parameter or JSON member of this name holds a credential (case-insensitive)."""
    return isinstance(name, str) and name.lower() in _SECRET_NAMES


def contains_secret(text: str) -> bool:
    """True when the text holds a signed JWT or a PEM private key (for scans in tests).

    A private key counts from its ``-----BEGIN ... PRIVATE KEY-----`` line on
    (a key cut short is still a leak). A footer or the words "PRIVATE KEY"
    alone hold no key material and do not count. Opaque secrets cannot be
    recognised by their shape: tests look for their exact values.
    """
    if not text:
        return False
    if _PRIVATE_KEY_HEADER_RE.search(text):
        return True
    return any(_is_signed_jwt(match.group(0)) for match in _JWT_RE.finditer(text))


def _is_signed_jwt(candidate: str) -> bool:
    """A header, a payload (even ``{}``: ``e30``) and a signature the size of a real one (HS256: 43)."""
    header, payload, signature = candidate.split(".")
    return len(header) >= 10 and len(payload) >= 2 and len(signature) >= 16
