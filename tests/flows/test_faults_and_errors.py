"""Every fault kind of the authority -> documented behaviour, with a bounded number of requests.

Backoff is kept small through RetryPolicy parameters (the same code path as the defaults);
nothing in the protocol is patched.
"""

from __future__ import annotations

import uuid

import pytest

from mtlspop_lab.certs import Certificate
from mtlspop_lab.errors import (AuthorityError, ConfigurationError, ManagedIdentityError, TokenTypeMismatchError,
                                TransportError)
from mtlspop_lab.flows import (FicLeg1Acquirer, FicLeg2Exchanger, ManagedIdentityId, MtlsPopTokenAcquirer,
                               RetryPolicy)
from mtlspop_lab.flows.managed_identity import CREDENTIALS, IssuedCredential
from mtlspop_lab.inspector import check_binding
from mtlspop_lab.redact import contains_secret
from mtlspop_lab.transport import Transport

GRAPH = "https://graph.microsoft.com"
TOKEN_PATH = "/oauth2/v2.0/token"


def _cc(authority, name, retry, timeout=(2.0, 5.0)):
    app = authority.directory.register_app(name)
    acquirer = MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                            cloud=authority.cloud, retry=retry, timeout=timeout)
    return app, acquirer


def _token_attempts(result):
    return [t for t in result.round_trips if t.kind == "token"]


def test_429_with_retry_after_is_honoured(authority, fast_retry):
    app, acquirer = _cc(authority, "fault-429", fast_retry)
    authority.inject_fault("status", count=1, listener="mtls", status=429, retry_after=1)
    result = acquirer.acquire_token(GRAPH)
    attempts = _token_attempts(result)
    assert [t.status for t in attempts] == [429, 200]
    assert attempts[1].retry_delay_ms >= 1000          # waited Retry-After, not the 50 ms backoff cap
    assert authority.count_requests(path_contains=TOKEN_PATH, client_id=app.client_id) == 2


def test_429_longer_than_the_budget_fails_fast(authority):
    app, acquirer = _cc(authority, "fault-429-long", RetryPolicy(max_attempts=4, max_total_s=2))
    authority.inject_fault("status", count=5, listener="mtls", status=429, retry_after=30)
    with pytest.raises(AuthorityError) as info:
        acquirer.acquire_token(GRAPH)
    assert info.value.code == "throttled" and info.value.status == 429
    assert [t.retry_delay_ms for t in acquirer.round_trips if t.kind == "token"] == [0.0]   # no 30 s wait
    assert authority.count_requests(path_contains=TOKEN_PATH, client_id=app.client_id) == 1


def test_503_retried_then_success(authority, fast_retry):
    _, acquirer = _cc(authority, "fault-503", fast_retry)
    authority.inject_fault("status", count=2, listener="mtls", status=503)
    result = acquirer.acquire_token(GRAPH)
    assert [t.status for t in _token_attempts(result)] == [503, 503, 200]
    assert result.token_type == "mtls_pop"


def test_503_persisting_gives_a_clear_error_after_bounded_attempts(authority, fast_retry):
    app, acquirer = _cc(authority, "fault-503-long", fast_retry)
    authority.inject_fault("status", count=10, listener="mtls", status=503)
    with pytest.raises(AuthorityError) as info:
        acquirer.acquire_token(GRAPH)
    assert info.value.code == "service_unavailable" and "Retry later" in info.value.fix
    assert authority.count_requests(path_contains=TOKEN_PATH, client_id=app.client_id) == fast_retry.max_attempts


def test_slow_answer_times_out_and_is_retried(authority, fast_retry):
    _, acquirer = _cc(authority, "fault-slow", fast_retry, timeout=(2.0, 0.4))
    acquirer.acquire_token("https://storage.azure.com")          # discovery done, connection warm
    authority.inject_fault("slow", count=1, listener="mtls", delay_ms=1500)
    result = acquirer.acquire_token(GRAPH)
    assert [t.error for t in _token_attempts(result)] == ["read_timeout", None]


