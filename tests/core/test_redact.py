"""Redaction: the one safe form of a token, used by every display surface."""

import jwt
import pytest

from mtlspop_lab.certs import Certificate
from mtlspop_lab.errors import LabError
from mtlspop_lab.redact import SECRET_FIELDS, contains_secret, redact_text, redact_token


@pytest.fixture(scope="module")
def token():
    key = Certificate.create_self_signed("CN=signer").private_key
    return jwt.encode({"aud": "api://x", "sub": "s"}, key, algorithm="RS256")

KEY = "PRIVATE" + " KEY"          # built here: no committed line looks like a key block


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


# -- issue 19 / issue 16 (3): every key format, every credential field, short secrets, the detector itself ------
import json
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mtlspop_lab.redact import SECRET_FIELDS, fingerprint

_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_EC = ec.generate_private_key(ec.SECP256R1())


def _pem(key, fmt, password=None):
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()


PEM_KEYS = {
    "RSA PRIVATE KEY": lambda: _pem(_RSA, serialization.PrivateFormat.TraditionalOpenSSL),
    "EC PRIVATE KEY": lambda: _pem(_EC, serialization.PrivateFormat.TraditionalOpenSSL),
    "ENCRYPTED PRIVATE KEY": lambda: _pem(_RSA, serialization.PrivateFormat.PKCS8, b"pw"),
    "PRIVATE KEY": lambda: _pem(_EC, serialization.PrivateFormat.PKCS8),
    "RSA PRIVATE KEY (encrypted)": lambda: _pem(_RSA, serialization.PrivateFormat.TraditionalOpenSSL, b"pw"),
    "OPENSSH PRIVATE KEY": lambda: _pem(_EC, serialization.PrivateFormat.OpenSSH),
}


def _body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----") and ":" not in line]


@pytest.mark.parametrize("kind", sorted(PEM_KEYS))
def test_every_private_key_format_is_redacted_and_detected(kind):
    pem = PEM_KEYS[kind]()
    assert contains_secret(pem)
    text = f"before\n{pem}\nafter"
    cleaned = redact_text(text)
    assert cleaned.startswith("before") and cleaned.endswith("after")
    assert not contains_secret(cleaned) and "PRIVATE KEY" not in cleaned
    assert not any(line in cleaned for line in _body_lines(pem))


