"""check_binding: decided by cnf, and every common thumbprint mistake named."""

from __future__ import annotations

import base64
import hashlib
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization

from mtlspop_lab.inspector import BindingVerdict, check_binding, x5t_s256
from mtlspop_lab.redact import contains_secret


def _b64u(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _der(cert) -> bytes:
    return cert.x509.public_bytes(serialization.Encoding.DER)


def test_bound_to_its_certificate(bound_token, client_cert):
    verdict = check_binding(bound_token, client_cert)
    assert isinstance(verdict, BindingVerdict)
    assert verdict.bound is True and bool(verdict) is True
    assert verdict.expected == verdict.actual == client_cert.x5t_s256
    assert verdict.mistakes == () and verdict.certificate_subject == "CN=inspector-client"
    assert "equals" in verdict.reason


def test_not_bound_to_another_certificate(bound_token, other_cert, ca):
    for cert in (other_cert, ca.issue_client_certificate("CN=attacker"), ca.certificate):
        verdict = check_binding(bound_token, cert)
        assert verdict.bound is False and not verdict
        assert verdict.mistakes == ("other_certificate",)
        assert verdict.expected == cert.x5t_s256 and verdict.actual != verdict.expected
        assert "another certificate" in verdict.reason


def test_same_key_renewed_certificate_is_another_certificate(bound_token, client_cert):
    """A renewal over the same key pair has a new DER, hence a new x5t#S256 (MSAL.NET 4.86.1 fix)."""
    from mtlspop_lab.certs import Certificate
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    import datetime as dt
    old = client_cert.x509
    now = dt.datetime.now(dt.timezone.utc)
    renewed = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(old.issuer)
               .public_key(old.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
               .sign(client_cert.private_key, hashes.SHA256()))
    verdict = check_binding(bound_token, Certificate(renewed))
    assert not verdict.bound and verdict.mistakes == ("other_certificate",)


def _mistake_values(cert):
    der = _der(cert)
    s256 = hashlib.sha256(der).digest()
    std = base64.b64encode(s256).decode()
    url = _b64u(s256)
    pem = cert.pem.encode()
    spki = cert.x509.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "padding": (url + "=", ("padding",)),
        "standard_base64": (std.rstrip("="), ("standard_base64",)),
        "standard_base64_padded": (std, ("standard_base64", "padding")),
        "sha1_x5t": (_b64u(hashlib.sha1(der).digest()), ("sha1",)),
        "sha1_windows_hex": (hashlib.sha1(der).hexdigest().upper(), ("sha1", "hex")),
        "hex_sha256": (s256.hex(), ("hex",)),
        "hex_sha256_upper": (s256.hex().upper(), ("hex",)),
        "openssl_fingerprint": (":".join(f"{b:02X}" for b in s256), ("hex",)),
        "base64_of_hex": (_b64u(s256.hex().encode()), ("base64_of_hex",)),
        "pem_text": (_b64u(hashlib.sha256(pem).digest()), ("pem_text",)),
        "pem_text_stripped": (_b64u(hashlib.sha256(pem.strip()).digest()), ("pem_text",)),
        "pem_text_crlf": (_b64u(hashlib.sha256(pem.replace(b"\n", b"\r\n")).digest()), ("pem_text",)),
        "public_key": (_b64u(hashlib.sha256(spki).digest()), ("public_key",)),
        "public_key_hex": (hashlib.sha256(spki).hexdigest(), ("public_key", "hex")),
    }


WORDS = {"padding": "padding", "standard_base64": "standard base64", "sha1": "SHA-1",
         "hex": "hex", "pem_text": "PEM text", "public_key": "public key",
         "base64_of_hex": "hex text"}


@pytest.mark.parametrize("case", [
    "padding", "standard_base64", "standard_base64_padded", "sha1_x5t", "sha1_windows_hex",
    "hex_sha256", "hex_sha256_upper", "openssl_fingerprint", "base64_of_hex", "pem_text",
    "pem_text_stripped", "pem_text_crlf", "public_key", "public_key_hex"])
