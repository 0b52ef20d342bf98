"""The HTML views escape what a token or a certificate says (checked with hostile claims and subjects).

The terminal's problem (control characters) has an HTML twin: markup inside a
claim must be shown, not rendered. Every view a notebook renders for a token,
a verdict, a claims table or a certificate is checked here.
"""

from __future__ import annotations

import datetime as dt

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from mtlspop_lab.certs import Certificate
from mtlspop_lab.inspector import check_binding, decode_token, explain_claims

MARKUP = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def _hostile_certificate() -> Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, MARKUP[:60])])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(9).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return Certificate(cert, key)


def _hostile_token() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(dt.datetime.now(dt.timezone.utc).timestamp())
    return jwt.encode({"aud": MARKUP, "iss": MARKUP, "sub": MARKUP, "exp": now + 60, "iat": now,
                       "cnf": {"x5t#S256": MARKUP}, MARKUP: MARKUP}, key, algorithm="RS256",
                      headers={"kid": MARKUP})


def _assert_escaped(html: str):
    lowered = html.lower()
    assert "<script" not in lowered and "<img" not in lowered, html[:300]


def test_token_verdict_claims_and_certificate_views_escape_markup():
    token, cert = _hostile_token(), _hostile_certificate()
    _assert_escaped(decode_token(token)._repr_html_())
    _assert_escaped(check_binding(token, cert)._repr_html_())
    _assert_escaped(explain_claims(token).to_html())
    _assert_escaped(cert._repr_html_())