def test_slow_persisting_is_a_transport_error(authority, fast_retry):
    _, acquirer = _cc(authority, "fault-slow-long", fast_retry, timeout=(2.0, 0.3))
    acquirer.acquire_token("https://storage.azure.com")
    authority.inject_fault("slow", count=10, listener="mtls", delay_ms=800)
    with pytest.raises(TransportError) as info:
        acquirer.acquire_token(GRAPH)
    assert info.value.code == "read_timeout"
    assert len([t for t in acquirer.round_trips if t.error == "read_timeout"]) == fast_retry.max_attempts


def test_connection_reset_is_retried(authority, fast_retry):
    _, acquirer = _cc(authority, "fault-reset", fast_retry)
    authority.inject_fault("reset", count=1, listener="mtls")
    result = acquirer.acquire_token(GRAPH)
    assert [t.error for t in _token_attempts(result)] == ["connection_reset", None]


def test_malformed_json_is_retried_then_reported(authority, fast_retry):
    _, acquirer = _cc(authority, "fault-malformed", fast_retry)
    authority.inject_fault("malformed_json", count=1, listener="mtls")
    result = acquirer.acquire_token(GRAPH)
    assert [t.error for t in _token_attempts(result)] == ["malformed_json", None]
    authority.inject_fault("malformed_json", count=10, listener="mtls")
    with pytest.raises(AuthorityError) as info:
        acquirer.acquire_token("https://storage.azure.com")
    assert info.value.code == "malformed_response"


def test_bearer_downgrade_is_refused_and_not_cached(authority, fast_retry):
    app, acquirer = _cc(authority, "fault-downgrade", fast_retry)
    authority.inject_fault("bearer_downgrade", count=1, listener="mtls")
    with pytest.raises(TokenTypeMismatchError) as info:
        acquirer.acquire_token(GRAPH)
    assert info.value.code == "token_type_mismatch" and "mtls_pop" in info.value.message
    assert authority.count_requests(path_contains=TOKEN_PATH, client_id=app.client_id) == 1          # not retried
    result = acquirer.acquire_token(GRAPH)                                  # nothing wrong was cached
    assert result.source == "identity_provider" and check_binding(result.access_token,
                                                                  result.binding_certificate).bound


def test_valid_cached_token_served_while_the_authority_fails(authority, fast_retry):
    app, acquirer = _cc(authority, "fault-fallback", fast_retry)
    authority.set_token_lifetime(200)                     # inside msal's 5-minute refresh margin
    first = acquirer.acquire_token(GRAPH)
    authority.clear_trace()
    authority.inject_fault("status", count=10, listener="mtls", status=503)
    second = acquirer.acquire_token(GRAPH)
    assert second.source == "cache" and second.access_token == first.access_token
    assert authority.count_requests(path_contains=TOKEN_PATH, client_id=app.client_id) == fast_retry.max_attempts
    authority.clear_faults()
    third = acquirer.acquire_token(GRAPH)                 # the authority is back: refreshed
    assert third.source == "identity_provider" and third.access_token != first.access_token


# -- managed identity -------------------------------------------------------------------------
@pytest.mark.parametrize("use_pop", [False, True])
def test_imds_absent(authority, fast_retry, use_pop):
    authority.set_imds_mode("absent")
    acquirer = MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.system_assigned(),
                                                         cloud=authority.cloud, retry=fast_retry)
    with pytest.raises(ManagedIdentityError) as info:
        acquirer.acquire_token(GRAPH, use_pop=use_pop)
    assert info.value.code == "imds_unreachable" and "Azure" in info.value.cause
    assert [t.error for t in acquirer.round_trips] == ["connection_refused"]   # not retried


def test_imds_v1_only_host(authority, fast_retry):
    authority.set_imds_mode("v1_only")
    acquirer = MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.system_assigned(),
                                                         cloud=authority.cloud, retry=fast_retry)
    with pytest.raises(ManagedIdentityError) as info:
        acquirer.acquire_token(GRAPH, use_pop=True)
    assert info.value.code == "mtls_pop_token_not_supported_in_imds_v1" and "use_pop=False" in info.value.fix
    assert authority.count_requests(path_contains="getplatformmetadata") == 1
    assert acquirer.acquire_token(GRAPH, use_pop=False).token_type == "Bearer"     # v1 still serves Bearer


