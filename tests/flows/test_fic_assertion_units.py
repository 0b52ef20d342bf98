"""Bad input around the assertion helpers and external tokens: typed errors, no secret in reprs."""

from __future__ import annotations

import pytest
import requests

from mtlspop_lab.errors import ConfigurationError
from mtlspop_lab.flows import ClientSignedAssertion, FicAssertionProvider, FicLeg1Acquirer
from mtlspop_lab.redact import contains_secret


@pytest.fixture(scope="module")
def generic(authority):
    return authority.add_external_issuer("generic", name="units-generic")


def test_external_token_sources_refuse_what_is_not_a_jwt(generic):
    for source in (lambda: "not a token", lambda: None, lambda: "a.b"):
        with pytest.raises(ConfigurationError) as info:
            FicLeg1Acquirer.from_external_token(source).acquire_assertion()
        assert info.value.code == "invalid_assertion" and info.value.fix
    with pytest.raises(ConfigurationError) as info:
        FicLeg1Acquirer.from_external_token(lambda: "e30.!!!.sig").acquire_assertion()
    assert info.value.code == "invalid_assertion"
    with pytest.raises(ConfigurationError):
        FicLeg1Acquirer()
    token = generic.issue_token("job", team="blue")
    leg1 = FicLeg1Acquirer.from_external_token(token)
    assert leg1.acquire_assertion().access_token == token and "job" in leg1.identity


def test_client_signed_assertion_never_shows_the_token(generic):
    token = generic.issue_token("job")
    for value in (ClientSignedAssertion(token), repr(ClientSignedAssertion(token))):
        assert token not in repr(value) and not contains_secret(repr(value))
    with pytest.raises(ConfigurationError):
        FicAssertionProvider(token)


def test_issuer_endpoint_refuses_other_methods_and_bad_tokens(authority, generic):
    with requests.Session() as session:
        session.trust_env = False
        answer = session.post(generic.discovery_url, verify=authority.ca_bundle)
    assert answer.status_code == 405
    for bad in (lambda: generic.issue_token(""), lambda: generic.issue_token("x", audience=""),
                lambda: generic.issue_token("x", lifetime_s=True)):
        with pytest.raises(ConfigurationError):
            bad()
