"""The protected API enforces the binding: one accepted case, each refusal with its own reason."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from mtlspop_lab.authority.signing import TokenCheckError
from mtlspop_lab.certs import Certificate

GRAPH = "https://graph.microsoft.com"


@pytest.fixture
def pop_token(authority, app, session_for):
    answer = session_for(app.certificate).post(authority.token_endpoint("mtls"), data={
        "client_id": app.client_id, "grant_type": "client_credentials", "scope": f"{GRAPH}/.default",
        "token_type": "mtls_pop"})
    assert answer.status_code == 200
    return answer.json()["access_token"]


def _call(session, authority, token, scheme="mtls_pop"):
    return session.get(f"{authority.resource_url}/v1.0/applications", headers={"Authorization": f"{scheme} {token}"})


def _reason(answer):
    assert answer.status_code == 401, answer.text
    challenge = answer.headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in challenge or 'error="invalid_request"' in challenge
    return answer.json()["error"]["message"]


def test_accepts_the_right_certificate(authority, app, session_for, pop_token):
    answer = _call(session_for(app.certificate), authority, pop_token)
    assert answer.status_code == 200
    body = answer.json()
    assert body["ok"] is True and body["scheme"] == "mtls_pop" and body["aud"] == GRAPH
    assert body["x5t#S256"] == app.certificate.x5t_s256 and body["sub"] == app.object_id


def test_refusals_each_have_a_distinct_reason(authority, app, session_for, pop_token):
    other = authority.directory.register_app("resource-other")
    reasons = {}
    reasons["other certificate"] = _reason(_call(session_for(other.certificate), authority, pop_token))
    reasons["no certificate"] = _reason(_call(session_for(), authority, pop_token))
    reasons["bearer scheme"] = _reason(_call(session_for(app.certificate), authority, pop_token, scheme="Bearer"))
    expired = authority.issue_token(GRAPH, certificate=app.certificate, lifetime_s=60, issued_at=time.time() - 600)
    reasons["expired"] = _reason(_call(session_for(app.certificate), authority, expired))
    header, payload, signature = pop_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["aud"] = "https://vault.azure.net"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    reasons["tampered"] = _reason(_call(session_for(app.certificate), authority, f"{header}.{forged_payload}.{signature}"))
    unsigned = jwt.encode(jwt.decode(pop_token, options={"verify_signature": False}), None, algorithm="none")
    reasons["alg none"] = _reason(_call(session_for(app.certificate), authority, unsigned))
    exchange = authority.issue_token("api://AzureADTokenExchange", certificate=app.certificate)
    reasons["wrong audience"] = _reason(_call(session_for(app.certificate), authority, exchange))
    reasons["no header"] = _reason(session_for(app.certificate).get(f"{authority.resource_url}/x"))
    assert len(set(reasons.values())) == len(reasons), reasons
    assert "does not match" in reasons["other certificate"]
    assert "no client certificate" in reasons["no certificate"]
    assert "Bearer scheme" in reasons["bearer scheme"]
    assert "expired" in reasons["expired"]
    assert "signature" in reasons["tampered"]
    assert "alg none" in reasons["alg none"]
    assert "audience" in reasons["wrong audience"]
    # refusals never echo the token
    text = json.dumps(reasons)
    assert pop_token not in text and signature not in text


def test_unbound_bearer_token_is_accepted_with_bearer_scheme_only(authority, app, session_for):
    answer = session_for().post(authority.token_endpoint("login"), data={
        "client_id": app.client_id, "grant_type": "client_credentials", "scope": f"{GRAPH}/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": jwt.encode({"aud": authority.token_endpoint("login"), "iss": app.client_id,
                                        "sub": app.client_id, "exp": int(time.time()) + 300},
                                       app.certificate.private_key, algorithm="RS256",
                                       headers={"x5t": app.certificate.x5t})})
    bearer = answer.json()["access_token"]
    ok = _call(session_for(), authority, bearer, scheme="Bearer")
    assert ok.status_code == 200 and ok.json()["scheme"] == "Bearer"
    refused = _call(session_for(app.certificate), authority, bearer, scheme="mtls_pop")
    assert "not certificate-bound" in _reason(refused)


def test_token_bound_to_certificate_trusted_at_tls_but_not_matching(authority, app, session_for, pop_token):
    """An attacker with a trusted certificate of their own still cannot use a stolen bound token."""
    attacker = Certificate.create_self_signed("CN=attacker")
    authority.trust_client_certificate(attacker)
    answer = _call(session_for(attacker), authority, pop_token)
    assert "does not match" in _reason(answer)


def test_a_trusted_issuer_may_name_the_resource_by_its_uri(fresh_authority, session_for):
    """Another issuer does not know the directory's app ids: its aud is the resource URI (an unbound token)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="foreign-1", use="sig", alg="RS256")
    issuer = "https://issuer.other.example"
    fresh_authority.trust_issuer(issuer, {"keys": [jwk]})
    now = int(time.time())
    for uri in (GRAPH, "api://mtlspop-lab-api"):      # a v1 resource, and a v2 one (whose own tokens say its app id)
        token = jwt.encode({"iss": issuer, "aud": uri, "sub": "someone", "iat": now, "exp": now + 600},
                           key, algorithm="RS256", headers={"kid": "foreign-1"})
        answer = _call(session_for(lab=fresh_authority), fresh_authority, token, scheme="Bearer")
        assert answer.status_code == 200, answer.text
        assert answer.json()["aud"] == uri and answer.json()["scheme"] == "Bearer"
    other = jwt.encode({"iss": issuer, "aud": "https://nowhere.example", "sub": "someone", "iat": now,
                        "exp": now + 600}, key, algorithm="RS256", headers={"kid": "foreign-1"})
    assert _call(session_for(lab=fresh_authority), fresh_authority, other, scheme="Bearer").status_code == 401


def test_the_trace_names_the_client_of_a_v2_api_token(authority, app, session_for):
    """A v2 token names its client in azp (v1: appid); the trace's API entry shows it."""
    token = authority.issue_token("api://mtlspop-lab-api", client_id=app.client_id)
    assert "azp" in jwt.decode(token, options={"verify_signature": False})
    authority.clear_trace()
    answer = _call(session_for(), authority, token, scheme="Bearer")
    assert answer.status_code == 200, answer.text
    api_entries = [e for e in authority.trace if e.listener == "resource"]
    assert [e.client_id for e in api_entries] == [app.client_id]


def test_the_authority_tells_a_token_not_valid_yet_from_an_expired_one(authority):
    now = int(time.time())
    early = authority.signer.mint({"aud": GRAPH, "iat": now, "nbf": now + 600, "exp": now + 1200})
    late = authority.signer.mint({"aud": GRAPH, "iat": now - 1200, "nbf": now - 1200, "exp": now - 600})
    reasons = []
    for token in (early, late):
        with pytest.raises(TokenCheckError) as info:
            authority.signer.verify(token)
        reasons.append(info.value.reason)
    assert reasons == ["not_yet_valid", "expired"]
    assert authority.signer.verify(early, now=now + 700)["aud"] == GRAPH
