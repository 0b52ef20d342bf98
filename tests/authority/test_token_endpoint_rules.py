"""The token endpoint's rules at their edges, over real sockets (issue 19's mutation pass).

Client-assertion parameters in every incomplete combination, the certificate
an assertion header names, the lifetime it answers with, the FIC leg-2 time
and client checks, and what the trace records of a token request.
"""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from claims_support import access_token_claims_for
from mtlspop_lab.certs import Certificate

GRAPH = "https://graph.microsoft.com"
EXCHANGE = "api://AzureADTokenExchange"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_POP = "urn:ietf:params:oauth:client-assertion-type:jwt-pop"



def _codes(answer):
    body = answer.json()
    assert "access_token" not in body
    return answer.status_code, body["error_codes"]


def _assertion(app, endpoint, *, certificate=None, headers=None):
    certificate = certificate or app.certificate
    now = int(time.time())
    return jwt.encode({"aud": endpoint, "iss": app.client_id, "sub": app.client_id, "jti": str(uuid.uuid4()),
                       "nbf": now, "exp": now + 300}, certificate.private_key, algorithm="RS256",
                      headers=headers if headers is not None else {"x5t": certificate.x5t})


@pytest.fixture
def post(authority, session_for, form, app):
    endpoint = authority.token_endpoint("login")

    def send(**extra):
        return session_for().post(endpoint, data=form(app.client_id, **extra))
    send.endpoint = endpoint
    return send


def test_incomplete_client_assertion_parameters_are_each_a_missing_parameter(post, app):
    good = _assertion(app, post.endpoint)
    assert _codes(post(client_assertion=good)) == (400, [900144])                          # no type
    assert _codes(post(client_assertion_type=JWT_BEARER)) == (400, [900144])                # no assertion
    assert _codes(post(client_assertion_type=JWT_BEARER, client_assertion="")) == (400, [900144])
    assert _codes(post(client_assertion_type="", client_assertion=good)) == (400, [900144])
    assert _codes(post(client_assertion_type="urn:other", client_assertion=good)) == (400, [9002313])
    assert post(client_assertion_type=JWT_BEARER, client_assertion=good).status_code == 200


def test_a_scope_with_a_bar_is_an_invalid_scope_not_a_crash(post):
    assert _codes(post(scope="https://graph.microsoft.com/x|y")) == (400, [1002012])
    assert _codes(post(scope="api://no|such/.default")) == (400, [500011])


def test_the_assertion_header_names_the_certificate_to_verify_with(authority, post, app):
    second = Certificate.create_self_signed("CN=second-registered")
    authority.directory.add_certificate(app, second)
    stranger = Certificate.create_self_signed("CN=not-registered")
    ok = [{"x5t#S256": second.x5t_s256}, {"x5t#S256": second.x5t_s256 + "="}, {"x5t": second.x5t},
          {"x5t#S256": second.x5t_s256, "x5t": app.certificate.x5t},                 # x5t#S256 wins over x5t
          {}, {"x5t#s256": "unknown member, ignored"}]                               # none named: try each one
    for headers in ok:
        answer = post(client_assertion_type=JWT_BEARER,
                      client_assertion=_assertion(app, post.endpoint, certificate=second, headers=headers))
        assert answer.status_code == 200, (headers, answer.text)
    refused = [{"x5t#S256": app.certificate.x5t_s256}, {"x5t": app.certificate.x5t},      # names the other one
               {"x5t#S256": stranger.x5t_s256}, {"x5t": stranger.x5t}, {"x5t#S256": second.x5t_s256.swapcase()}]
    for headers in refused:
        answer = post(client_assertion_type=JWT_BEARER,
                      client_assertion=_assertion(app, post.endpoint, certificate=second, headers=headers))
        assert _codes(answer) == (401, [700027]), headers


def test_the_answer_states_the_lifetime_and_echoes_the_request_id(authority, app, session_for, form):
    authority.set_token_lifetime(600)
    request_id = str(uuid.uuid4())
    answer = session_for(app.certificate).post(authority.token_endpoint("mtls"),
                                               headers={"client-request-id": request_id},
                                               data=form(app.client_id, token_type="mtls_pop"))
    body = answer.json()
    assert body["expires_in"] == 599 and body["ext_expires_in"] == 599
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 600
    assert answer.headers["client-request-id"] == request_id
    assert "no-store" in answer.headers["Cache-Control"]
    authority.set_token_lifetime(1)
    assert session_for(app.certificate).post(authority.token_endpoint("mtls"),
                                             data=form(app.client_id)).json()["expires_in"] == 1


def test_the_trace_of_a_token_request_names_client_grant_type_and_binding(authority, app, session_for, form):
    answer = session_for(app.certificate).post(authority.token_endpoint("mtls"),
                                               data=form(app.client_id, token_type="mtls_pop"))
    assert answer.status_code == 200
    entry = authority.trace[-1]
    assert entry.client_id == app.client_id and entry.grant_type == "client_credentials"
    assert entry.token_type == "mtls_pop" and app.certificate.x5t_s256 in entry.response_body
    refused = session_for().post(authority.token_endpoint("login"), data=form(app.client_id))
    assert refused.status_code == 401 and authority.trace[-1].client_id == app.client_id


@pytest.fixture
def fic(authority):
    leg1 = authority.directory.register_app(f"rules-leg1-{uuid.uuid4().hex[:6]}")
    leg2 = authority.directory.register_app(f"rules-leg2-{uuid.uuid4().hex[:6]}")
    authority.directory.add_federated_credential(leg2, trusted=leg1)
    return leg1, leg2


def _leg1_claims(authority, leg1, **changes):
    claims = access_token_claims_for(authority, EXCHANGE, object_id=leg1.object_id, client_id=leg1.client_id,
                                     lifetime_s=600, cnf_x5t_s256=leg1.certificate.x5t_s256)
    claims.update(changes)
    return claims


def _leg2(authority, session, client_id, assertion):
    return session.post(authority.token_endpoint("mtls"), data={
        "client_id": client_id, "grant_type": "client_credentials", "scope": f"{GRAPH}/.default",
        "client_assertion_type": JWT_POP, "client_assertion": assertion, "token_type": "mtls_pop"})


def test_leg2_allows_no_leeway(authority, session_for, fic):
    leg1, leg2 = fic
    assertion = authority.signer.mint(_leg1_claims(authority, leg1, exp=time.time() - 0.5))
    assert _codes(_leg2(authority, session_for(leg1.certificate), leg2.client_id, assertion)) == (401, [700024])


def test_leg2_needs_a_registered_client(authority, session_for, fic):
    leg1, _ = fic
    assertion = authority.signer.mint(_leg1_claims(authority, leg1))
    answer = _leg2(authority, session_for(leg1.certificate), str(uuid.uuid4()), assertion)
    assert _codes(answer) == (400, [700016])