@pytest.mark.parametrize("kind", sorted(PEM_KEYS))
def test_a_truncated_private_key_is_redacted_too(kind):
    pem = PEM_KEYS[kind]()
    half = pem[: len(pem) // 2]                 # a log line or a cell output cut in the middle of the key
    assert contains_secret(half)
    cleaned = redact_text(f"key: {half}")
    assert not contains_secret(cleaned)
    assert not any(line in cleaned for line in _body_lines(half)[1:])


def test_what_the_detector_says_about_pem_fragments():
    """A BEGIN line means a key is being shown (even cut short); a bare footer or the phrase holds no key."""
    assert contains_secret(f"-----BEGIN {KEY}-----")
    assert contains_secret(f"-----BEGIN RSA {KEY}-----\nMIIEow")
    assert not contains_secret("-----END PRIVATE KEY-----")
    assert not contains_secret("-----END RSA PRIVATE KEY-----")
    assert not contains_secret("PRIVATE KEY-----")
    assert not contains_secret("the lab never prints a PRIVATE KEY")
    assert not contains_secret("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----")


def test_the_detector_finds_a_bare_jwt(token):
    """Every `not contains_secret(...)` assertion in the suite relies on this."""
    assert contains_secret(token)
    assert contains_secret(f"Authorization: mtls_pop {token}")
    assert contains_secret(json.dumps({"access_token": token}))
    assert contains_secret(f"https://x.example/cb#access_token={token}&x=1")
    es256 = jwt.encode({"aud": "a"}, _EC, algorithm="ES256")
    assert contains_secret(es256)
    short = jwt.encode({}, "k" * 32, algorithm="HS256")                   # the smallest real signed JWT
    assert contains_secret(short)
    assert not contains_secret(redact_token(token)) and not contains_secret(redact_text(f"x {token} y"))


def test_unsigned_jwts_are_redacted(token):
    claims = {"aud": "api://x", "sub": "s", "secretish": uuid.uuid4().hex}
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert unsigned.endswith(".")
    payload = unsigned.split(".")[1]
    for text in (unsigned, f"Bearer {unsigned}", f"token={unsigned}&x=1", json.dumps({"t": unsigned})):
        cleaned = redact_text(text)
        assert payload not in cleaned and payload[:20] not in cleaned
    assert payload not in redact_token(unsigned)


_OPAQUE_FIELDS = ["client_secret", "client_assertion", "assertion", "refresh_token", "access_token", "id_token",
                  "attestation_token", "password", "device_code", "code_verifier"]


def _secret(n=24) -> str:
    """Starts with '~', which no redacted form holds: a substring found is a real leak."""
    return ("~" + uuid.uuid4().hex + uuid.uuid4().hex)[:n]


@pytest.mark.parametrize("field", _OPAQUE_FIELDS)
def test_opaque_values_under_secret_fields_are_redacted_in_every_syntax(field):
    assert field in SECRET_FIELDS
    value = _secret()
    spaced = f"{_secret(10)} {_secret(10)}"
    for text, kept in ((f"grant_type=x&{field}={value}&scope=s", ["grant_type=x", "scope=s"]),
                       (f"https://h.example/p?{field}={value}&x=1", ["https://h.example/p?", "x=1"]),
                       (json.dumps({field: value, "scope": "s"}), ['"scope": "s"']),
                       (repr({field: value, "scope": "s"}), ["'scope': 's'"]),
                       (f"{field}: {value}\nnext line", ["next line"]),
                       (f'{field}="{value}", other=1', ["other=1"])):
        cleaned = redact_text(text)
        assert value not in cleaned and value[:6] not in cleaned, (text, cleaned)
        assert all(k in cleaned for k in kept), (text, cleaned)
    for text in (json.dumps({field: spaced}), repr({field: spaced})):
        cleaned = redact_text(text)
        assert not any(part in cleaned for part in spaced.split()), cleaned


def test_an_authorization_code_is_redacted_in_queries_and_forms():
    code = _secret()
    for text in (f"https://app.example/cb?code={code}&state=abc", f"code={code}&grant_type=authorization_code"):
        cleaned = redact_text(text)
        assert code not in cleaned and code[:6] not in cleaned, cleaned
    assert "state=abc" in redact_text(f"https://app.example/cb?code={code}&state=abc")
    assert redact_text("error code=tls_error, status code: 503") == "error code=tls_error, status code: 503"


def test_an_error_code_in_a_json_body_stays_readable():
    """Microsoft's error bodies name the failure in "code": a learner must see it."""
    for body in ({"error": {"code": "InvalidAuthenticationToken", "message": "expired"}},
                 {"code": "InvalidParameter", "message": "The key to attest must be RSA."}):
        assert redact_text(json.dumps(body)) == json.dumps(body)


@pytest.mark.parametrize("scheme", ["Bearer", "Basic", "mtls_pop", "PoP"])
def test_authorization_headers_keep_the_scheme_and_lose_the_credentials(scheme):
    credentials = _secret(40)
    for text in (f"Authorization: {scheme} {credentials}", f"authorization: {scheme} {credentials}",
                 repr({"Authorization": f"{scheme} {credentials}"}),
                 json.dumps({"headers": {"Authorization": f"{scheme} {credentials}"}}),
                 f"Proxy-Authorization: {scheme} {credentials}"):
        cleaned = redact_text(text)
        assert credentials not in cleaned and credentials[:6] not in cleaned, cleaned
        assert scheme in cleaned
    bare = redact_text(f"Authorization: {credentials}")
    assert credentials not in bare and credentials[:6] not in bare


@pytest.mark.parametrize("length", [1, 2, 4, 7, 8, 9, 12, 16, 31])
def test_short_secrets_are_never_kept_recoverably(length):
    """No characters of a short secret and no hash of it (a short hash of a short secret can be brute-forced)."""
    secret = _secret(length)
    for shown in (redact_token(secret), redact_text(f"client_secret={secret}"),
                  redact_text(json.dumps({"password": secret}))):
        assert secret not in shown
        assert fingerprint(secret) not in shown
        assert str(length) in shown or length <= 0


@pytest.mark.parametrize("length", [32, 40, 200])
def test_long_opaque_secrets_keep_only_length_and_fingerprint(length):
    secret = (_secret(65) * 4)[:length]
    shown = redact_token(secret)
    assert secret[:4] not in shown and str(length) in shown and fingerprint(secret) in shown


def test_redacting_twice_changes_nothing(token):
    text = (f"client_secret={_secret()}&client_assertion={token}\nAuthorization: Bearer {token}\n"
            f"{PEM_KEYS['EC PRIVATE KEY']()}")
    once = redact_text(text)
    assert redact_text(once) == once


def test_fingerprint_is_the_sha256_prefix():
    import hashlib
    assert fingerprint("abc") == hashlib.sha256(b"abc").hexdigest()[:8] == fingerprint(b"abc")


@pytest.mark.parametrize("value", ["x" * 40 + ".a.b", "eyJ" + "x" * 40, "a.b.c", "eyJ.x"])
def test_only_a_jwt_keeps_a_prefix(value):
    shown = redact_token(value)
    assert "jwt" not in shown and value[:3] not in shown and str(len(value)) in shown


def test_a_jwt_keeps_the_start_of_its_header_only():
    header, payload, signature = "eyJhbGciOiJSUzI1NiJ9", "eyJzdWIiOiJ4In0", "s" * 40
    shown = redact_token(f"{header}.{payload}.{signature}")
    assert shown.startswith(header[:8]) and "jwt" in shown
    short_header = redact_token(f"eyJh.{payload}.{signature}")              # never more than the header
    assert short_header.startswith("eyJh…") and payload[:4] not in short_header


def test_redacted_json_and_reprs_stay_parseable():
    import ast
    data = {"password": "p w", "client_secret": "", "code": "c", "scope": "s", "n": 1,
            "headers": {"Authorization": "Bearer abc.def"}}
    cleaned = redact_text(json.dumps(data))
    parsed = json.loads(cleaned)
    assert parsed["scope"] == "s" and parsed["n"] == 1 and "p w" not in cleaned
    assert parsed["headers"]["Authorization"].startswith("Bearer ") and "abc.def" not in cleaned
    literal = ast.literal_eval(redact_text(repr(data)))
    assert literal["scope"] == "s" and literal["password"] != "p w"


def test_a_quote_never_closed_still_hides_the_whole_value():
    assert redact_text('client_secret="abc') == 'client_secret="' + redact_token("abc")
    assert redact_text("password='abcdef") == "password='" + redact_token("abcdef")


def test_placeholders_and_scheme_names_in_messages_are_left_alone():
    for text in ("send 'Authorization: mtls_pop <token>'", "Authorization: Bearer", "authorization: MTLS_POP",
                 "client_secret=<your secret>", '{"password": "<redacted>"}'):
        assert redact_text(text) == text
    for text in ("password=<abc123", "password=abc123>", "password=<abc123>", "Authorization: Bearer <abc123>"):
        assert "abc123" not in redact_text(text), text


def test_is_secret_field():
    from mtlspop_lab.redact import is_secret_field
    for name in ("client_secret", "Client_Secret", "PASSWORD", "code", "Authorization", "proxy-authorization",
                 "refresh_token", "attestation_token"):
        assert is_secret_field(name), name
    for name in ("scope", "grant_type", "client_id", "token_type", "error_codes", "authorization_scheme", None, 5):
        assert not is_secret_field(name), name


def test_the_detector_rule_for_a_signed_jwt_at_its_edges():
    """A JWT counts from a 10-character header, a 2-character payload and a 16-character signature."""
    def jwt_of(h, p, s):
        return f"eyJ{'a' * (h - 3)}.{'b' * p}.{'c' * s}"
    assert contains_secret(jwt_of(10, 2, 16))
    assert not contains_secret(jwt_of(9, 2, 16))
    assert not contains_secret(jwt_of(10, 1, 16))
    assert not contains_secret(jwt_of(10, 2, 15))
    assert not contains_secret(jwt_of(10, 2, 0))                        # unsigned: nothing to replay


# redact_text skips its substitutions for text that cannot hold a secret: none of "eyJ" and a key
# header, and no ":" or "=" next to a credential field's name. Each case below holds one trigger
# alone, and must still be redacted.
def _only_trigger_cases(token):
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" * 3          # base64 without "=" padding
    return {
        "=": "client_secret=s3cr3t-value-that-is-long-enough-to-hash",
        ":": "password: s3cr3t-value-that-is-long-enough-to-hash",
        "eyJ": f"the token {token} was sent",
        KEY: f"-----BEGIN {KEY}-----\n{body}\n-----END {KEY}-----",
    }


@pytest.mark.parametrize("trigger", ["=", ":", "eyJ", KEY])
def test_text_whose_only_marker_is_one_trigger_is_still_redacted(token, trigger):
    text = _only_trigger_cases(token)[trigger]
    others = {"=", ":", "eyJ", KEY} - {trigger}
    assert trigger in text and not any(other in text for other in others)
    if trigger == "eyJ":
        assert ":" not in token and "=" not in token          # a compact JWS has neither
    cleaned = redact_text(text)
    assert cleaned != text
    assert "s3cr3t" not in cleaned and token.split(".")[2] not in cleaned and "MIIEvQ" not in cleaned


@pytest.mark.parametrize("field", sorted(SECRET_FIELDS) + ["authorization", "Proxy-Authorization"])
@pytest.mark.parametrize("separator", ["=", ": "])
def test_every_field_name_passes_the_quick_check(field, separator):
    if field == "code" and separator != "=":
        separator = "="                   # "code: 50" is an error code; a credential only as code=
    text = f"{field.upper()}{separator}s3cr3t-value-that-is-long-enough-to-hash"
    assert "s3cr3t" not in redact_text(text)


@pytest.mark.parametrize("text", ["cl\u0131ent_secret=s3cr3t-value-that-is-long-enough-to-hash",    # dotless i
                                  "pa\u017f\u017fword: s3cr3t-value-that-is-long-enough-to-hash",    # long s
                                  "\u212aey=1&client_assertion=s3cr3t-value-that-is-long-enough"])   # Kelvin sign
def test_letters_that_case_folding_maps_to_ascii_still_lead_to_redaction(text):
    assert "s3cr3t" not in redact_text(text)


@pytest.mark.parametrize("text", ["client_credentials", "4f1c0a2e-9b7d-4c55-8f7e-0d2b6a9c1e33",
                                  "/4f1c0a2e/oauth2/v2.0/token", "mtls_pop", "password", "Bearer",
                                  "https://graph.microsoft.com/.default", "api-version=2018-02-01&resource=x"])
def test_text_without_a_secret_is_kept_as_it_is(text):
    assert redact_text(text) == text


def test_a_text_naming_every_field_has_every_secret_redacted():
    query = "&".join(f"{name}=s3cr3t{i}-value-that-is-long-enough" for i, name in enumerate(sorted(SECRET_FIELDS)))
    text = f"POST ?{query}\nAuthorization: Bearer s3cr3t-header-value-that-is-long-enough"
    assert "s3cr3t" not in redact_text(text)
