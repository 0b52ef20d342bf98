"""FIC two-leg exchange, leg 2 at the token endpoint: successes and each refusal."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

from mtlspop_lab.certs import Certificate

EXCHANGE = "api://AzureADTokenExchange"
JWT_POP = "urn:ietf:params:oauth:client-assertion-type:jwt-pop"


def _claims(token):
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def leg1_app(authority):
    return authority.directory.register_app("fic-leg1-app")


@pytest.fixture
def leg2_app(authority):
    return authority.directory.register_app("fic-leg2-app")


def _leg1(authority, session, client_id, scope=f"{EXCHANGE}/.default"):
    answer = session.post(authority.token_endpoint("mtls"), data={
        "client_id": client_id, "grant_type": "client_credentials", "scope": scope, "token_type": "mtls_pop"})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def _leg2(authority, session, client_id, assertion, pop=True, listener="mtls"):
    data = {"client_id": client_id, "grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default",
            "client_assertion_type": JWT_POP, "client_assertion": assertion}
    if pop:
        data["token_type"] = "mtls_pop"
    return session.post(authority.token_endpoint(listener), data=data)


@pytest.mark.parametrize("pop", [True, False])
def test_app_to_app_exchange(authority, session_for, leg1_app, leg2_app, pop):
    authority.directory.add_federated_credential(leg2_app, trusted=leg1_app)
    session = session_for(leg1_app.certificate)
    assertion = _leg1(authority, session, leg1_app.client_id)
    assert _claims(assertion)["aud"] == EXCHANGE
    answer = _leg2(authority, session, leg2_app.client_id, assertion, pop=pop)
    assert answer.status_code == 200, answer.text
    final = _claims(answer.json()["access_token"])
    assert final["oid"] == leg2_app.object_id and final["appid"] == leg2_app.client_id
    assert final["aud"] == "https://graph.microsoft.com"
    if pop:
        assert answer.json()["token_type"] == "mtls_pop"
        assert final["cnf"]["x5t#S256"] == leg1_app.certificate.x5t_s256
    else:
        assert answer.json()["token_type"] == "Bearer" and "cnf" not in final
    post = [e for e in authority.trace if e.method == "POST"][-1]
    assert "jwt" in post.request_body and assertion not in post.request_body


def test_managed_identity_to_app_exchange(authority, session_for, leg2_app, tmp_path):
    """Leg 1 by a managed identity (IMDS v2 certificate), leg 2 by an app trusting that MI."""
    import requests
    mi = authority.directory.user_assigned[0]

    class Selector:                     # duck-typed ManagedIdentityId
        kind, value = "client_id", mi.client_id

    authority.directory.add_federated_credential(leg2_app, trusted=Selector())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    imds = requests.Session()
    imds.trust_env = False
    meta = imds.get(f"{authority.imds_url}/metadata/identity/getplatformmetadata?cred-api-version=2.0"
                    f"&client_id={mi.client_id}", headers={"Metadata": "true"}).json()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, meta["clientId"]),
                                    x509.NameAttribute(NameOID.DOMAIN_COMPONENT, meta["tenantId"])]))
           .add_attribute(ObjectIdentifier("1.3.6.1.4.1.311.90.2.10"), json.dumps({"vmId": meta["cuId"]["vmId"]}).encode())
           .sign(key, hashes.SHA256(), rsa_padding=padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)))
    issued = imds.post(f"{authority.imds_url}/metadata/identity/issuecredential?cred-api-version=2.0"
                       f"&client_id={mi.client_id}", headers={"Metadata": "true"},
                       json={"csr": base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()}).json()
    imds.close()
    cert = Certificate(x509.load_der_x509_certificate(base64.b64decode(issued["certificate"])), key)
    session = session_for(cert)
    assertion = _leg1(authority, session, mi.client_id)
    assert _claims(assertion)["sub"] == mi.object_id
    answer = _leg2(authority, session, leg2_app.client_id, assertion)
    assert answer.status_code == 200, answer.text
    assert _claims(answer.json()["access_token"])["cnf"]["x5t#S256"] == cert.x5t_s256


def test_tls_certificate_differs_from_assertion_cnf(authority, session_for, leg1_app, leg2_app):
    authority.directory.add_federated_credential(leg2_app, trusted=leg1_app)
    assertion = _leg1(authority, session_for(leg1_app.certificate), leg1_app.client_id)
    answer = _leg2(authority, session_for(leg2_app.certificate), leg2_app.client_id, assertion)
    assert answer.status_code == 401 and answer.json()["error_codes"] == [500181]
    assert "does not match the assertion's cnf" in answer.json()["error_description"]


def test_leg2_without_tls_certificate(authority, session_for, leg1_app, leg2_app):
    authority.directory.add_federated_credential(leg2_app, trusted=leg1_app)
    assertion = _leg1(authority, session_for(leg1_app.certificate), leg1_app.client_id)
    answer = _leg2(authority, session_for(), leg2_app.client_id, assertion, pop=False, listener="login")
    assert answer.status_code == 401 and answer.json()["error_codes"] == [500181]
    assert "no TLS client certificate" in answer.json()["error_description"]


def test_wrong_audience(authority, session_for, leg1_app, leg2_app):
    authority.directory.add_federated_credential(leg2_app, trusted=leg1_app)
    session = session_for(leg1_app.certificate)
    # a v2 API's token: same issuer as leg 1's, another audience (a Graph token is v1: another issuer)
    api_token = _leg1(authority, session, leg1_app.client_id, scope="api://mtlspop-lab-api/.default")
    answer = _leg2(authority, session, leg2_app.client_id, api_token)
    assert answer.status_code == 401 and answer.json()["error_codes"] == [700212]
    assert "audience" in answer.json()["error_description"]


def test_expired_assertion(authority, session_for, leg1_app, leg2_app):
    authority.directory.add_federated_credential(leg2_app, trusted=(authority.issuer, leg1_app.object_id))
    expired = authority.issue_token(EXCHANGE, client_id=leg1_app.object_id, certificate=leg1_app.certificate,
                                    lifetime_s=600, issued_at=time.time() - 3600)
    answer = _leg2(authority, session_for(leg1_app.certificate), leg2_app.client_id, expired)
    assert answer.status_code == 401 and answer.json()["error_codes"] == [700024]


def test_no_matching_federated_credential(authority, session_for, leg1_app, leg2_app):
    session = session_for(leg1_app.certificate)
    assertion = _leg1(authority, session, leg1_app.client_id)
    answer = _leg2(authority, session, leg2_app.client_id, assertion)
    assert answer.status_code == 401 and answer.json()["error_codes"] == [70021]
    assert leg1_app.object_id in answer.json()["error_description"]
    # a federated credential for the same issuer but another subject: the subject member of the family
    authority.directory.add_federated_credential(leg2_app, trusted=authority.directory.user_assigned[2])
    answer = _leg2(authority, session, leg2_app.client_id, assertion)
    assert answer.json()["error_codes"] == [700213]


def test_tampered_and_unsigned_assertions(authority, session_for, leg1_app, leg2_app):
    authority.directory.add_federated_credential(leg2_app, trusted=leg1_app)
    session = session_for(leg1_app.certificate)
    assertion = _leg1(authority, session, leg1_app.client_id)
    header, payload, signature = assertion.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    answer = _leg2(authority, session, leg2_app.client_id, tampered)
    assert answer.status_code == 401 and answer.json()["error_codes"] == [700027]
    unsigned = jwt.encode(_claims(assertion), None, algorithm="none")
    answer = _leg2(authority, session, leg2_app.client_id, unsigned)
    assert answer.status_code == 400 and "alg 'none'" in answer.json()["error_description"]


def test_private_key_jwt_refusals(authority, session_for, leg1_app):
    """jwt-bearer client assertions: wrong key, wrong audience, expired, alg none, iss mismatch."""
    cert = leg1_app.certificate
    session = session_for()
    endpoint = authority.token_endpoint("login")

    def assertion(key=None, alg="RS256", **overrides):
        now = int(time.time())
        claims = {"aud": endpoint, "iss": leg1_app.client_id, "sub": leg1_app.client_id, "jti": str(now),
                  "nbf": now, "exp": now + 600}
        claims.update(overrides)
        return jwt.encode(claims, key if key is not None else cert.private_key, algorithm=alg,
                          headers={"x5t": cert.x5t} if alg != "none" else None)

    def post(value):
        return session.post(endpoint, data={
            "client_id": leg1_app.client_id, "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": value})

    assert post(assertion()).status_code == 200
    assert post(assertion(alg="PS256")).status_code == 200
    stranger = Certificate.create_self_signed("CN=stranger")
    assert post(assertion(key=stranger.private_key)).json()["error_codes"] == [700027]
    assert post(assertion(aud="https://elsewhere.example/token")).json()["error_codes"] == [50013]
    now = int(time.time())
    assert post(assertion(exp=now - 3600, nbf=now - 4000)).json()["error_codes"] == [700024]
    assert post(assertion(iss="someone-else")).json()["error_codes"] == [700021]
    assert post(jwt.encode({"aud": endpoint}, None, algorithm="none")).json()["error_codes"] == [50027]


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _bearer_leg1(authority, session, client_id):
    answer = session.post(authority.token_endpoint("login"), data={
        "client_id": client_id, "grant_type": "client_credentials", "scope": f"{EXCHANGE}/.default",
        "client_assertion_type": JWT_BEARER, "client_assertion": _private_key_jwt(authority, client_id)})
    assert answer.status_code == 200 and answer.json()["token_type"] == "Bearer", answer.text
    return answer.json()["access_token"]


def _private_key_jwt(authority, client_id):
    app = authority.directory.find_app(client_id)
    now = int(time.time())
    return jwt.encode({"aud": authority.token_endpoint("login"), "iss": client_id, "sub": client_id,
                       "jti": str(now), "nbf": now, "exp": now + 600},
                      app.certificates[0].private_key, algorithm="RS256",
                      headers={"x5t": app.certificates[0].x5t})


def test_federated_jwt_bearer_assertion(authority, session_for, leg1_app, leg2_app):
    """Entra's Bearer federation: an unbound leg-1 token as a jwt-bearer assertion, no TLS certificate.

    This is what azure-identity's ClientAssertionCredential sends. A bound leg-1 token may be
    sent the same way for a Bearer leg 2 (the guide's CreateAssertion(bindCertificate: false)):
    the answer is Bearer, bound to nothing.
    """
    session = session_for()                     # server-auth TLS only: no client certificate
    leg1 = _bearer_leg1(authority, session, leg1_app.client_id)
    assert "cnf" not in _claims(leg1) and _claims(leg1)["aud"] == EXCHANGE

    def leg2(assertion):
        return session.post(authority.token_endpoint("login"), data={
            "client_id": leg2_app.client_id, "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
            "client_assertion_type": JWT_BEARER, "client_assertion": assertion})

    refused = leg2(leg1)                        # no federated credential yet
    assert refused.status_code == 401 and refused.json()["error_codes"] == [70021]
    authority.directory.add_federated_credential(leg2_app, trusted=leg1_app)
    answer = leg2(leg1)
    assert answer.status_code == 200, answer.text
    final = _claims(answer.json()["access_token"])
    assert answer.json()["token_type"] == "Bearer" and "cnf" not in final
    assert final["oid"] == leg2_app.object_id and final["aud"] == "https://graph.microsoft.com"

    bound = _leg1(authority, session_for(leg1_app.certificate), leg1_app.client_id)
    unbound_answer = leg2(bound)
    assert unbound_answer.status_code == 200, unbound_answer.text
    assert unbound_answer.json()["token_type"] == "Bearer" and "cnf" not in _claims(unbound_answer.json()["access_token"])
    graph = authority.issue_token("https://graph.microsoft.com", client_id=leg1_app.client_id)
    refused = leg2(graph)       # a Graph token is v1: its sts issuer is not the federated credential's
    assert refused.status_code == 401 and refused.json()["error_codes"] == [700211]
    expired = authority.issue_token(EXCHANGE, client_id=leg1_app.client_id, lifetime_s=60,
                                    issued_at=time.time() - 600)
    assert leg2(expired).json()["error_codes"] == [700024]
