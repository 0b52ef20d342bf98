"""IMDS: v1 Bearer, the v2 CSR -> certificate -> mTLS PoP sequence, and the modes."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

from mtlspop_lab.certs import Certificate

CUID_OID = ObjectIdentifier("1.3.6.1.4.1.311.90.2.10")
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
META = {"Metadata": "true"}


def _imds(authority, path, method="GET", **kwargs):
    session = requests.Session()
    session.trust_env = False
    with session:
        return session.request(method, f"{authority.imds_url}{path}", timeout=10, **kwargs)


def _csr(key, client_id, tenant_id, cu_id, *, with_cuid=True, padding_=PSS, subject=None):
    name = subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_id),
                                 x509.NameAttribute(NameOID.DOMAIN_COMPONENT, tenant_id)])
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    if with_cuid:
        cu = {k: v for k, v in cu_id.items() if v is not None}
        builder = builder.add_attribute(CUID_OID, json.dumps(cu).encode())
    csr = builder.sign(key, hashes.SHA256(), rsa_padding=padding_)
    return base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()


@pytest.fixture(scope="module")
def csr_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_requests_without_metadata_header_get_400_and_imds_server_header(authority):
    answer = _imds(authority, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://graph.microsoft.com")
    assert answer.status_code == 400
    assert "IMDS" in answer.headers["Server"]
    assert "metadata header" in answer.json()["error_description"].lower()


def test_v1_token_and_selectors(authority):
    base = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com"
    uami = authority.directory.user_assigned[2]
    expected = {"": authority.directory.system_assigned, f"&client_id={uami.client_id}": uami,
                f"&object_id={uami.object_id}": uami, f"&msi_res_id={uami.resource_id}": uami,
                f"&mi_res_id={uami.resource_id}": uami}
    for selector, mi in expected.items():
        answer = _imds(authority, base + selector, headers=META)
        assert answer.status_code == 200, answer.text
        assert "IMDS" in answer.headers["Server"]
        body = answer.json()
        assert body["token_type"] == "Bearer" and body["client_id"] == mi.client_id
        assert isinstance(body["expires_in"], str) and isinstance(body["expires_on"], str)
        assert body["resource"] == "https://storage.azure.com"
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["oid"] == mi.object_id and claims["xms_mirid"] == mi.resource_id.replace("/resourceGroups/", "/resourcegroups/")


def test_v1_errors(authority):
    answer = _imds(authority, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://graph.microsoft.com"
                   "&client_id=nope", headers=META)
    assert answer.status_code == 400 and "Identity not found" in answer.json()["error_description"]
    answer = _imds(authority, "/metadata/identity/oauth2/token?api-version=2018-02-01", headers=META)
    assert answer.status_code == 400 and "resource" in answer.json()["error_description"]
    uami = authority.directory.user_assigned[0]
    answer = _imds(authority, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://graph.microsoft.com"
                   f"&client_id={uami.client_id}&object_id={uami.object_id}", headers=META)
    assert answer.status_code == 400 and "Only one" in answer.json()["error_description"]


def test_compute_location_is_first_region(authority):
    answer = _imds(authority, "/metadata/instance/compute?api-version=2021-02-01", headers=META)
    assert answer.status_code == 200 and answer.json()["location"] == authority.regions[0]


def _metadata(authority, selector=""):
    answer = _imds(authority, f"/metadata/identity/getplatformmetadata?cred-api-version=2.0{selector}", headers=META)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _issue(authority, csr_b64, selector=""):
    return _imds(authority, f"/metadata/identity/issuecredential?cred-api-version=2.0{selector}", method="POST",
                 headers=META, json={"csr": csr_b64})


@pytest.mark.parametrize("which", ["system", "user"])
def test_v2_end_to_end_csr_certificate_then_mtls_pop(authority, csr_key, tmp_path, which):
    mi = authority.directory.system_assigned if which == "system" else authority.directory.user_assigned[0]
    selector = "" if which == "system" else f"&client_id={mi.client_id}"
    meta = _metadata(authority, selector)
    assert meta["clientId"] == mi.client_id and meta["tenantId"] == authority.tenant_id
    assert meta["cuId"]["vmId"] and "attestationEndpoint" in meta
    answer = _issue(authority, _csr(csr_key, meta["clientId"], meta["tenantId"], meta["cuId"]), selector)
    assert answer.status_code == 200, answer.text
    issued = answer.json()
    assert set(issued) >= {"client_id", "tenant_id", "certificate", "identity_type", "mtls_authentication_endpoint"}
    assert issued["identity_type"] == ("SystemAssigned" if which == "system" else "UserAssigned")
    assert issued["mtls_authentication_endpoint"] == authority.regional_urls[authority.regions[0]]
    cert_x509 = x509.load_der_x509_certificate(base64.b64decode(issued["certificate"]))
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert cert_x509.public_key().public_bytes(serialization.Encoding.DER, spki) == \
        csr_key.public_key().public_bytes(serialization.Encoding.DER, spki)
    assert cert_x509.issuer == authority.ca.certificate.x509.subject
    lifetime = cert_x509.not_valid_after_utc - cert_x509.not_valid_before_utc
    assert 6.9 < lifetime.total_seconds() / 86400 < 7.1
    cert = Certificate(cert_x509, csr_key)
    certfile, keyfile = tmp_path / "mi.pem", tmp_path / "mi.key"
    cert.write_pem(certfile, keyfile)
    session = requests.Session()
    session.trust_env = False
    session.verify, session.cert = authority.ca_bundle, (str(certfile), str(keyfile))
    with session:
        token = session.post(f"{issued['mtls_authentication_endpoint']}/{issued['tenant_id']}/oauth2/v2.0/token",
                             data={"client_id": issued["client_id"], "grant_type": "client_credentials",
                                   "scope": "https://graph.microsoft.com/.default", "token_type": "mtls_pop"})
    assert token.status_code == 200, token.text
    assert token.json()["token_type"] == "mtls_pop"
    claims = jwt.decode(token.json()["access_token"], options={"verify_signature": False})
    assert claims["cnf"]["x5t#S256"] == cert.x5t_s256
    assert claims["oid"] == mi.object_id and claims["xms_mirid"] == mi.resource_id.replace("/resourceGroups/", "/resourcegroups/")


def test_v2_certificate_cannot_sign_in_as_another_identity(authority, csr_key, tmp_path):
    meta = _metadata(authority)
    issued = _issue(authority, _csr(csr_key, meta["clientId"], meta["tenantId"], meta["cuId"])).json()
    cert = Certificate(x509.load_der_x509_certificate(base64.b64decode(issued["certificate"])), csr_key)
    cert.write_pem(tmp_path / "c.pem", tmp_path / "k.pem")
    other = authority.directory.user_assigned[1]
    session = requests.Session()
    session.trust_env = False
    session.verify, session.cert = authority.ca_bundle, (str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
    with session:
        answer = session.post(authority.token_endpoint("mtls"),
                              data={"client_id": other.client_id, "grant_type": "client_credentials",
                                    "scope": "https://graph.microsoft.com/.default", "token_type": "mtls_pop"})
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_v2_bad_signature_is_refused(authority, csr_key):
    meta = _metadata(authority)
    der = bytearray(base64.b64decode(_csr(csr_key, meta["clientId"], meta["tenantId"], meta["cuId"])))
    der[-5] ^= 0xFF                     # inside the signature bits
    answer = _issue(authority, base64.b64encode(bytes(der)).decode())
    assert answer.status_code == 400
    assert "bad signature" in answer.json()["error_description"]


def test_v2_wrong_subject_is_refused(authority, csr_key):
    meta = _metadata(authority)
    answer = _issue(authority, _csr(csr_key, authority.directory.user_assigned[0].client_id,
                                    meta["tenantId"], meta["cuId"]))
    assert answer.status_code == 400
    assert "subject must be CN=" in answer.json()["error_description"]


def test_v2_missing_cuid_is_refused(authority, csr_key):
    meta = _metadata(authority)
    answer = _issue(authority, _csr(csr_key, meta["clientId"], meta["tenantId"], meta["cuId"], with_cuid=False))
    assert answer.status_code == 400
    assert "cuId attribute" in answer.json()["error_description"]


def test_v2_pkcs1_signature_and_garbage_are_refused(authority, csr_key):
    meta = _metadata(authority)
    answer = _issue(authority, _csr(csr_key, meta["clientId"], meta["tenantId"], meta["cuId"], padding_=padding.PKCS1v15()))
    assert answer.status_code == 400 and "RSASSA-PSS" in answer.json()["error_description"]
    answer = _issue(authority, "!!!not base64!!!")
    assert answer.status_code == 400 and "base64" in answer.json()["error_description"]
    answer = _imds(authority, "/metadata/identity/issuecredential?cred-api-version=2.0", method="POST",
                   headers=META, data=b"\xff not json")
    assert answer.status_code == 400 and "JSON" in answer.json()["error_description"]


def test_v1_only_mode_hides_v2(authority):
    authority.set_imds_mode("v1_only")
    answer = _imds(authority, "/metadata/identity/getplatformmetadata?cred-api-version=2.0", headers=META)
    assert answer.status_code == 404 and "IMDS" in answer.headers["Server"]
    v1 = _imds(authority, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://graph.microsoft.com",
               headers=META)
    assert v1.status_code == 200
    authority.set_imds_mode("v2")
    assert _imds(authority, "/metadata/identity/getplatformmetadata?cred-api-version=2.0", headers=META).status_code == 200


def test_absent_mode_refuses_connections_then_comes_back_on_same_url(authority):
    url = authority.imds_url
    authority.set_imds_mode("absent")
    with pytest.raises(requests.exceptions.ConnectionError):
        _imds(authority, "/metadata/instance/compute?api-version=2021-02-01", headers=META)
    authority.set_imds_mode("v2")
    assert authority.imds_url == url
    assert _imds(authority, "/metadata/instance/compute?api-version=2021-02-01", headers=META).status_code == 200


def test_one_server_header_per_answer(authority):
    for headers in ({}, META):
        answer = _imds(authority, "/metadata/instance/compute?api-version=2021-02-01", headers=headers)
        assert len(answer.raw.headers.getlist("Server")) == 1
        assert "IMDS" in answer.headers["Server"]


def test_cuid_omits_absent_members(authority):
    assert authority.directory.vmss_id is None                     # a plain VM, not in a scale set
    assert _metadata(authority)["cuId"] == {"vmId": authority.directory.vm_id}


@pytest.mark.parametrize("hash_, mgf, salt, named", [
    (hashes.SHA256(), hashes.SHA384(), 32, "MGF1 with SHA-384"),
    (hashes.SHA256(), hashes.SHA256(), 20, "salt is 20 bytes"),
    (hashes.SHA384(), hashes.SHA384(), 48, "uses SHA-384"),
    (hashes.SHA256(), None, None, "sha256WithRSAEncryption"),
])
def test_v2_csr_signature_must_be_pss_sha256_mgf1_sha256_salt_32(authority, csr_key, hash_, mgf, salt, named):
    meta = _metadata(authority)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, meta["clientId"]),
                      x509.NameAttribute(NameOID.DOMAIN_COMPONENT, meta["tenantId"])])
    builder = x509.CertificateSigningRequestBuilder().subject_name(name).add_attribute(
        CUID_OID, json.dumps(meta["cuId"]).encode())
    padding_ = padding.PKCS1v15() if mgf is None else padding.PSS(mgf=padding.MGF1(mgf), salt_length=salt)
    csr = builder.sign(csr_key, hash_, rsa_padding=padding_)
    answer = _issue(authority, base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode())
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    assert named in answer.json()["error_description"]
