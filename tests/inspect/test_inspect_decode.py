"""decode_token: header and claims, never verified silently, never the token on display."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

import mtlspop_lab as lab
from mtlspop_lab.errors import TokenFormatError
from mtlspop_lab.inspector import DecodedToken, decode_token
from mtlspop_lab.redact import contains_secret


def _segments(token: str) -> list[str]:
    return [part for part in token.split(".") if len(part) >= 8]


def assert_no_token(text: str, token: str) -> None:
    assert not contains_secret(text)
    for part in _segments(token):
        assert part not in text


def test_decodes_header_and_claims(bound_token, client_cert):
    decoded = decode_token(bound_token)
    assert decoded.header["alg"] == "RS256" and decoded.kid == "test-kid"
    assert decoded.claims["aud"] == "https://graph.microsoft.com"
    assert decoded.x5t_s256 == client_cert.x5t_s256
    assert decoded.is_certificate_bound
    assert decoded.signature_present and decoded.signature_length == 256  # RSA-2048
    assert decoded.verified is False and decoded.verification is None


def test_public_names_are_exported():
    assert lab.decode_token is decode_token
    for name in ("verify_token", "check_binding", "explain_claims", "BindingVerdict",
                 "DecodedToken", "x5t_s256", "x5t", "sha1_thumbprint"):
        assert getattr(lab, name) is not None


def test_accepts_bytes_dicts_results_and_authorization_values(bound_token):
    expected = decode_token(bound_token).claims
    assert decode_token(bound_token.encode()).claims == expected
    assert decode_token(bytearray(bound_token.encode())).claims == expected
    assert decode_token({"access_token": bound_token, "token_type": "mtls_pop"}).token_type == "mtls_pop"
    result = SimpleNamespace(access_token=bound_token, token_type="Bearer", binding_certificate=None)
    decoded = decode_token(result)
    assert decoded.claims == expected and decoded.token_type == "Bearer"
    assert decode_token(f"mtls_pop {bound_token}").claims == expected
    assert decode_token(f"Bearer {bound_token}\n").claims == expected
    assert decode_token(decode_token(bound_token)).claims == expected


def test_times_are_readable(make_token):
    now = int(time.time())
    decoded = decode_token(make_token(iat=now - 60, nbf=now - 60, exp=now + 600))
    assert decoded.expires_at.timestamp() == now + 600
    assert decoded.issued_at.timestamp() == now - 60
    assert decoded.not_before.timestamp() == now - 60
    assert decoded.is_expired() is False
    assert decode_token(make_token(exp=now - 10)).is_expired() is True
    assert decode_token(make_token(exp="soon")).expires_at is None
    assert decode_token(make_token(exp="soon")).is_expired() is None


def test_displays_say_not_verified_and_never_show_the_token(bound_token):
    decoded = decode_token(bound_token)
    signature = bound_token.split(".")[2]
    for text in (str(decoded), repr(decoded), decoded.to_text(), decoded._repr_html_(), decoded.redacted,
                 decoded.token()):
        assert signature not in text
        assert_no_token(text, bound_token)
    assert "NOT verified" in decoded.to_text()
    assert "NOT verified" in decoded._repr_html_()
    assert "not verified" in repr(decoded)
    assert "256 bytes (not shown)" in decoded.to_text()


def test_reveal_is_explicit(bound_token):
    decoded = decode_token(f"  {bound_token}  ")
    assert decoded.token() != bound_token
    assert decoded.token(reveal=True) == bound_token


def test_html_escapes_claims(make_token):
    decoded = decode_token(make_token(aud="<script>alert(1)</script>"))
    page = decoded._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_unbound_token_says_so(make_token):
    decoded = decode_token(make_token())
    assert decoded.x5t_s256 is None and not decoded.is_certificate_bound
    assert "not certificate-bound" in decoded.to_text()


def test_unsigned_token_is_decoded_but_flagged(raw_token):
    token = raw_token({"alg": "none"}, {"aud": "x"}, signature=b"")
    decoded = decode_token(token)
    assert decoded.signature_present is False and decoded.signature_length == 0
    assert "absent" in decoded.to_text()


def test_duplicate_members_are_refused(raw_token):
    header = '{"alg":"RS256","alg":"none"}'
    import base64
    head = base64.urlsafe_b64encode(header.encode()).rstrip(b"=").decode()
    with pytest.raises(TokenFormatError) as info:
        decode_token(raw_token(head, {"aud": "x"}))
    assert info.value.code == "bad_json"


def test_token_type_from_result_is_kept_but_not_trusted(make_token):
    token = make_token()  # no cnf
    decoded = decode_token({"access_token": token, "token_type": "mtls_pop"})
    assert decoded.token_type == "mtls_pop"
    assert decoded.is_certificate_bound is False


def test_decoded_token_is_a_value_object(bound_token):
    decoded = decode_token(bound_token)
    assert isinstance(decoded, DecodedToken)
    with pytest.raises(Exception):
        decoded.claims = {}  # frozen
    assert json.loads(json.dumps(decoded.claims)) == decoded.claims
