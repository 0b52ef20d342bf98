"""Fixtures for the inspector tests: keys and certificates made at run time, tokens signed with pyjwt."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mtlspop_lab.certs import Certificate, CertificateAuthority


@pytest.fixture(scope="session")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def client_cert():
    """The certificate tokens are bound to (RSA, self-signed, with its key)."""
    return Certificate.create_self_signed("CN=inspector-client")


@pytest.fixture(scope="session")
def awkward_cert():
    """A certificate whose x5t#S256 holds '-' or '_', so standard base64 differs from base64url.

    About a quarter of SHA-256 digests encode without those characters; for
    them the "standard base64" mistake is invisible, so tests of it pick a
    certificate where it shows.
    """
    for _ in range(200):
        cert = Certificate.create_self_signed("CN=inspector-awkward", key_type="ec")
        if "-" in cert.x5t_s256 or "_" in cert.x5t_s256:
            return cert
    raise AssertionError("no certificate with '-' or '_' in 200 tries")  # (3/4)^-200: never


@pytest.fixture(scope="session")
def other_cert():
    return Certificate.create_self_signed("CN=inspector-other")


@pytest.fixture(scope="session")
def ec_cert():
    return Certificate.create_self_signed("CN=inspector-ec", key_type="ec")


@pytest.fixture(scope="session")
def ca():
    return CertificateAuthority("inspector test CA")


def _claims(**overrides):
    now = int(time.time())
    claims = {"aud": "https://graph.microsoft.com", "iss": "https://login.test/tid/v2.0",
              "iat": now, "nbf": now, "exp": now + 3600, "tid": "tid", "oid": "oid-1",
              "sub": "oid-1", "azp": "client-1", "appid": "client-1", "idtyp": "app",
              "ver": "2.0", "uti": "abc123", "rh": "0.AAAA", "xms_mirid": "/subscriptions/x"}
    for key, value in overrides.items():
        if value is _DROP:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


_DROP = object()


@pytest.fixture(scope="session")
def drop():
    """Marker: make_token(exp=drop) leaves the claim out."""
    return _DROP


@pytest.fixture(scope="session")
def make_token(rsa_key):
    """make_token(cnf=..., key=..., alg=..., kid=..., **claims) -> a signed compact JWS."""

    def make(cnf=None, *, key=None, alg="RS256", kid="test-kid", headers=None, **claims):
        payload = _claims(**claims)
        if cnf is not None:
            payload["cnf"] = cnf
        head = {"kid": kid} if kid else {}
        head.update(headers or {})
        return jwt.encode(payload, key if key is not None else rsa_key, algorithm=alg, headers=head)

    return make


@pytest.fixture(scope="session")
def bound_token(make_token, client_cert):
    return make_token({"x5t#S256": client_cert.x5t_s256})


def b64u(data) -> str:
    if isinstance(data, (dict, list, str, int, float)) or data is None:
        data = json.dumps(data).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="session")
def raw_token():
    """raw_token(header, payload, signature=b'sig...') -> a compact JWS built by hand (not signed)."""

    def make(header, payload, signature=b"s" * 64):
        head = header if isinstance(header, str) else b64u(header)
        body = payload if isinstance(payload, str) else b64u(payload)
        sig = signature if isinstance(signature, str) else b64u(signature)
        return f"{head}.{body}.{sig}"

    return make
