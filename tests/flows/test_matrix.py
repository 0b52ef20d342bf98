"""The full matrix on the embedded authority: every identity, vanilla Bearer and PoP, and the four FIC combos."""

from __future__ import annotations

import pytest

from mtlspop_lab.errors import ResourceAccessError
from mtlspop_lab.flows import FicLeg1Acquirer, FicLeg2Exchanger, ManagedIdentityId, MtlsPopTokenAcquirer, call_resource
from mtlspop_lab.inspector import check_binding, decode_token

GRAPH = "https://graph.microsoft.com"


def _mi(authority, kind):
    d = authority.directory
    if kind == "system_assigned":
        return ManagedIdentityId.system_assigned(), d.system_assigned
    record = d.user_assigned[0]
    return ManagedIdentityId.from_record(record, kind), record


def _assert_pop_works(authority, result, attacker):
    assert result.token_type == "mtls_pop"
    verdict = check_binding(result.access_token, result.binding_certificate)
    assert verdict.bound, verdict.reason
    assert decode_token(result.access_token).claims["cnf"]["x5t#S256"] == result.binding_certificate.x5t_s256
    assert not result.binding_certificate.has_private_key           # the public part only, for display
    answer = call_resource(authority.resource_url, result)
    assert answer.status_code == 200 and answer.json()["x5t#S256"] == result.binding_certificate.x5t_s256
    with pytest.raises(ResourceAccessError) as refused:           # stolen token, other certificate
        call_resource(authority.resource_url, result, certificate=attacker)
    assert refused.value.status == 401 and refused.value.code == "certificate_mismatch"
    with pytest.raises(ResourceAccessError):                      # bound token sent as Bearer
        call_resource(authority.resource_url, result, scheme="Bearer")


@pytest.mark.parametrize("kind", ["system_assigned", "client_id", "resource_id", "object_id"])
@pytest.mark.parametrize("use_pop", [False, True], ids=["bearer", "pop"])
def test_managed_identity_vanilla(authority, attacker_certificate, kind, use_pop):
    identity, record = _mi(authority, kind)
    with MtlsPopTokenAcquirer.for_managed_identity(identity, cloud=authority.cloud) as acquirer:
        result = acquirer.acquire_token(GRAPH, use_pop=use_pop)
        claims = decode_token(result.access_token).claims
        assert claims["oid"] == record.object_id and claims["aud"] == GRAPH
        assert result.source == "identity_provider" and result.flow == "vanilla"
        kinds = [t.kind for t in result.round_trips]
        if use_pop:
            assert kinds == ["getplatformmetadata", "issuecredential", "token"]
            assert result.binding_certificate == acquirer.certificate
            _assert_pop_works(authority, result, attacker_certificate)
        else:
            assert kinds == ["imds_token"] and result.token_type == "Bearer"
            assert result.binding_certificate is None and "cnf" not in claims
            assert call_resource(authority.resource_url, result).json()["scheme"] == "Bearer"
        before = authority.count_requests()
        again = acquirer.acquire_token(GRAPH, use_pop=use_pop)
        assert again.source == "cache" and again.round_trips == ()
        assert again.access_token == result.access_token
        assert authority.count_requests() == before                 # nothing reached the authority


@pytest.mark.parametrize("use_pop", [False, True], ids=["bearer", "pop"])
def test_confidential_client_vanilla(authority, attacker_certificate, use_pop):
    app = authority.directory.register_app("matrix-cc")
    with MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                      cloud=authority.cloud) as acquirer:
        result = acquirer.acquire_token(GRAPH, use_pop=use_pop)
        assert [t.kind for t in result.round_trips] == ["discovery", "token"]
        entry = [e for e in authority.trace if e.grant_type == "client_credentials"][-1]
        if use_pop:
            assert entry.listener == "mtls" and entry.client_cert_x5t == app.certificate.x5t_s256
            assert result.binding_certificate == app.certificate.public_only()
            assert result.binding_certificate_info()["thumbprint_sha256"] == app.certificate.x5t_s256
            _assert_pop_works(authority, result, attacker_certificate)
        else:
            assert entry.listener == "login" and result.token_type == "Bearer"
            assert result.binding_certificate is None
        before = authority.count_requests()
        assert acquirer.acquire_token(GRAPH, use_pop=use_pop).source == "cache"
        assert authority.count_requests() == before


