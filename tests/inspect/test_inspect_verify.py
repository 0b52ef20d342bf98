"""verify_token: signatures, times, audience, issuer; alg none and HMAC confusion refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mtlspop_lab.errors import ConfigurationError, TokenValidationError
from mtlspop_lab.inspector import decode_token, verify_token
from mtlspop_lab.redact import contains_secret


def _jwk(key, kid, alg):
    data = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
    data.update(kid=kid, use="sig")
    return data


@pytest.fixture(scope="module")
def jwks(rsa_key, ec_key):
    return {"keys": [_jwk(rsa_key, "test-kid", "RS256"), _jwk(ec_key, "ec-kid", "ES256")]}


def _refused(code, token, *args, **kwargs) -> TokenValidationError:
    with pytest.raises(TokenValidationError) as info:
        verify_token(token, *args, **kwargs)
    assert info.value.code == code, (info.value.code, info.value.message)
    text = str(info.value)
    assert not contains_secret(text)
    for part in token.split("."):
        if len(part) >= 8:
            assert part not in text
    return info.value


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "RS512"])
def test_valid_tokens_verify(alg, make_token, rsa_key, ec_key, jwks):
    key, kid = (ec_key, "ec-kid") if alg.startswith("ES") else (rsa_key, "test-kid")
    token = make_token(key=key, alg=alg, kid=kid)
    result = verify_token(token, jwks, audience="https://graph.microsoft.com",
                          issuer="https://login.test/tid/v2.0")
    assert result.verified and result.verification["alg"] == alg and result.verification["kid"] == kid
    assert "VERIFIED" in result.to_text() and "audience checked" in result.to_text()
    assert verify_token(token, key.public_key()).verified
    assert verify_token(token, key).verified  # a private key is reduced to its public half


def test_key_from_certificate_and_pem(make_token):
    from mtlspop_lab.certs import Certificate
    signer = Certificate.create_self_signed("CN=signer")
    token = make_token(key=signer.private_key)
    assert verify_token(token, signer).verified
    assert verify_token(token, signer.pem).verified
    assert verify_token(token, signer.x509).verified
    public_pem = signer.x509.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert verify_token(token, public_pem).verified


def test_unchecked_audience_and_issuer_are_stated(make_token, jwks):
    result = verify_token(make_token(), jwks)
    assert "audience not checked" in result.to_text() and "issuer not checked" in result.to_text()
    assert "leeway 60 s" in result.to_text()


def test_alg_none_is_refused(raw_token, jwks):
    for alg in ("none", "None", "NONE"):
        _refused("alg_none_refused", raw_token({"alg": alg, "kid": "test-kid"},
                                               {"exp": time.time() + 60}, signature=b""), jwks)


def test_hmac_with_the_public_key_as_secret_is_refused(rsa_key, jwks):
    """The classic confusion: sign HS256 with the issuer's public key PEM as the HMAC secret."""
    public_pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()  # noqa: E731
    signing_input = (b64(json.dumps({"alg": "HS256", "kid": "test-kid"}).encode()) + "." +
                     b64(json.dumps({"aud": "x", "exp": int(time.time()) + 600}).encode()))
    forged = signing_input + "." + b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    error = _refused("hmac_refused", forged, jwks)
    assert "confusion" in error.cause
    _refused("hmac_refused", forged, rsa_key.public_key())
    _refused("hmac_refused", forged, public_pem.decode())


def test_tampered_payload_fails_the_signature(make_token, jwks):
    token = make_token()
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["aud"] = "https://vault.azure.net"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _refused("invalid_signature", f"{head}.{forged_body}.{sig}", jwks)


def test_other_signer_fails(make_token, jwks):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _refused("invalid_signature", make_token(key=stranger), jwks)
    _refused("key_not_found", make_token(key=stranger, kid="unknown-kid"), jwks)


def test_times_with_leeway(make_token, jwks, drop):
    now = int(time.time())
    error = _refused("token_expired", make_token(exp=now - 120, iat=now - 4000, nbf=now - 4000), jwks)
    assert "leeway 60 s" in error.message
    assert verify_token(make_token(exp=now - 30), jwks).verified  # within the leeway
    _refused("token_expired", make_token(exp=now - 30), jwks, leeway=0)
    _refused("token_not_yet_valid", make_token(nbf=now + 600), jwks)
    assert verify_token(make_token(nbf=now + 30), jwks).verified
    _refused("token_issued_in_future", make_token(iat=now + 600, nbf=now), jwks)
    _refused("missing_exp", make_token(exp=drop), jwks)
    _refused("bad_time_claim", make_token(exp="tomorrow"), jwks)
    _refused("bad_time_claim", make_token(exp=True), jwks)


