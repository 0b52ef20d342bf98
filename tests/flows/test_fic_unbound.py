"""Unbound leg 2 (the guide's CreateAssertion(bindCertificate: false)) and the assertion-type errors.

Every case goes through the real flows (msal over the lab's transports) or, where a
well-behaved client refuses before sending, through a raw form post like any client.
"""

from __future__ import annotations

import jwt as pyjwt
import pytest
import requests

from mtlspop_lab.certs import Certificate
from mtlspop_lab.errors import AuthorityError, CertificateError, ConfigurationError
from mtlspop_lab.flows import (
    ClientSignedAssertion,
    FicAssertionProvider,
    FicLeg1Acquirer,
    FicLeg2Exchanger,
    MtlsPopTokenAcquirer,
    call_resource,
)

GRAPH = "https://graph.microsoft.com"
EXCHANGE = "api://AzureADTokenExchange"
JWT_POP = "urn:ietf:params:oauth:client-assertion-type:jwt-pop"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def pem_files(tmp_path):
    def write(cert):
        certfile, keyfile = tmp_path / f"{cert.x5t_s256[:8]}.pem", tmp_path / f"{cert.x5t_s256[:8]}.key"
        cert.write_pem(certfile, keyfile)
        return str(certfile), str(keyfile)
    return write


@pytest.fixture
def pair(authority):
    d = authority.directory
    leg1_app, leg2_app = d.register_app("unbound-leg1"), d.register_app("unbound-leg2")
    d.add_federated_credential(leg2_app, trusted=leg1_app)
    leg1 = FicLeg1Acquirer.for_confidential_client(leg1_app.client_id, leg1_app.tenant_id, leg1_app.certificate,
                                                   cloud=authority.cloud)
    leg2 = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud)
    yield leg1_app, leg2_app, leg1, leg2
    leg1.close()
    leg2.close()


def _raw_leg2(authority, client_id, assertion, *, assertion_type, listener, cert_files=None, pop=False):
    data = {"client_id": client_id, "grant_type": "client_credentials", "scope": f"{GRAPH}/.default",
            "client_assertion_type": assertion_type, "client_assertion": assertion}
    if pop:
        data["token_type"] = "mtls_pop"
    with requests.Session() as session:
        session.trust_env = False
        session.verify = authority.ca_bundle
        session.cert = cert_files
        return session.post(authority.token_endpoint(listener), data=data)


def test_unbound_leg2_is_jwt_bearer_on_the_login_host_and_gives_bearer(authority, pair):
    leg1_app, leg2_app, leg1, leg2 = pair
    assertion = FicAssertionProvider(leg1.acquire_assertion()).create_assertion(bind_certificate=False)
    assert isinstance(assertion, ClientSignedAssertion) and assertion.token_binding_certificate is None
    authority.clear_trace()
    result = leg2.exchange_assertion_for_access_token(assertion, GRAPH, use_pop=False)
    assert result.token_type == "Bearer" and result.binding_certificate is None
    posts = [e for e in authority.trace if e.method == "POST"]
    assert [e.listener for e in posts] == ["login"] and posts[0].client_cert_x5t is None
    assert JWT_BEARER in posts[0].request_body and JWT_POP not in posts[0].request_body
    claims = pyjwt.decode(result.access_token, options={"verify_signature": False})
    assert claims["appid"] == leg2_app.client_id and "cnf" not in claims      # Graph: a v1 token
    assert call_resource(authority.resource_url, result).ok


def test_bound_assertion_from_the_provider_is_jwt_pop_over_mtls(authority, pair):
    leg1_app, _, leg1, leg2 = pair
    assertion = FicAssertionProvider(leg1.acquire_assertion()).create_assertion(bind_certificate=True)
    authority.clear_trace()
    result = leg2.exchange_assertion_for_access_token(assertion, GRAPH, use_pop=True)
    assert result.is_pop and result.binding_certificate.x5t_s256 == leg1_app.certificate.x5t_s256
    post = [e for e in authority.trace if e.method == "POST"][0]
    assert post.listener == "mtls" and post.client_cert_x5t == leg1_app.certificate.x5t_s256
    assert JWT_POP in post.request_body


