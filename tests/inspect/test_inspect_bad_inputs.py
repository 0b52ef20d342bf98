"""Bad inputs: a typed LabError with a useful message, or a not-bound verdict with a reason.

Never another exception type, never a hang, never the token (or a key) echoed back.
"""

from __future__ import annotations

import base64
import json
import os

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtlspop_lab.errors import LabError
from mtlspop_lab.inspector import BindingVerdict, check_binding, decode_token, explain_claims, verify_token, x5t_s256
from mtlspop_lab.redact import contains_secret


def b64u(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


H = b64u(json.dumps({"alg": "RS256", "typ": "JWT"}))
P = b64u(json.dumps({"aud": "x", "exp": 2_000_000_000}))
S = b64u(b"s" * 256)


def tok(header=H, payload=P, signature=S) -> str:
    return f"{header}.{payload}.{signature}"


class Ctx:
    """Everything the cases need, made at run time."""

    def __init__(self, make_token, client_cert, ca, tmp_path):
        self.cert = client_cert
        self.token = make_token({"x5t#S256": client_cert.x5t_s256})
        self.make_token = make_token
        self.ca = ca
        self.tmp = tmp_path


class Obj:
    def __init__(self, access_token):
        self.access_token = access_token


# Each case: ctx -> (token, certificate). A certificate of ... means "the good one".
TOKEN_CASES = {
    "empty": lambda c: "",
    "none": lambda c: None,
    "whitespace": lambda c: "  \n\t ",
    "scheme only": lambda c: "mtls_pop ",
    "truncated to 1 segment": lambda c: c.token[:20],
    "truncated payload": lambda c: c.token[:c.token.index(".") + 30] + "." + S,
    "truncated payload, odd length": lambda c: c.token[:c.token.index(".") + 29] + "." + S,
    "two segments": lambda c: ".".join(c.token.split(".")[:2]),
    "four segments": lambda c: c.token + ".AAAA",
    "five segments (JWE)": lambda c: "eyJhbGciOiJSU0EtT0FFUCJ9.AAAA.BBBB.CCCC.DDDD",
    "six segments": lambda c: "a.b.c.d.e.f",
    "only dots": lambda c: "..",
    "empty header": lambda c: tok(header=""),
    "empty payload": lambda c: tok(payload=""),
    "header not base64": lambda c: tok(header="@@@@"),
    "header padded": lambda c: tok(header=H + "="),
    "header standard base64": lambda c: tok(header=base64.b64encode(b'{"alg":"RS256","x":"\xfb\xff"}').decode()),
    "signature not base64": lambda c: tok(signature="!!!!"),
    "signature impossible length": lambda c: tok(signature="A"),
    "header not JSON": lambda c: tok(header=b64u("hello")),
    "header JSON array": lambda c: tok(header=b64u("[1,2]")),
    "header JSON string": lambda c: tok(header=b64u('"RS256"')),
    "header JSON number": lambda c: tok(header=b64u("42")),
    "header without alg": lambda c: tok(header=b64u('{"typ":"JWT"}')),
    "alg not a string": lambda c: tok(header=b64u('{"alg":256}')),
    "payload not JSON": lambda c: tok(payload=b64u("not json")),
    "payload JSON array": lambda c: tok(payload=b64u("[]")),
    "payload JSON null": lambda c: tok(payload=b64u("null")),
    "payload not UTF-8": lambda c: tok(payload=b64u(b"\xff\xfe\xfd")),
    "payload nested 100k deep": lambda c: tok(payload=b64u("[" * 100_000)),
    "payload NaN": lambda c: tok(payload=b64u('{"exp": NaN}')),
    "payload 5000-digit number": lambda c: tok(payload=b64u('{"exp": ' + "9" * 5000 + "}")),
    "payload duplicate member": lambda c: tok(payload=b64u('{"cnf":{"x5t#S256":"a"},"cnf":{}}')),
    "10 MB string": lambda c: "eyJ" + "A" * (10 * 1024 * 1024),
    "10 MB bytes": lambda c: b"eyJ" + b"A" * (10 * 1024 * 1024),
    "10 MB of dots": lambda c: "." * (10 * 1024 * 1024),
    "non-ASCII bytes": lambda c: c.token.encode()[:-4] + b"\xff\xfe\xfd\xfc",
    "non-ASCII text": lambda c: c.token[:-4] + "ééé€",
    "NUL inside": lambda c: c.token[:50] + "\x00" + c.token[50:],
    "newline inside": lambda c: c.token[:50] + "\n" + c.token[50:],
    "an int": lambda c: 42,
    "a list": lambda c: [c.token],
    "error response dict": lambda c: {"error": "invalid_client", "error_description": "AADSTS7000215"},
    "result with None token": lambda c: Obj(None),
    "result with int token": lambda c: Obj(12),
    "PEM certificate as the token (swapped)": lambda c: c.cert.pem,
    "private key as the token": lambda c: c.cert.private_key_pem().decode(),
}

VERDICT_TOKEN_CASES = {
    "cnf missing": lambda c: c.make_token(),
    "cnf a string": lambda c: c.make_token("x5t#S256"),
    "cnf a list": lambda c: c.make_token([c.cert.x5t_s256]),
    "cnf empty object": lambda c: c.make_token({}),
    "x5t#S256 a number": lambda c: c.make_token({"x5t#S256": 1}),
    "x5t#S256 an object": lambda c: c.make_token({"x5t#S256": {"v": c.cert.x5t_s256}}),
    "x5t#S256 huge": lambda c: c.make_token({"x5t#S256": "A" * 100_000}),
    "x5t#S256 with NUL": lambda c: c.make_token({"x5t#S256": c.cert.x5t_s256 + "\x00"}),
    "x5t#S256 unicode": lambda c: c.make_token({"x5t#S256": "é" * 43}),
}

CERT_CASES = {
    "empty string": lambda c: "",
    "empty bytes": lambda c: b"",
    "an int": lambda c: 42,
    "empty list": lambda c: [],
    "PEM with garbage": lambda c: "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n",
    "PEM header only": lambda c: "-----BEGIN CERTIFICATE-----\n",
    "PEM body truncated": lambda c: c.cert.pem[:400] + "\n-----END CERTIFICATE-----\n",
    "truncated DER": lambda c: c.cert.der[: len(c.cert.der) // 2],
    "one byte DER": lambda c: b"\x30",
    "random bytes": lambda c: os.urandom(512),
    "private key PEM": lambda c: c.cert.private_key_pem().decode(),
    "encrypted private key PEM": lambda c: c.cert.private_key_pem(password="pw").decode(),
    "private key DER": lambda c: c.cert.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    "public key PEM": lambda c: c.cert.x509.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
    "missing file": lambda c: str(c.tmp / "nope.pem"),
    "a folder": lambda c: c.tmp,
    "plain words": lambda c: "hello world",
    "2 MB of bytes": lambda c: b"\x30" * (2 * 1024 * 1024),
    "the token as the certificate (swapped)": lambda c: c.token,
    "password-protected PFX": lambda c: c.cert.to_pfx(password="pw"),
    "path with NUL": lambda c: "cert\x00.pem",
    "list holding itself": lambda c: _self_list(),
    "x5c with a nested list": lambda c: {"x5c": [[c.cert.x5c]]},
}


def _self_list():
    items = []
    items.append(items)
    return items

VERDICT_CERT_CASES = {
    "no certificate (None)": lambda c: None,
    "chain, root first": lambda c: c.ca.pem + c.cert.pem,
    "another certificate": lambda c: c.ca.issue_client_certificate("CN=other"),
}


@pytest.fixture
def ctx(make_token, client_cert, ca, tmp_path):
    return Ctx(make_token, client_cert, ca, tmp_path)


def _secrets(ctx: Ctx, value) -> list[str]:
    """Substrings that must never appear in an error or a display."""
    found = [part for part in ctx.token.split(".") if len(part) >= 8]
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        found += [part for part in value.split(".") if len(part) >= 16 and not part.startswith("-----")]
    return found


def _assert_clean(text: str, secrets: list[str]) -> None:
    assert not contains_secret(text), text[:300]
    for secret in secrets:
        assert secret[:200] not in text


def _expect_error_or_not_bound(call, secrets):
    try:
        outcome = call()
    except LabError as exc:  # anything else fails the test
        assert exc.message and exc.cause and exc.fix
        _assert_clean(str(exc), secrets)
        _assert_clean(repr(exc), secrets)
        return exc
    assert isinstance(outcome, BindingVerdict)
    assert outcome.bound is False and outcome.reason
    for text in (outcome.to_text(), repr(outcome), outcome._repr_html_()):
        _assert_clean(text, secrets)
    return outcome


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", list(TOKEN_CASES))
def test_bad_tokens(case, ctx):
    token = TOKEN_CASES[case](ctx)
    secrets = _secrets(ctx, token)
    outcome = _expect_error_or_not_bound(lambda: check_binding(token, ctx.cert), secrets)
    assert isinstance(outcome, LabError), case
    for call in (lambda: decode_token(token), lambda: explain_claims(token),
                 lambda: verify_token(token, ctx.cert)):
        with pytest.raises(LabError) as info:
            call()
        _assert_clean(str(info.value), secrets)


@pytest.mark.parametrize("case", list(VERDICT_TOKEN_CASES))
def test_readable_tokens_that_bind_nothing(case, ctx):
    token = VERDICT_TOKEN_CASES[case](ctx)
    outcome = _expect_error_or_not_bound(lambda: check_binding(token, ctx.cert), _secrets(ctx, token))
    assert isinstance(outcome, BindingVerdict) and outcome.mistakes


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", list(CERT_CASES))
def test_bad_certificates(case, ctx):
    certificate = CERT_CASES[case](ctx)
    secrets = _secrets(ctx, None) + ["PRIVATE KEY-----"]  # the token (also the swapped case) and keys
    outcome = _expect_error_or_not_bound(lambda: check_binding(ctx.token, certificate), secrets)
    assert isinstance(outcome, LabError), case
    with pytest.raises(LabError):
        x5t_s256(certificate)


@pytest.mark.parametrize("case", list(VERDICT_CERT_CASES))
def test_certificates_that_do_not_match(case, ctx):
    certificate = VERDICT_CERT_CASES[case](ctx)
    outcome = _expect_error_or_not_bound(lambda: check_binding(ctx.token, certificate), _secrets(ctx, None))
    assert isinstance(outcome, BindingVerdict)


def test_corpus_is_large_enough():
    assert len(TOKEN_CASES) + len(VERDICT_TOKEN_CASES) + len(CERT_CASES) + len(VERDICT_CERT_CASES) >= 40


def test_specific_messages(ctx):
    cases = {"five segments (JWE)": "encrypted", "10 MB string": "characters long",
             "header padded": "padding", "header not JSON": "not valid JSON",
             "payload JSON array": "array, not an object", "empty": "empty",
             "PEM certificate as the token (swapped)": "swapped"}
    for case, words in cases.items():
        with pytest.raises(LabError) as info:
            decode_token(TOKEN_CASES[case](ctx))
        assert words in str(info.value), (case, str(info.value))
    cert_cases = {"private key PEM": "private key", "public key PEM": "public key",
                  "truncated DER": "truncated", "the token as the certificate (swapped)": "swapped",
                  "password-protected PFX": "password", "missing file": "not found"}
    for case, words in cert_cases.items():
        with pytest.raises(LabError) as info:
            x5t_s256(CERT_CASES[case](ctx))
        assert words in str(info.value), (case, str(info.value))


@pytest.mark.parametrize("keys", ["garbage", 123, {"keys": "nope"}, {"keys": [1, "x", None]},
                                  "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"])
def test_bad_verification_keys(keys, ctx):
    with pytest.raises(LabError) as info:
        verify_token(ctx.token, keys)
    _assert_clean(str(info.value), _secrets(ctx, None))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_decode_arbitrary_text_raises_only_lab_errors(text):
    try:
        decoded = decode_token(text)
    except LabError as exc:
        assert exc.message
    else:
        assert isinstance(decoded.claims, dict) and isinstance(decoded.header, dict)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_decode_arbitrary_bytes_raises_only_lab_errors(data):
    try:
        decode_token(data)
    except LabError as exc:
        assert exc.message


_B64URL = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=80)


@settings(max_examples=300, deadline=None)
@given(_B64URL, _B64URL, _B64URL)
def test_decode_arbitrary_three_segments(header, payload, signature):
    try:
        decode_token(f"{header}.{payload}.{signature}")
    except LabError as exc:
        assert exc.message


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(claims=st.dictionaries(st.text(max_size=10), _JSON, max_size=6), cnf=_JSON)
def test_check_binding_on_arbitrary_claims_gives_a_verdict(claims, cnf, client_cert):
    claims["cnf"] = cnf
    token = f"{b64u(json.dumps({'alg': 'RS256'}))}.{b64u(json.dumps(claims))}.{S}"
    verdict = check_binding(token, client_cert)
    assert verdict.bound is False and verdict.reason and verdict.mistakes
    verdict.to_text()
    verdict._repr_html_()
    explain_claims(token)