def test_audience_and_issuer(make_token, jwks):
    token = make_token()
    _refused("invalid_audience", token, jwks, audience="https://vault.azure.net")
    _refused("invalid_issuer", token, jwks, issuer="https://login.other/tid/v2.0")
    assert verify_token(token, jwks, audience=["https://vault.azure.net", "https://graph.microsoft.com"]).verified


def test_key_type_mismatch(make_token, ec_key, rsa_key):
    _refused("key_type_mismatch", make_token(), ec_key.public_key())
    _refused("key_type_mismatch", make_token(key=ec_key, alg="ES256"), rsa_key.public_key())


def test_algorithm_allow_list(make_token, jwks):
    _refused("unsupported_algorithm", make_token(alg="PS256"), jwks, algorithms=["RS256"])


def test_bad_jwks(make_token):
    _refused("bad_jwks", make_token(), {"not": "a jwks"})
    _refused("no_keys", make_token(), {"keys": []})
    _refused("no_keys", make_token(), {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "test-kid"}]})


def test_exactly_one_key_source(make_token, jwks):
    with pytest.raises(ConfigurationError):
        verify_token(make_token())
    with pytest.raises(ConfigurationError):
        verify_token(make_token(), jwks, jwks_url="http://127.0.0.1:9/keys")


class _Authority:
    """A minimal object with the LocalAuthority attributes verify_token reads."""

    def __init__(self, jwks, issuer):
        self.jwks, self.issuer = jwks, issuer


def test_authority_argument_checks_its_issuer(make_token, jwks):
    assert verify_token(make_token(), authority=_Authority(jwks, "https://login.test/tid/v2.0")).verified
    _refused("invalid_issuer", make_token(), authority=_Authority(jwks, "https://elsewhere/v2.0"))


@pytest.fixture()
def jwks_server(jwks):
    """A real loopback HTTP server publishing the JWKS (and a broken endpoint)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_GET(self):  # noqa: N802
            body, status = {"/keys": (json.dumps(jwks).encode(), 200),
                            "/html": (b"<html>", 200)}.get(self.path, (b"{}", 404))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_jwks_url(make_token, jwks_server):
    token = make_token()
    loopback = {"allow_http_loopback": True}     # the test server is plain http on loopback
    assert verify_token(token, jwks_url=jwks_server + "/keys", **loopback).verified
    _refused("jwks_fetch_failed", token, jwks_url=jwks_server + "/missing", **loopback)
    _refused("bad_jwks", token, jwks_url=jwks_server + "/html", **loopback)
    _refused("jwks_fetch_failed", token, jwks_url="http://127.0.0.1:9/keys", timeout=2, **loopback)


@pytest.mark.parametrize("kwargs", [{"leeway": "60"}, {"leeway": -1}, {"leeway": True},
                                    {"leeway": float("nan")}, {"now": "today"}])
def test_bad_verification_options(kwargs, make_token, jwks):
    with pytest.raises(ConfigurationError):
        verify_token(make_token(), jwks, **kwargs)


def test_now_can_be_pinned(make_token, jwks):
    token = make_token()
    exp = decode_token(token).claims["exp"]
    assert verify_token(token, jwks, now=exp - 10).verified
    _refused("token_expired", token, jwks, now=exp + 3600)


@pytest.mark.parametrize("url, ca_bundle", [("https://127.0.0.1:9/keys", "/nonexistent/ca.pem"),
                                            ("https://127.0.0.1:9/keys", 123),
                                            ("http://[::1", None), ("ftp://example/keys", None)])
def test_bad_jwks_url_arguments(url, ca_bundle, make_token):
    from mtlspop_lab.errors import LabError
    with pytest.raises(LabError):
        verify_token(make_token(), jwks_url=url, ca_bundle=ca_bundle, timeout=2)


def test_jwks_url_with_untrusted_tls_is_refused(make_token, authority):
    """The lab authority's JWKS over https without its CA: the TLS check fails, typed."""
    url = f"{authority.login_url}/{authority.tenant_id}/discovery/v2.0/keys"
    _refused("jwks_fetch_failed", make_token(), jwks_url=url, timeout=5)
