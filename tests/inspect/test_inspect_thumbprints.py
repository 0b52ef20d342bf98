"""Thumbprints from every certificate form, checked against hashlib computed here."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from mtlspop_lab.errors import CertificateError
from mtlspop_lab.inspector import sha1_thumbprint, x5t, x5t_s256


def _expected(cert):
    der = cert.x509.public_bytes(serialization.Encoding.DER)
    return (base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode(),
            base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode(),
            hashlib.sha1(der).hexdigest().upper())


def _forms(cert, tmp_path: Path):
    pem_file = tmp_path / "cert.pem"
    pem_file.write_text(cert.pem)
    der_file = tmp_path / "cert.der"
    der_file.write_bytes(cert.der)
    return {"lab Certificate": cert, "cryptography": cert.x509, "PEM str": cert.pem,
            "PEM bytes": cert.pem.encode(), "DER bytes": cert.der, "path str": str(pem_file),
            "Path": pem_file, "DER file": der_file, "base64 DER (x5c)": cert.x5c,
            "binding_certificate dict": cert.binding_certificate(),
            "chain list": [cert], "PEM with surrounding text": "subject: x\n" + cert.pem + "\nend\n"}


@pytest.mark.parametrize("key_type", ["rsa", "ec"])
def test_every_form_gives_the_same_thumbprints(key_type, tmp_path, client_cert, ec_cert):
    cert = client_cert if key_type == "rsa" else ec_cert
    s256, s1, hex1 = _expected(cert)
    assert len(s256) == 43 and "=" not in s256
    for name, form in _forms(cert, tmp_path).items():
        assert x5t_s256(form) == s256, name
        assert x5t(form) == s1, name
        assert sha1_thumbprint(form) == hex1, name


def test_chain_uses_the_leaf(ca, tmp_path):
    leaf = ca.issue_client_certificate("CN=leaf")
    chain_pem = leaf.pem + ca.pem
    assert x5t_s256(chain_pem) == leaf.x5t_s256
    assert x5t_s256([leaf, ca.certificate]) == leaf.x5t_s256


def test_thumbprints_differ_between_certificates(client_cert, other_cert):
    assert x5t_s256(client_cert) != x5t_s256(other_cert)


def test_private_key_is_refused_without_echo(client_cert):
    key_pem = client_cert.private_key_pem().decode()
    with pytest.raises(CertificateError) as info:
        x5t_s256(key_pem)
    assert info.value.code == "private_key_not_certificate"
    assert "PRIVATE KEY-----" not in str(info.value)


def test_pem_and_private_key_together_reads_the_certificate(client_cert):
    combined = client_cert.pem + client_cert.private_key_pem(password="pw").decode()
    assert x5t_s256(combined) == client_cert.x5t_s256  # the encrypted key is never touched


def test_unprotected_pfx_file_is_read(client_cert, tmp_path):
    pfx = tmp_path / "c.pfx"
    pfx.write_bytes(client_cert.to_pfx())
    assert x5t_s256(pfx) == client_cert.x5t_s256


def test_protected_pfx_says_how_to_load_it(client_cert, tmp_path):
    pfx = tmp_path / "c.pfx"
    pfx.write_bytes(client_cert.to_pfx(password="secret"))
    with pytest.raises(CertificateError, match="password"):
        x5t_s256(pfx)