def test_imds_faults_are_retried(authority, fast_retry):
    acquirer = MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.system_assigned(),
                                                         cloud=authority.cloud, retry=fast_retry)
    authority.inject_fault("status", count=1, listener="imds", status=503)
    assert acquirer.acquire_token(GRAPH, use_pop=False).token_type == "Bearer"
    authority.inject_fault("reset", count=1, listener="imds")
    result = acquirer.acquire_token(GRAPH, use_pop=True)
    assert result.token_type == "mtls_pop"
    assert [t.error for t in result.round_trips][:2] == ["connection_reset", None]


@pytest.mark.parametrize("use_pop", [False, True])
def test_uami_not_assigned(authority, fast_retry, use_pop):
    stranger = ManagedIdentityId.user_assigned_client_id(str(uuid.uuid4()))
    acquirer = MtlsPopTokenAcquirer.for_managed_identity(stranger, cloud=authority.cloud, retry=fast_retry)
    with pytest.raises(ManagedIdentityError) as info:
        acquirer.acquire_token(GRAPH, use_pop=use_pop)
    assert info.value.code == "identity_not_assigned"
    assert "resource id" in info.value.fix and "assigned" in info.value.cause


def test_managed_identity_remints_once_on_invalid_client(authority, fast_retry):
    """A certificate the token service does not know (revoked, or issued elsewhere) is replaced once."""
    identity = ManagedIdentityId.system_assigned()
    acquirer = MtlsPopTokenAcquirer.for_managed_identity(identity, cloud=authority.cloud, retry=fast_retry)
    good = acquirer.acquire_token(GRAPH)
    issued = CREDENTIALS.get(acquirer._flow._store_key)
    rogue = Certificate.create_self_signed("CN=" + issued.client_id)
    authority.trust_client_certificate(rogue)             # TLS passes; the token service must refuse it
    CREDENTIALS.put(acquirer._flow._store_key, IssuedCredential(
        rogue, issued.client_id, issued.tenant_id, issued.mtls_endpoint, issued.identity_type,
        Transport(certificate=rogue, ca_bundle=authority.ca_bundle)))
    authority.clear_trace()
    result = acquirer.acquire_token("https://vault.azure.net")
    statuses = [(t.kind, t.status) for t in result.round_trips]
    assert statuses == [("token", 401), ("getplatformmetadata", 200), ("issuecredential", 200), ("token", 200)]
    assert result.binding_certificate not in (rogue.public_only(), good.binding_certificate)
    assert check_binding(result.access_token, result.binding_certificate).bound


# -- the seed's troubleshooting list, as errors ------------------------------------------------
def test_unknown_application(authority, fast_retry):
    stranger = Certificate.create_self_signed("CN=stranger")
    authority.trust_client_certificate(stranger)
    acquirer = MtlsPopTokenAcquirer.for_confidential_client(str(uuid.uuid4()), authority.tenant_id, stranger,
                                                            cloud=authority.cloud, retry=fast_retry)
    with pytest.raises(AuthorityError) as info:
        acquirer.acquire_token(GRAPH, use_pop=False)
    assert info.value.code == "application_not_found" and info.value.aadsts == 700016


def test_unknown_tenant(authority, fast_retry):
    app = authority.directory.register_app("wrong-tenant")
    acquirer = MtlsPopTokenAcquirer.for_confidential_client(app.client_id, str(uuid.uuid4()), app.certificate,
                                                            cloud=authority.cloud, retry=fast_retry)
    with pytest.raises(AuthorityError) as info:
        acquirer.acquire_token(GRAPH)
    assert info.value.code == "tenant_not_found" and "tenant" in info.value.fix


