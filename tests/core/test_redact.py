"""Redaction: the one safe form of a token, used by every display surface."""

import jwt
import pytest

from mtlspop_lab.certs import Certificate
from mtlspop_lab.errors import LabError
from mtlspop_lab.redact import contains_secret, redact_text, redact_token


@pytest.fixture(scope="module")
def token():
    key = Certificate.create_self_signed("CN=signer").private_key
    return jwt.encode({"aud": "api://x", "sub": "s"}, key, algorithm="RS256")


def test_redacted_token_keeps_prefix_and_length_but_no_signature(token):
    shown = redact_token(token)
    assert shown.startswith(token[:8]) and str(len(token)) in shown
    assert token.split(".")[2] not in shown and not contains_secret(shown)
    assert redact_token(token) == redact_token(token.encode())
    assert redact_token(None) == "<none>" and redact_token("") == "<empty>"


def test_redact_text_replaces_tokens_keys_and_form_fields(token):
    key_pem = Certificate.create_self_signed().private_key_pem().decode()
    text = f"body=grant_type=x&client_assertion={token}&scope=s\n{key_pem}\nBearer {token}"
    cleaned = redact_text(text)
    assert contains_secret(text) and not contains_secret(cleaned)
    assert token not in cleaned and "PRIVATE KEY-----" not in cleaned
    assert "grant_type=x" in cleaned and "scope=s" in cleaned
    assert redact_text('{"access_token": "opaque-secret-value"}').count("opaque-secret-value") == 0


def test_contains_secret_ignores_ordinary_text():
    assert not contains_secret("x5t#S256 abc.def.ghi and eyJ.short")
    assert not contains_secret("")


def test_lab_error_renders_cause_and_fix():
    error = LabError("It broke.", cause="Because.", fix="Do this.", code="some_code")
    assert str(error).splitlines() == ["[some_code] It broke.", "  cause: Because.", "  fix: Do this."]
    assert error.as_dict()["fix"] == "Do this."
    assert LabError("x").fix  # a default fix always exists
