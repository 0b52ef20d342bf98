"""Certificates: creation, loading, thumbprints, key handling, and the errors a learner meets."""

import base64
import datetime as dt
import hashlib
import os
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mtlspop_lab.certs import Certificate, CertificateAuthority, x5t_s256_of_der
from mtlspop_lab.errors import CertificateError, LabError
from mtlspop_lab.redact import contains_secret


@pytest.fixture(scope="module")
def rsa_cert():
    return Certificate.create_self_signed("CN=test-app")


def test_rsa_and_ec_certificates_have_keys_and_types():
    rsa_cert = Certificate.create_self_signed("CN=rsa")
    ec_cert = Certificate.create_self_signed("CN=ec", key_type="ec")
    assert rsa_cert.key_type == "rsa" and rsa_cert.x509.public_key().key_size == 2048
    assert ec_cert.key_type == "ec" and ec_cert.x509.public_key().curve.name == "secp256r1"
    assert rsa_cert.has_private_key and ec_cert.has_private_key


def test_thumbprints_follow_their_definitions(rsa_cert):
    der = rsa_cert.x509.public_bytes(serialization.Encoding.DER)
    expected_s256 = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    assert rsa_cert.x5t_s256 == expected_s256 == x5t_s256_of_der(der)
    assert "=" not in rsa_cert.x5t_s256 and "+" not in rsa_cert.x5t_s256 and "/" not in rsa_cert.x5t_s256
    assert len(rsa_cert.x5t_s256) == 43
    assert rsa_cert.x5t == base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("=")
    assert rsa_cert.thumbprint == hashlib.sha1(der).hexdigest().upper()
    assert rsa_cert.binding_certificate() == {"x5c": [base64.b64encode(der).decode()],
                                              "thumbprint_sha256": expected_s256}


def test_pem_round_trip_with_and_without_key(tmp_path, rsa_cert):
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    rsa_cert.write_pem(cert_file, key_file)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    loaded = Certificate.load_pem(cert_file, key_file)
    assert loaded == rsa_cert and loaded.has_private_key
    public = Certificate.load_pem(cert_file)
    assert public == rsa_cert and not public.has_private_key
    combined = Certificate.from_pem(rsa_cert.pem + rsa_cert.private_key_pem().decode())
    assert combined.has_private_key


def test_encrypted_key_needs_its_password(tmp_path, rsa_cert):
    rsa_cert.write_pem(tmp_path / "c.pem", tmp_path / "k.pem", password="s3cret")
    assert Certificate.load_pem(tmp_path / "c.pem", tmp_path / "k.pem", password="s3cret").has_private_key
    with pytest.raises(CertificateError, match="password"):
        Certificate.load_pem(tmp_path / "c.pem", tmp_path / "k.pem")
    with pytest.raises(CertificateError):
        Certificate.load_pem(tmp_path / "c.pem", tmp_path / "k.pem", password="wrong")


def test_pfx_round_trip_and_wrong_password(tmp_path, rsa_cert):
    path = tmp_path / "app.pfx"
    rsa_cert.write_pfx(path, "pfx-pass")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Certificate.load_pfx(path, "pfx-pass") == rsa_cert
    with pytest.raises(CertificateError) as info:
        Certificate.load_pfx(path, "nope")
    assert info.value.code == "invalid_pfx_password" and "password" in info.value.fix
    with pytest.raises(CertificateError):
        Certificate.from_pfx(b"not a pfx at all", "x")


def test_public_only_copy_and_key_errors(rsa_cert):
    public = rsa_cert.public_only()
    assert public == rsa_cert and not public.has_private_key
    with pytest.raises(CertificateError) as info:
        public.private_key
    assert info.value.code == "cert_without_private_key"
    other = Certificate.create_self_signed("CN=other")
    with pytest.raises(CertificateError) as info:
        Certificate(rsa_cert.x509, other.private_key)
    assert info.value.code == "key_certificate_mismatch"


def test_expiry_checks():
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10)
    expired = Certificate.create_self_signed("CN=old", not_before=past, days=1)
    assert expired.is_expired() and expired.expires_in().total_seconds() < 0
    with pytest.raises(CertificateError) as info:
        expired.check_usable()
    assert info.value.code == "certificate_expired"
    future = Certificate.create_self_signed("CN=future", not_before=past + dt.timedelta(days=20))
    with pytest.raises(CertificateError) as info:
        future.check_usable()
    assert info.value.code == "certificate_not_yet_valid"


@pytest.mark.parametrize("bad", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_bad_pem_is_a_certificate_error(bad):
    with pytest.raises(CertificateError):
        Certificate.from_pem(bad)


def test_private_key_given_as_certificate_says_so(rsa_cert):
    with pytest.raises(CertificateError) as info:
        Certificate.from_pem(rsa_cert.private_key_pem())
    assert info.value.code == "private_key_not_certificate"
    assert not contains_secret(str(info.value))


def test_missing_file_and_wrong_types(tmp_path):
    with pytest.raises(CertificateError) as info:
        Certificate.load_pem(tmp_path / "absent.pem")
    assert info.value.code == "certificate_not_found"
    with pytest.raises(CertificateError) as info:
        Certificate.load_pem(tmp_path)
    assert info.value.code == "path_is_a_folder"
    with pytest.raises(CertificateError):
        Certificate.from_pem(12345)
    with pytest.raises(CertificateError):
        Certificate.from_der(b"\x30\x03abc")
    with pytest.raises(CertificateError):
        Certificate.create_self_signed("not a dn")
    with pytest.raises(CertificateError):
        Certificate.create_self_signed(key_type="dsa")


def test_repr_never_shows_the_key(rsa_cert):
    for text in (repr(rsa_cert), str(rsa_cert), rsa_cert._repr_html_(), f"{rsa_cert}"):
        assert not contains_secret(text) and rsa_cert.x5t_s256 in text


def test_ca_issues_server_and_client_certificates_that_chain():
    ca = CertificateAuthority()
    server = ca.issue_server_certificate("127.0.0.1", "localhost")
    client = ca.issue_client_certificate("CN=workload")
    for leaf in (server, client):
        leaf.x509.verify_directly_issued_by(ca.certificate.x509)
    sans = server.x509.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_into(context)  # loads without leaving files behind
    context.load_verify_locations(cadata=ca.pem)


def test_errors_carry_cause_and_fix():
    with pytest.raises(LabError) as info:
        Certificate.load_pem("/nonexistent/cert.pem")
    assert info.value.cause and info.value.fix and "fix:" in str(info.value)


@pytest.mark.parametrize("password", [1234, 3.5, ["pw"], "a\x00b"])
def test_odd_passwords_are_refused_before_openssl(rsa_cert, password):
    with pytest.raises(CertificateError) as info:
        Certificate.from_pfx(rsa_cert.to_pfx("pw"), password)
    assert info.value.code == "invalid_password"


def test_writes_into_a_missing_folder_leave_nothing_behind(tmp_path, rsa_cert):
    with pytest.raises(CertificateError) as info:
        rsa_cert.write_pem(tmp_path / "c.pem", tmp_path / "missing" / "k.pem")
    assert info.value.code == "folder_not_found"
    with pytest.raises(CertificateError) as info:
        rsa_cert.write_pfx(tmp_path / "missing" / "a.pfx", "pw")
    assert info.value.code == "folder_not_found"
    assert list(tmp_path.iterdir()) == []