def test_each_mistake_is_named(case, make_token, awkward_cert):
    value, mistakes = _mistake_values(awkward_cert)[case]
    assert value != awkward_cert.x5t_s256
    verdict = check_binding(make_token({"x5t#S256": value}), awkward_cert)
    assert verdict.bound is False
    assert set(mistakes) <= set(verdict.mistakes), verdict.mistakes
    for mistake in mistakes:
        assert WORDS[mistake].lower() in verdict.reason.lower()
    assert "x5t_s256" in verdict.fix


def test_standard_base64_is_only_a_mistake_when_the_alphabets_differ(make_token, awkward_cert):
    from mtlspop_lab.certs import Certificate
    plain = next(c for c in (Certificate.create_self_signed("CN=plain", key_type="ec") for _ in range(200))
                 if "-" not in c.x5t_s256 and "_" not in c.x5t_s256)
    std = base64.b64encode(hashlib.sha256(_der(plain)).digest()).decode().rstrip("=")
    assert std == plain.x5t_s256 and check_binding(make_token({"x5t#S256": std}), plain).bound
    std = base64.b64encode(hashlib.sha256(_der(awkward_cert)).digest()).decode().rstrip("=")
    verdict = check_binding(make_token({"x5t#S256": std}), awkward_cert)
    assert not verdict.bound and verdict.mistakes == ("standard_base64",)
    assert verdict.summary.startswith("NOT BOUND: the right certificate")


def test_public_key_mistake_on_ec_certificate(make_token, ec_cert):
    spki = ec_cert.x509.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    verdict = check_binding(make_token({"x5t#S256": _b64u(hashlib.sha256(spki).digest())}), ec_cert)
    assert verdict.mistakes == ("public_key",)


def test_binding_is_decided_by_cnf_not_token_type(bound_token, make_token, client_cert):
    labelled_bearer = SimpleNamespace(access_token=bound_token, token_type="Bearer",
                                      binding_certificate=client_cert)
    verdict = check_binding(labelled_bearer)
    assert verdict.bound and verdict.token_type == "Bearer"
    assert any("decided by cnf" in note for note in verdict.notes)

    unbound = make_token()
    labelled_pop = {"access_token": unbound, "token_type": "mtls_pop"}
    verdict = check_binding(labelled_pop, client_cert)
    assert not verdict.bound and verdict.mistakes == ("no_cnf",)
    assert any("nothing binds it" in note for note in verdict.notes)


def test_result_without_certificate(bound_token, make_token):
    verdict = check_binding(SimpleNamespace(access_token=bound_token, binding_certificate=None))
    assert not verdict.bound and verdict.mistakes == ("no_certificate",)
    assert verdict.actual is not None and verdict.expected is None
    verdict = check_binding(make_token(), None)
    assert not verdict.bound and "bearer token" in verdict.reason


@pytest.mark.parametrize("cnf, mistake, words", [
    (None, "no_cnf", "no cnf claim"),
    ("abc", "cnf_not_object", "string, not a JSON object"),
    (["x"], "cnf_not_object", "array"),
    ({}, "no_x5t_s256", "no 'x5t#S256'"),
    ({"x5t#s256": "abc"}, "member_case", "case-sensitive"),
    ({"X5T#S256": "abc"}, "member_case", "case-sensitive"),
    ({"jkt": "abc"}, "key_bound", "DPoP"),
    ({"jwk": {"kty": "RSA"}}, "key_bound", "RFC 7800"),
    ({"kid": "k"}, "key_bound", "key id"),
    ({"x5t#S256": 42}, "not_a_string", "number"),
    ({"x5t#S256": None}, "not_a_string", "null"),
    ({"x5t#S256": ["a"]}, "not_a_string", "array"),
    ({"x5t#S256": ""}, "malformed_thumbprint", "0 characters"),
    ({"x5t#S256": "short"}, "malformed_thumbprint", "not a well-formed"),
    ({"x5t#S256": "x" * 10000}, "malformed_thumbprint", "10000 characters"),
])
def test_cnf_shapes(cnf, mistake, words, make_token, raw_token, client_cert):
    token = make_token() if cnf is None else make_token(cnf)
    verdict = check_binding(token, client_cert)
    assert not verdict.bound
    assert verdict.mistakes == (mistake,)
    assert words.lower() in verdict.reason.lower()
    assert verdict.actual is None or len(verdict.actual) <= 120
    assert verdict.fix


