"""Force refresh (MSAL.NET's WithForceRefresh): bypass a fresh cached token, once, for every leg."""

from __future__ import annotations

import threading

import pytest

from mtlspop_lab.flows import FicLeg1Acquirer, FicLeg2Exchanger, ManagedIdentityId, MtlsPopTokenAcquirer
from mtlspop_lab.inspector import check_binding

GRAPH = "https://graph.microsoft.com"
TOKEN_PATH = "/oauth2/v2.0/token"


def _cc(authority, app):
    return MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                        cloud=authority.cloud)


@pytest.mark.parametrize("use_pop", [True, False])
def test_confidential_client_force_refresh_asks_again_and_replaces_the_cached_token(authority, use_pop):
    app = authority.directory.register_app(f"force-refresh-{use_pop}")
    with _cc(authority, app) as acquirer:
        first = acquirer.acquire_token(GRAPH, use_pop=use_pop)
        assert acquirer.acquire_token(GRAPH, use_pop=use_pop).source == "cache"
        before = authority.count_requests(path_contains=TOKEN_PATH, client_id=app.client_id)
        forced = acquirer.acquire_token(GRAPH, use_pop=use_pop, force_refresh=True)
        assert forced.source == "identity_provider"
        assert authority.count_requests(path_contains=TOKEN_PATH, client_id=app.client_id) == before + 1
        assert forced.access_token != first.access_token
        again = acquirer.acquire_token(GRAPH, use_pop=use_pop)        # the cache now holds the new one
        assert again.source == "cache" and again.access_token == forced.access_token
        assert forced.token_type == ("mtls_pop" if use_pop else "Bearer")
        if use_pop:
            assert check_binding(forced.access_token, app.certificate).bound


@pytest.mark.parametrize("use_pop", [True, False])
def test_managed_identity_force_refresh_keeps_the_certificate_and_gets_a_new_token(authority, use_pop):
    mi = ManagedIdentityId.user_assigned_client_id(authority.directory.user_assigned[0].client_id)
    with MtlsPopTokenAcquirer.for_managed_identity(mi, cloud=authority.cloud) as acquirer:
        first = acquirer.acquire_token(GRAPH, use_pop=use_pop)
        authority.clear_trace()
        forced = acquirer.acquire_token(GRAPH, use_pop=use_pop, force_refresh=True)
        assert forced.source == "identity_provider" and forced.access_token != first.access_token
        assert authority.count_requests(path_contains="issuecredential") == 0     # no re-mint
        assert len(authority.trace) == 1
        assert acquirer.acquire_token(GRAPH, use_pop=use_pop).access_token == forced.access_token
        if use_pop:
            assert forced.binding_certificate == first.binding_certificate


def test_concurrent_forced_calls_share_one_request(authority):
    app = authority.directory.register_app("force-refresh-single-flight")
    acquirer = _cc(authority, app)
    cached = acquirer.acquire_token(GRAPH)             # a fresh token is cached
    authority.clear_trace()
    authority.set_delay(40, listener="all")            # keep the forced flight open while others arrive
    barrier = threading.Barrier(20)
    results, errors = [], []

    def worker():
        barrier.wait()
        try:
            results.append(acquirer.acquire_token(GRAPH, force_refresh=True))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    acquirer.close()
    assert not errors
    assert authority.count_requests(path_contains=TOKEN_PATH, client_id=app.client_id) == 1
    tokens = {r.access_token for r in results}
    assert len(tokens) == 1 and cached.access_token not in tokens
    assert [r.source for r in results].count("identity_provider") == 1


def test_failed_force_refresh_raises_instead_of_serving_the_old_token(authority):
    app = authority.directory.register_app("force-refresh-failure")
    with _cc(authority, app) as acquirer:
        acquirer.acquire_token(GRAPH)
        authority.inject_fault("status", count=10, status=400, listener="mtls")
        from mtlspop_lab.errors import AuthorityError
        with pytest.raises(AuthorityError) as info:
            acquirer.acquire_token(GRAPH, force_refresh=True)
        assert info.value.status == 400
        authority.clear_faults()
        assert acquirer.acquire_token(GRAPH).source == "cache"      # the old entry is still there


def test_fic_legs_force_refresh(authority):
    leg1_app = authority.directory.register_app("force-leg1")
    leg2_app = authority.directory.register_app("force-leg2")
    authority.directory.add_federated_credential(leg2_app, trusted=leg1_app)
    leg1 = FicLeg1Acquirer.for_confidential_client(leg1_app.client_id, leg1_app.tenant_id,
                                                   leg1_app.certificate, cloud=authority.cloud)
    leg2 = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud)
    try:
        a1 = leg1.acquire_assertion()
        a2 = leg1.acquire_assertion(force_refresh=True)
        assert a2.source == "identity_provider" and a2.access_token != a1.access_token
        assert leg1.acquire_assertion().access_token == a2.access_token
        t1 = leg2.exchange_assertion_for_access_token(a2, GRAPH)
        assert leg2.exchange_assertion_for_access_token(a2, GRAPH).source == "cache"
        before = authority.count_requests(path_contains=TOKEN_PATH, client_id=leg2_app.client_id)
        t2 = leg2.exchange_assertion_for_access_token(a2, GRAPH, force_refresh=True)
        assert t2.source == "identity_provider" and t2.access_token != t1.access_token
        assert authority.count_requests(path_contains=TOKEN_PATH, client_id=leg2_app.client_id) == before + 1
        assert check_binding(t2.access_token, a2.binding_certificate).bound
    finally:
        leg1.close()
        leg2.close()


def test_rfc8705_client_force_refresh(authority):
    from mtlspop_lab.cloud import Cloud
    from mtlspop_lab.flows.rfc8705 import CertificateBoundClient
    app = authority.directory.register_app("force-rfc8705")
    # the generic RFC 8705 document (Entra's own publishes no mtls_endpoint_aliases)
    cloud = Cloud.from_discovery(f"{authority.issuer}/.well-known/oauth-authorization-server",
                                 ca_bundle=authority.ca_bundle)
    with CertificateBoundClient(app.client_id, app.certificate, cloud=cloud) as client:
        first = client.acquire_token(scopes=[f"{GRAPH}/.default"])
        assert client.acquire_token(scopes=[f"{GRAPH}/.default"]).source == "cache"
        forced = client.acquire_token(scopes=[f"{GRAPH}/.default"], force_refresh=True)
        assert forced.source == "identity_provider" and forced.access_token != first.access_token
        assert client.acquire_token(scopes=[f"{GRAPH}/.default"]).access_token == forced.access_token
