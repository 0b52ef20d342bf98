"""The binding decision is exact: one member name, one string, compared byte for byte.

check_binding and DecodedToken.is_certificate_bound decide by ``cnf.x5t#S256``
alone (RFC 8705 section 3.1). These tests pin the edges a one-line bug would
move: case of the value and of the member name, cnf members of other PoP
schemes, non-string values, and certificates compared by their DER.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mtlspop_lab.certs import Certificate
from mtlspop_lab.inspector import check_binding, decode_token, x5t_s256


def _case_variants(thumb: str) -> list[str]:
    variants = {thumb.swapcase(), thumb.upper(), thumb.lower()} - {thumb}
    assert variants, "a SHA-256 thumbprint always has letters"
    return sorted(variants)


def test_the_value_is_compared_case_sensitively(make_token, client_cert):
    thumb = client_cert.x5t_s256
    assert check_binding(make_token({"x5t#S256": thumb}), client_cert).bound       # the control
    for variant in _case_variants(thumb):
        verdict = check_binding(make_token({"x5t#S256": variant}), client_cert)
        assert not verdict.bound and not bool(verdict)
        assert verdict.expected == thumb and verdict.actual == variant
        assert verdict.mistakes == ("other_certificate",)


@pytest.mark.parametrize("member", ["x5t#s256", "X5T#S256", "x5t#S256 ", "X5t#S256"])
def test_a_misspelled_member_binds_nothing_even_with_the_right_value(member, make_token, client_cert):
    token = make_token({member: client_cert.x5t_s256})
    verdict = check_binding(token, client_cert)
    assert not verdict.bound
    decoded = decode_token(token)
    assert decoded.x5t_s256 is None and decoded.is_certificate_bound is False
    if member.strip().lower() == "x5t#s256" and member == member.strip():
        assert verdict.mistakes == ("member_case",)


@pytest.mark.parametrize("cnf", [{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, {"jwk": {"kty": "EC"}},
                                 {"kid": "k1"}, {"x5t": "q1ETPuIQUKJ1-nYKmhR6pVaPO_U"}, {},
                                 {"x5t#S256": 7}, {"x5t#S256": None}, {"x5t#S256": ["a"]},
                                 "x5t#S256", ["x5t#S256"], 0])
def test_only_a_string_x5t_s256_member_makes_a_token_certificate_bound(cnf, make_token):
    decoded = decode_token(make_token(cnf))
    assert decoded.is_certificate_bound is False
    assert decoded.x5t_s256 is None


def test_a_string_x5t_s256_makes_a_token_certificate_bound_whatever_else_cnf_holds(make_token, client_cert):
    thumb = client_cert.x5t_s256
    for cnf in ({"x5t#S256": thumb}, {"x5t#S256": thumb, "jkt": "other"}, {"x5t#S256": "not-this-cert"}):
        decoded = decode_token(make_token(cnf))
        assert decoded.is_certificate_bound is True and decoded.x5t_s256 == cnf["x5t#S256"]
    assert decode_token(make_token()).is_certificate_bound is False                      # no cnf at all


def test_the_key_bound_verdict_names_the_scheme(make_token, client_cert):
    verdict = check_binding(make_token({"jkt": client_cert.x5t_s256}), client_cert)     # even with the cert's value
    assert not verdict.bound and verdict.mistakes == ("key_bound",)


def test_a_single_certificate_adds_no_chain_note(bound_token, client_cert):
    verdict = check_binding(bound_token, client_cert)
    assert verdict.bound and verdict.notes == ()
    assert not check_binding(bound_token, Certificate.create_self_signed("CN=x")).notes


def test_a_result_without_a_certificate_is_not_bound(bound_token, client_cert):
    verdict = check_binding(bound_token)
    assert not verdict.bound and verdict.mistakes == ("no_certificate",) and verdict.expected is None
    verdict = check_binding({"access_token": bound_token, "binding_certificate": client_cert})
    assert verdict.bound and verdict.expected == client_cert.x5t_s256


# -- certificate identity ----------------------------------------------------------------------------
def test_certificates_are_equal_exactly_when_their_der_is(client_cert):
    same = Certificate.from_der(client_cert.der)                 # no private key: still the same certificate
    assert same == client_cert and hash(same) == hash(client_cert)
    assert same == Certificate.from_pem(client_cert.pem)
    assert x5t_s256(same) == client_cert.x5t_s256
    old, now = client_cert.x509, dt.datetime.now(dt.timezone.utc)
    renewed = Certificate((x509.CertificateBuilder().subject_name(old.subject).issuer_name(old.issuer)    # same name
                           .public_key(old.public_key()).serial_number(x509.random_serial_number())       # and key
                           .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
                           .sign(client_cert.private_key, hashes.SHA256())), client_cert.private_key)
    assert renewed != client_cert and renewed.der != client_cert.der
    assert not (renewed == client_cert)
    assert client_cert != client_cert.der and client_cert != client_cert.x5t_s256 and client_cert != object()
    assert len({client_cert, same, renewed}) == 2


# -- what a verdict shows of hostile input is bounded; what it says matches the value ------------------------
def test_values_shown_from_a_token_are_clipped(make_token, client_cert):
    long_value = "A" * 5000
    for cnf in ({"x5t#s256": long_value}, {"x5t#S256": long_value}):
        verdict = check_binding(make_token(cnf), client_cert)
        assert verdict.actual is not None and len(verdict.actual) <= 120
    unchecked = check_binding(make_token({"x5t#S256": long_value}))            # no certificate to compare with
    assert unchecked.actual is not None and len(unchecked.actual) <= 120


def test_the_reason_lists_at_most_six_member_names_each_clipped(make_token, client_cert):
    members = {f"m{i}" + "x" * 100: i for i in range(8)}
    verdict = check_binding(make_token(members), client_cert)
    assert verdict.mistakes == ("no_x5t_s256",)
    shown = [name for name in members if name[:20] in verdict.reason]
    assert shown == list(members)[:6]
    quoted = re.findall(r"'(m\d[^']*)'", verdict.reason)
    assert len(quoted) == 6 and all(len(name) <= 40 for name in quoted), quoted
    assert "members: none" in check_binding(make_token({}), client_cert).reason


def test_a_sha1_cnf_says_whether_it_is_this_certificates(make_token, client_cert, other_cert):
    mine = check_binding(make_token({"x5t": client_cert.x5t}), client_cert)
    other = check_binding(make_token({"x5t": other_cert.x5t}), client_cert)
    assert mine.mistakes == other.mistakes == ("sha1",)
    assert mine.reason != other.reason
    assert "not this certificate's" not in mine.reason and "not this certificate's" in other.reason
    number = check_binding(make_token({"x5t": 5}), client_cert)
    assert number.reason == other.reason