def test_bind_certificate_false_on_the_leg1_result_itself(authority, pair):
    _, _, leg1, leg2 = pair
    result = leg2.exchange_assertion_for_access_token(leg1.acquire_assertion(), GRAPH, use_pop=False,
                                                      bind_certificate=False)
    assert result.token_type == "Bearer"
    with pytest.raises(ConfigurationError):       # the flag may not contradict the assertion object
        leg2.exchange_assertion_for_access_token(
            FicAssertionProvider(leg1.acquire_assertion()).create_assertion(False), GRAPH, use_pop=False,
            bind_certificate=True)


def test_unbound_assertion_asking_for_pop(authority, pair, pem_files):
    leg1_app, leg2_app, leg1, leg2 = pair
    leg1_result = leg1.acquire_assertion()
    unbound = FicAssertionProvider(leg1_result).create_assertion(bind_certificate=False)
    with pytest.raises(CertificateError) as info:            # MSAL.NET refuses before sending
        leg2.exchange_assertion_for_access_token(unbound, GRAPH, use_pop=True)
    assert info.value.code == "mtls_certificate_not_provided"
    # what the token service answers a client that sends it anyway: on the login host...
    answer = _raw_leg2(authority, leg2_app.client_id, leg1_result.access_token, assertion_type=JWT_BEARER,
                       listener="login", pop=True)
    assert answer.status_code == 400 and answer.json()["error_codes"] == [500181]
    # ...and over mTLS with leg 1's certificate: still no proof, the assertion is not jwt-pop
    answer = _raw_leg2(authority, leg2_app.client_id, leg1_result.access_token, assertion_type=JWT_BEARER,
                       listener="mtls", pop=True, cert_files=pem_files(leg1_app.certificate))
    assert answer.status_code == 400 and answer.json()["error_codes"] == [500181]


def test_jwt_pop_without_mtls(authority, pair):
    _, leg2_app, leg1, _ = pair
    answer = _raw_leg2(authority, leg2_app.client_id, leg1.acquire_assertion().access_token,
                       assertion_type=JWT_POP, listener="login")
    assert answer.status_code == 401 and answer.json()["error_codes"] == [500181]


def test_jwt_pop_with_another_certificate(authority, pair):
    _, leg2_app, leg1, _ = pair
    other = Certificate.create_self_signed("CN=not-leg-1")
    authority.trust_client_certificate(other)
    leg2 = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud, certificate=other)
    with pytest.raises(AuthorityError) as info:
        leg2.exchange_assertion_for_access_token(leg1.acquire_assertion().access_token, GRAPH)
    assert info.value.aadsts == 500181 and info.value.code == "tls_certificate_mismatch"
    leg2.close()


def test_bearer_leg1_token_sent_as_jwt_pop(authority, pair):
    leg1_app, leg2_app, _, _ = pair
    vanilla = MtlsPopTokenAcquirer.for_confidential_client(leg1_app.client_id, leg1_app.tenant_id,
                                                           leg1_app.certificate, cloud=authority.cloud)
    bearer_leg1 = vanilla.acquire_token(EXCHANGE, use_pop=False)
    assert bearer_leg1.token_type == "Bearer"
    with pytest.raises(ConfigurationError) as info:           # the provider knows there is nothing to bind
        FicAssertionProvider(bearer_leg1).create_assertion(bind_certificate=True)
    assert info.value.code == "pop_not_requested"
    leg2 = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud,
                                   certificate=leg1_app.certificate)
    with pytest.raises(AuthorityError) as info:               # the server refuses the unbound jwt-pop
        leg2.exchange_assertion_for_access_token(bearer_leg1.access_token, GRAPH)
    assert info.value.aadsts == 500181
    # the same Bearer leg 1, sent unbound for a Bearer leg 2, is accepted
    assert leg2.exchange_assertion_for_access_token(bearer_leg1, GRAPH, use_pop=False).token_type == "Bearer"
    vanilla.close()
    leg2.close()


def test_unbound_leg2_without_federated_credential(authority, pair):
    _, _, leg1, _ = pair
    stranger = authority.directory.register_app("unbound-stranger")
    leg2 = FicLeg2Exchanger.create(stranger.client_id, stranger.tenant_id, cloud=authority.cloud)
    with pytest.raises(AuthorityError) as info:
        leg2.exchange_assertion_for_access_token(leg1.acquire_assertion(), GRAPH, use_pop=False,
                                                 bind_certificate=False)
    assert info.value.aadsts == 70021 and info.value.fix
    leg2.close()