def test_certificate_not_registered(authority, fast_retry, attacker_certificate):
    app = authority.directory.register_app("unregistered-cert")
    acquirer = MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, attacker_certificate,
                                                            cloud=authority.cloud, retry=fast_retry)
    with pytest.raises(AuthorityError) as info:
        acquirer.acquire_token(GRAPH)
    assert info.value.code == "certificate_not_registered" and "Upload" in info.value.fix
    authority.directory.add_certificate(app, attacker_certificate)        # fixed: works at once
    assert acquirer.acquire_token(GRAPH).token_type == "mtls_pop"


def test_resource_without_bound_token_support(authority, fast_retry):
    _, acquirer = _cc(authority, "legacy-resource", fast_retry)
    with pytest.raises(AuthorityError) as info:
        acquirer.acquire_token("https://legacy.contoso.example")
    assert info.value.aadsts == 392196 and "use_pop=False" in info.value.fix
    assert acquirer.acquire_token("https://legacy.contoso.example", use_pop=False).token_type == "Bearer"


def test_fic_without_federated_credential(authority, fast_retry):
    d = authority.directory
    leg1_app, leg2_app = d.register_app("nofic-leg1"), d.register_app("nofic-leg2")
    assertion = FicLeg1Acquirer.for_confidential_client(leg1_app.client_id, leg1_app.tenant_id,
                                                        leg1_app.certificate, cloud=authority.cloud).acquire_assertion()
    leg2 = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud, retry=fast_retry)
    with pytest.raises(AuthorityError) as info:
        leg2.exchange_assertion_for_access_token(assertion, GRAPH)
    assert info.value.code == "no_matching_federated_credential" and "federated" in info.value.fix


def test_fic_leg2_with_the_wrong_certificate(authority, fast_retry, attacker_certificate):
    d = authority.directory
    leg1_app, leg2_app = d.register_app("mismatch-leg1"), d.register_app("mismatch-leg2")
    d.add_federated_credential(leg2_app, trusted=leg1_app)
    assertion = FicLeg1Acquirer.for_confidential_client(leg1_app.client_id, leg1_app.tenant_id,
                                                        leg1_app.certificate, cloud=authority.cloud).acquire_assertion()
    leg2 = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud,
                                   certificate=attacker_certificate, retry=fast_retry)
    with pytest.raises(AuthorityError) as info:
        leg2.exchange_assertion_for_access_token(assertion.access_token, GRAPH)
    assert info.value.code == "tls_certificate_mismatch" and info.value.aadsts == 500181
    with pytest.raises(ConfigurationError):                # the result object carries its own certificate
        leg2.exchange_assertion_for_access_token(assertion, GRAPH)


def test_pop_not_requested_is_explained(authority, fast_retry):
    _, acquirer = _cc(authority, "bearer-only", fast_retry)
    result = acquirer.acquire_token(GRAPH, use_pop=False)
    with pytest.raises(ConfigurationError) as info:
        result.require_binding()
    assert info.value.code == "pop_not_requested" and "use_pop=True" in info.value.fix
    leg2 = FicLeg2Exchanger.create(str(uuid.uuid4()), authority.tenant_id, cloud=authority.cloud)
    with pytest.raises(ConfigurationError) as info:
        leg2.exchange_assertion_for_access_token(result, GRAPH)
    assert info.value.code == "pop_not_requested"


def test_errors_and_traces_carry_no_secret(authority, fast_retry, attacker_certificate):
    d = authority.directory
    leg1_app, leg2_app = d.register_app("secret-leg1"), d.register_app("secret-leg2")
    assertion = FicLeg1Acquirer.for_confidential_client(leg1_app.client_id, leg1_app.tenant_id,
                                                        leg1_app.certificate, cloud=authority.cloud).acquire_assertion()
    leg2 = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud, retry=fast_retry)
    with pytest.raises(AuthorityError) as info:
        leg2.exchange_assertion_for_access_token(assertion, GRAPH)
    texts = [str(info.value), repr(info.value), str(info.value.as_dict()), repr(assertion),
             *(str(t) for t in leg2.round_trips), *(str(t.as_dict()) for t in leg2.round_trips)]
    for text in texts:
        assert assertion.access_token not in text and not contains_secret(text)
