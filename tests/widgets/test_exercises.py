"""The notebooks' self-checking exercises: each check says right for the right answer, and
"not yet" with a reason for wrong ones (wrong type, wrong resource, Bearer, wrong error...)."""

from __future__ import annotations

import base64
import hashlib

import pytest

import mtlspop_lab as lab
from mtlspop_lab.redact import contains_secret
from mtlspop_lab.workshop import exercises

VAULT = "https://vault.azure.net"


@pytest.fixture(scope="module")
def app(authority):
    return authority.directory.register_app("exercise-app")


def confidential(authority, app):
    return lab.MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                            cloud=authority.cloud)


def uami_acquirer(authority):
    uami = authority.directory.user_assigned[0]
    return lab.MtlsPopTokenAcquirer.for_managed_identity(
        lab.ManagedIdentityId.user_assigned_client_id(uami.client_id), cloud=authority.cloud)


def shown(check) -> str:
    return str(check) + check._repr_html_()


def test_the_front_door_exposes_the_exercises():
    assert lab.exercises is exercises
    assert set(exercises.EXERCISES) == {"01_vanilla", "02_fic_two_leg", "03_binding_and_replay",
                                        "04_latency_and_cache", "05_troubleshooting"}


@pytest.mark.parametrize("wrong", [None, "a string", 42, {"access_token": "x"}])
def test_every_check_answers_any_input_without_raising(wrong):
    for checks in exercises.EXERCISES.values():
        for check in checks:
            args = (wrong, None) if check.__code__.co_argcount == 2 else (wrong,)
            result = check(*args)
            assert isinstance(result, exercises.Check) and not result and result.title


def test_vault_token_right_and_wrong(authority, app):
    acquirer = uami_acquirer(authority)
    right = exercises.check_vault_token(acquirer.acquire_token(VAULT, use_pop=True))
    assert right and "mtlspop-exercise-passed" in right._repr_html_()
    graph = exercises.check_vault_token(acquirer.acquire_token("https://graph.microsoft.com"))
    assert not graph and "not for Key Vault" in graph.title
    bearer = exercises.check_vault_token(acquirer.acquire_token(VAULT, use_pop=False))
    assert not bearer and "Bearer" in bearer.title
    other = exercises.check_vault_token(confidential(authority, app).acquire_token(VAULT))
    assert not other and "user-assigned" in other.title
    sami = lab.MtlsPopTokenAcquirer.for_managed_identity(lab.ManagedIdentityId.system_assigned(),
                                                         cloud=authority.cloud)
    assert not exercises.check_vault_token(sami.acquire_token(VAULT))
    acquirer.close()
    sami.close()


def test_thumbprint_right_and_named_mistakes(app):
    cert = app.certificate
    digest = hashlib.sha256(cert.der).digest()
    right = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert exercises.check_thumbprint(right, cert)
    padded = exercises.check_thumbprint(right + "=", cert)
    assert not padded and "padding" in padded.title
    hexed = exercises.check_thumbprint(digest.hex(), cert)
    assert not hexed and "hex" in hexed.title
    sha1 = base64.urlsafe_b64encode(hashlib.sha1(cert.der).digest()).rstrip(b"=").decode()
    assert "SHA-1" in exercises.check_thumbprint(sha1, cert).title
    assert not exercises.check_thumbprint("x" * 43, cert)
    assert not exercises.check_thumbprint(right, None)


def test_fic_exchange_right_and_wrong(authority):
    mi = lab.ManagedIdentityId.system_assigned()
    leg2_app = authority.directory.register_app("exercise-leg2")
    authority.directory.add_federated_credential(leg2_app, trusted=mi)
    leg1 = lab.FicLeg1Acquirer.for_managed_identity(mi, cloud=authority.cloud)
    leg2 = lab.FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud)
    assertion = leg1.acquire_assertion()
    assert exercises.check_fic_exchange(leg2.exchange_assertion_for_access_token(assertion, VAULT), assertion)
    graph = exercises.check_fic_exchange(leg2.exchange_assertion_for_access_token(assertion, lab.cloud.GRAPH),
                                         assertion)
    assert not graph and "Key Vault" in graph.title
    bearer = exercises.check_fic_exchange(
        leg2.exchange_assertion_for_access_token(assertion, VAULT, use_pop=False), assertion)
    assert not bearer and "Bearer" in bearer.title
    assert "leg-2 exchange" in exercises.check_fic_exchange(assertion, assertion).title
    leg1.close()
    leg2.close()


def test_replay_refused_right_and_wrong(authority, app):
    acquirer = confidential(authority, app)
    token = acquirer.acquire_token("https://graph.microsoft.com")
    attacker = lab.Certificate.create_self_signed("CN=exercise attacker")
    authority.trust_client_certificate(attacker)
    with pytest.raises(lab.ResourceAccessError) as replay:
        lab.call_resource(authority.resource_url, token, certificate=attacker)
    assert exercises.check_replay_refused(replay.value)
    with pytest.raises(lab.ResourceAccessError) as scheme:
        lab.call_resource(authority.resource_url, token, scheme="Bearer")
    wrong = exercises.check_replay_refused(scheme.value)
    assert not wrong and "another reason" in wrong.title
    assert not exercises.check_replay_refused(ValueError("x"))
    assert not shown(exercises.check_replay_refused(None)) == ""
    acquirer.close()


def test_cache_hit_and_round_trips(authority, app):
    acquirer = confidential(authority, app)
    first = acquirer.acquire_token(VAULT)
    assert not exercises.check_cache_hit(first) and "identity provider" in exercises.check_cache_hit(first).title
    assert exercises.check_cache_hit(acquirer.acquire_token(VAULT))
    assert exercises.check_round_trip_count(2)
    assert not exercises.check_round_trip_count(1) and not exercises.check_round_trip_count("2")
    assert not exercises.check_round_trip_count(True)
    acquirer.close()


def test_missing_federated_credential_right_and_wrong(authority, app):
    mi = lab.ManagedIdentityId.system_assigned()
    stranger = authority.directory.register_app("exercise-stranger")
    leg1 = lab.FicLeg1Acquirer.for_managed_identity(mi, cloud=authority.cloud)
    leg2 = lab.FicLeg2Exchanger.create(stranger.client_id, stranger.tenant_id, cloud=authority.cloud)
    with pytest.raises(lab.AuthorityError) as refused:
        leg2.exchange_assertion_for_access_token(leg1.acquire_assertion(), VAULT)
    right = exercises.check_missing_federated_credential(refused.value)
    assert right and "AADSTS70021" in right.title and not contains_secret(shown(right))
    assert not exercises.check_missing_federated_credential(lab.ConfigurationError("x"))
    wrong = exercises.check_missing_federated_credential(lab.AuthorityError("x", aadsts=700016, error="unauthorized_client"))
    assert not wrong and "AADSTS700016" in wrong.title
    leg1.close()
    leg2.close()
