"""Subject name + issuer trust: a CA and a subject instead of a thumbprint; x5c for Bearer, TLS for PoP."""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid

import jwt
import pytest
import requests

import mtlspop_lab as lab
from mtlspop_lab.certs import CertificateAuthority
from mtlspop_lab.errors import AuthorityError, ConfigurationError
from mtlspop_lab.flows import MtlsPopTokenAcquirer, call_resource
from mtlspop_lab.inspector import check_binding

GRAPH = "https://graph.microsoft.com"
SUBJECT = "CN=contoso-sni.example"


@pytest.fixture(scope="module")
def sni(authority):
    """An app that trusts (lab CA 'Contoso issuing CA', CN=contoso-sni.example) and no thumbprint of it."""
    ca = CertificateAuthority("Contoso issuing CA")
    app = authority.directory.register_app("sni-app")          # its own self-signed cert stays unrelated
    authority.trust_subject_name(app, ca, SUBJECT)
    return app, ca


def _acquirer(authority, app, certificate, **kwargs):
    return MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, certificate,
                                                        cloud=authority.cloud, **kwargs)


@pytest.mark.parametrize("use_pop", [False, True])
def test_a_certificate_of_the_trusted_ca_and_subject_is_accepted_and_renewals_need_no_registration(
        authority, sni, use_pop):
    app, ca = sni
    for _ in range(2):                                  # two certificates: a renewal, nothing registered
        cert = ca.issue_client_certificate(SUBJECT)
        assert not any(c.x5t_s256 == cert.x5t_s256 for c in app.certificates)
        with _acquirer(authority, app, cert) as acquirer:
            result = acquirer.acquire_token(GRAPH, use_pop=use_pop)
        claims = lab.decode_token(result.access_token).claims
        assert claims["sub"] == app.object_id and result.token_type == ("mtls_pop" if use_pop else "Bearer")
        if use_pop:
            assert check_binding(result.access_token, cert).bound
            assert call_resource(authority.resource_url, result).status_code == 200


def test_bearer_without_x5c_gets_700027(authority, sni):
    app, ca = sni
    with _acquirer(authority, app, ca.issue_client_certificate(SUBJECT), send_x5c=False) as acquirer:
        with pytest.raises(AuthorityError) as info:
            acquirer.acquire_token(GRAPH, use_pop=False)
        assert info.value.aadsts == 700027 and info.value.error == "invalid_client"
        assert "x5c" in info.value.fix
        # PoP needs no x5c: the certificate comes from the TLS handshake
        assert acquirer.acquire_token(GRAPH, use_pop=True).token_type == "mtls_pop"


@pytest.mark.parametrize("use_pop", [False, True])
def test_another_subject_of_the_trusted_ca_is_refused(authority, sni, use_pop):
    app, ca = sni
    with _acquirer(authority, app, ca.issue_client_certificate("CN=fabrikam.example")) as acquirer:
        with pytest.raises(AuthorityError) as info:
            acquirer.acquire_token(GRAPH, use_pop=use_pop)
    assert info.value.aadsts == 700027


@pytest.mark.parametrize("use_pop", [False, True])
def test_a_chain_from_another_ca_is_refused_with_7000213(authority, sni, use_pop):
    app, _ = sni
    impostor = CertificateAuthority("Impostor CA").issue_client_certificate(SUBJECT)   # same subject
    authority.trust_client_certificate(impostor)        # let it past TLS so the OAuth layer can judge it
    with _acquirer(authority, app, impostor) as acquirer:
        with pytest.raises(AuthorityError) as info:
            acquirer.acquire_token(GRAPH, use_pop=use_pop)
    assert info.value.aadsts == 7000213 and info.value.code == "invalid_certificate_chain"
    listener = [e for e in authority.trace if e.client_id == app.client_id][-1]
    assert listener.status == 401 and listener.error == "invalid_client AADSTS7000213"


def test_an_app_without_subject_name_trust_still_needs_its_thumbprint(authority, sni):
    _, ca = sni
    other = authority.directory.register_app("thumbprint-app")
    with _acquirer(authority, other, ca.issue_client_certificate(SUBJECT)) as acquirer:
        with pytest.raises(AuthorityError) as info:
            acquirer.acquire_token(GRAPH, use_pop=False)
    assert info.value.aadsts == 700027


def _raw_assertion(authority, app, certificate, header_extra):
    now = int(time.time())
    token_url = authority.token_endpoint("login")
    claims = {"aud": token_url, "iss": app.client_id, "sub": app.client_id, "jti": str(uuid.uuid4()),
              "iat": now, "nbf": now, "exp": now + 300}
    assertion = jwt.encode(claims, certificate.private_key, algorithm="RS256", headers=header_extra)
    with requests.Session() as s:
        s.trust_env = False
        return s.post(token_url, verify=authority.ca_bundle, timeout=10, data={
            "client_id": app.client_id, "grant_type": "client_credentials", "scope": f"{GRAPH}/.default",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion})


@pytest.mark.parametrize("header, code", [
    ({"x5c": ["not base64!"]}, 50027),
    ({"x5c": "one string"}, 50027),
    ("x5t_of_another", 50027),
    ("expired_leaf", 7000213),
])
def test_bad_x5c_headers(authority, sni, header, code):
    app, ca = sni
    cert = ca.issue_client_certificate(SUBJECT)
    if header == "x5t_of_another":
        header = {"x5c": [base64.b64encode(cert.der).decode()],
                  "x5t": ca.issue_client_certificate(SUBJECT).x5t}
    elif header == "expired_leaf":
        key = cert.private_key
        old = ca.issue(key.public_key(), SUBJECT, days=1, client_auth=True,
                       not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3))
        cert = lab.Certificate(old, key)
        header = {"x5c": [base64.b64encode(cert.der).decode()]}
    response = _raw_assertion(authority, app, cert, header)
    assert response.status_code in (400, 401) and response.json()["error_codes"] == [code]


def test_trust_subject_name_validates_its_arguments(authority, sni):
    app, ca = sni
    with pytest.raises(ConfigurationError):
        authority.trust_subject_name(app, "not a CA", SUBJECT)
    with pytest.raises(ConfigurationError):
        authority.trust_subject_name(app, ca, "  ")


def test_trust_subject_name_needs_a_registered_app(authority, sni):
    _, ca = sni

    class Stranger:
        client_id = "00000000-0000-0000-0000-00000000dead"

    with pytest.raises(ConfigurationError):
        authority.trust_subject_name(Stranger(), ca, SUBJECT)