def test_cnf_x5t_sha1_member(make_token, client_cert):
    verdict = check_binding(make_token({"x5t": client_cert.x5t}), client_cert)
    assert not verdict.bound and verdict.mistakes == ("sha1",)
    assert "this certificate's SHA-1" in verdict.reason


def test_chain_leaf_first_is_bound_and_noted(ca, make_token):
    leaf = ca.issue_client_certificate("CN=leaf")
    token = make_token({"x5t#S256": leaf.x5t_s256})
    verdict = check_binding(token, leaf.pem + ca.pem)
    assert verdict.bound and any("chain of 2" in note for note in verdict.notes)
    verdict = check_binding(token, ca.pem + leaf.pem)  # root first
    assert not verdict.bound and verdict.mistakes == ("chain_order",)
    assert "#2" in verdict.reason


def test_text_form_aligns_thumbprints_and_marks_differences(make_token, client_cert):
    value = client_cert.x5t_s256 + "="
    verdict = check_binding(make_token({"x5t#S256": value}), client_cert)
    text = verdict.to_text()
    assert text.startswith("✗ NOT BOUND")
    lines = text.splitlines()
    expected_line = next(line for line in lines if line.lstrip().startswith("expected"))
    actual_line = next(line for line in lines if line.lstrip().startswith("actual"))
    marks_line = lines[lines.index(actual_line) + 1]
    column = expected_line.index(client_cert.x5t_s256)
    assert actual_line.index(value) == column
    assert marks_line[column:].rstrip().split("  (")[0] == " " * 43 + "^"
    assert verdict.differences() == [43]
    assert "1 position(s) differ" in text


def test_html_card_is_green_or_red_and_says_it_in_words(bound_token, client_cert, other_cert, make_token):
    good = check_binding(bound_token, client_cert)._repr_html_()
    assert "#1a7f37" in good and "BOUND" in good and "✔" in good and "aria-label='bound'" in good
    bad_verdict = check_binding(bound_token, other_cert)
    bad = bad_verdict._repr_html_()
    assert "#cf222e" in bad and "NOT BOUND" in bad and "✘" in bad and "aria-label='not bound'" in bad
    assert bad.count("title='differs at") == 2 * len(bad_verdict.differences())
    last = "A" if client_cert.x5t_s256[-1] != "A" else "B"
    nearly = check_binding(make_token({"x5t#S256": client_cert.x5t_s256[:-1] + last}), client_cert)
    assert nearly.differences() == [42]
    assert "title='differs at 42'" in nearly._repr_html_()
    assert "1 difference(s)" in nearly._repr_html_()


def test_html_escapes_hostile_cnf(make_token, client_cert):
    verdict = check_binding(make_token({"x5t#S256": "<img src=x onerror=alert(1)>"}), client_cert)
    page = verdict._repr_html_()
    assert "<img" not in page and "&lt;" in page


def test_verdicts_never_hold_the_token(bound_token, client_cert, other_cert):
    for cert in (client_cert, other_cert):
        verdict = check_binding(bound_token, cert)
        for text in (repr(verdict), str(verdict), verdict._repr_html_(), verdict.reason):
            assert not contains_secret(text)
            assert bound_token.split(".")[1] not in text
            assert bound_token.split(".")[2] not in text


def test_thumbprint_agrees_with_inspector(client_cert):
    assert x5t_s256(client_cert) == client_cert.x5t_s256


def test_msal_style_response_dict_with_binding_certificate(bound_token, client_cert):
    response = {"access_token": bound_token, "token_type": "mtls_pop",
                "binding_certificate": client_cert.binding_certificate()}
    verdict = check_binding(response)
    assert verdict.bound and verdict.token_type == "mtls_pop"