def test_confidential_client_regional_endpoint(authority):
    app = authority.directory.register_app("matrix-regional")
    with MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                      cloud=authority.cloud, region="westus3") as acquirer:
        assert acquirer.acquire_token(GRAPH).token_type == "mtls_pop"
    assert authority.count_requests(listener="mtls:westus3", path_contains="/oauth2/v2.0/token") == 1
    assert authority.count_requests(listener="mtls", path_contains="/oauth2/v2.0/token") == 0


@pytest.mark.parametrize("leg1_kind", ["managed_identity", "confidential_client"])
@pytest.mark.parametrize("use_pop", [False, True], ids=["leg2-bearer", "leg2-pop"])
def test_fic_two_leg(authority, attacker_certificate, leg1_kind, use_pop):
    d = authority.directory
    leg2_app = d.register_app("fic-leg2")
    if leg1_kind == "managed_identity":
        identity = ManagedIdentityId.user_assigned_client_id(d.user_assigned[1].client_id)
        d.add_federated_credential(leg2_app, trusted=identity)
        leg1 = FicLeg1Acquirer.for_managed_identity(identity, cloud=authority.cloud)
    else:
        leg1_app = d.register_app("fic-leg1")
        d.add_federated_credential(leg2_app, trusted=leg1_app)
        leg1 = FicLeg1Acquirer.for_confidential_client(leg1_app.client_id, leg1_app.tenant_id,
                                                      leg1_app.certificate, cloud=authority.cloud)
    assertion = leg1.acquire_assertion()
    assert assertion.token_type == "mtls_pop" and assertion.flow == "fic_leg1"
    assert decode_token(assertion.access_token).claims["aud"] == "api://AzureADTokenExchange"
    leg2 = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud)
    final = leg2.exchange_assertion_for_access_token(assertion, GRAPH, use_pop=use_pop)
    claims = decode_token(final.access_token).claims
    assert claims["appid"] == leg2_app.client_id and final.flow == "fic_leg2"
    token_requests = [e for e in authority.trace if e.grant_type == "client_credentials"]
    leg2_entry = token_requests[-1]
    # leg 2 always travels over mTLS with leg 1's certificate, as a jwt-pop assertion
    assert leg2_entry.listener == "mtls" and leg2_entry.client_cert_x5t == assertion.binding_certificate.x5t_s256
    assert "jwt-pop" in leg2_entry.request_body
    if use_pop:
        assert final.binding_certificate == assertion.binding_certificate
        _assert_pop_works(authority, final, attacker_certificate)
    else:
        assert final.token_type == "Bearer" and final.binding_certificate is None and "cnf" not in claims
        assert call_resource(authority.resource_url, final).status_code == 200
    before = authority.count_requests()
    assert leg2.exchange_assertion_for_access_token(assertion, GRAPH, use_pop=use_pop).source == "cache"
    assert leg1.acquire_assertion().source == "cache"
    assert authority.count_requests() == before
    leg1.close(), leg2.close()


def test_leg2_with_bare_string_needs_the_certificate(authority):
    d = authority.directory
    leg1_app, leg2_app = d.register_app("bare-leg1"), d.register_app("bare-leg2")
    d.add_federated_credential(leg2_app, trusted=leg1_app)
    assertion = FicLeg1Acquirer.for_confidential_client(
        leg1_app.client_id, leg1_app.tenant_id, leg1_app.certificate, cloud=authority.cloud).acquire_assertion()
    from mtlspop_lab.errors import CertificateError
    with pytest.raises(CertificateError) as info:
        FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud
                                ).exchange_assertion_for_access_token(assertion.access_token, GRAPH)
    assert info.value.code == "mtls_certificate_not_provided"
    final = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud,
                                    certificate=leg1_app.certificate
                                    ).exchange_assertion_for_access_token(assertion.access_token, GRAPH)
    assert check_binding(final.access_token, leg1_app.certificate).bound
