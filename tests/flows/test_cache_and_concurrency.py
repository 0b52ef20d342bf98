"""Cache isolation, the raw-msal pitfall, certificate rotation, single flight and parallelism."""

from __future__ import annotations

import datetime as dt
import threading

import msal
import pytest

from mtlspop_lab.certs import Certificate
from mtlspop_lab.flows import ManagedIdentityId, MtlsPopTokenAcquirer
from mtlspop_lab.flows.confidential import certificate_credential
from mtlspop_lab.inspector import check_binding, decode_token
from mtlspop_lab.transport import Transport

GRAPH = "https://graph.microsoft.com"
VAULT = "https://vault.azure.net"


def _cc(authority, app, **kwargs):
    return MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                        cloud=authority.cloud, **kwargs)


def test_bearer_and_pop_never_share_cache_entries(authority):
    app = authority.directory.register_app("isolation")
    with _cc(authority, app) as acquirer:
        pop = acquirer.acquire_token(GRAPH, use_pop=True)
        bearer = acquirer.acquire_token(GRAPH, use_pop=False)          # PoP cached: still a miss
        assert bearer.source == "identity_provider" and bearer.token_type == "Bearer"
        assert "cnf" not in decode_token(bearer.access_token).claims
        assert acquirer.acquire_token(GRAPH, use_pop=True).access_token == pop.access_token
        assert acquirer.acquire_token(GRAPH, use_pop=False).access_token == bearer.access_token
        # and the other order, on a fresh acquirer
    with _cc(authority, app) as acquirer:
        bearer = acquirer.acquire_token(VAULT, use_pop=False)
        pop = acquirer.acquire_token(VAULT, use_pop=True)
        assert pop.source == "identity_provider" and pop.token_type == "mtls_pop"
        assert check_binding(pop.access_token, app.certificate).bound


def test_raw_msal_serves_a_pop_token_to_a_bearer_request_but_the_lab_does_not(authority):
    """msal 1.39 caches a PoP token under the same key as Bearer (only key_id, if given, narrows it)."""
    app = authority.directory.register_app("raw-msal-pitfall")
    transport = Transport(certificate=app.certificate, ca_bundle=authority.ca_bundle)
    raw = msal.ConfidentialClientApplication(
        app.client_id, client_credential=certificate_credential(app.certificate),
        authority=f"{authority.mtls_url}/{app.tenant_id}", instance_discovery=False, http_client=transport)
    scopes = [f"{GRAPH}/.default"]
    pop = raw.acquire_token_for_client(scopes, data={"token_type": "mtls_pop", "key_id": app.certificate.x5t_s256})
    assert pop["token_type"] == "mtls_pop"
    before = authority.count_requests()
    plain = raw.acquire_token_for_client(scopes)                         # asks for a Bearer token...
    assert plain["token_source"] == "cache" and authority.count_requests() == before
    assert plain["access_token"] == pop["access_token"]                   # ...and gets the bound one
    assert "cnf" in decode_token(plain["access_token"]).claims
    transport.close()

    with _cc(authority, app) as acquirer:                                # the lab, same sequence
        lab_pop = acquirer.acquire_token(GRAPH, use_pop=True)
        lab_plain = acquirer.acquire_token(GRAPH, use_pop=False)
        assert lab_plain.access_token != lab_pop.access_token
        assert lab_plain.source == "identity_provider" and "cnf" not in decode_token(lab_plain.access_token).claims


def test_certificate_rotation_gets_a_fresh_token_and_never_the_old_one(authority):
    app = authority.directory.register_app("rotation")
    new_cert = Certificate.create_self_signed("CN=rotation-2")
    authority.directory.add_certificate(app, new_cert)
    with _cc(authority, app) as acquirer:
        first = acquirer.acquire_token(GRAPH)
        acquirer.rotate_certificate(new_cert)
        second = acquirer.acquire_token(GRAPH)
        assert second.source == "identity_provider" and second.access_token != first.access_token
        assert second.binding_certificate.x5t_s256 == new_cert.x5t_s256
        assert check_binding(second.access_token, new_cert).bound
        assert not check_binding(second.access_token, app.certificate).bound
        acquirer.rotate_certificate(app.certificate)                     # back to A: A's entry is still valid
        assert acquirer.acquire_token(GRAPH).access_token == first.access_token


def test_managed_identity_certificate_reuse_and_renewal(authority):
    identity = ManagedIdentityId.system_assigned()
    with MtlsPopTokenAcquirer.for_managed_identity(identity, cloud=authority.cloud) as acquirer:
        first = acquirer.acquire_token(GRAPH)
        second = acquirer.acquire_token(VAULT)                           # cert reused: one token request
        assert [t.kind for t in second.round_trips] == ["token"]
        assert second.binding_certificate == first.binding_certificate
    # A certificate with less than the minimum lifetime left is not reused (IMDS issues 7 days).
    with MtlsPopTokenAcquirer.for_managed_identity(identity, cloud=authority.cloud,
                                                   min_certificate_lifetime=dt.timedelta(days=8)) as acquirer:
        renewed = acquirer.acquire_token(GRAPH)
        assert renewed.source == "identity_provider"
        assert renewed.binding_certificate != first.binding_certificate
        assert [t.kind for t in renewed.round_trips] == ["getplatformmetadata", "issuecredential", "token"]
        assert check_binding(renewed.access_token, renewed.binding_certificate).bound


@pytest.mark.parametrize("flavour", ["confidential_client", "managed_identity_pop"])
def test_fifty_threads_one_token_request(authority, flavour):
    if flavour == "confidential_client":
        app = authority.directory.register_app("single-flight")
        acquirer = _cc(authority, app)
        acquirer.acquire_token(VAULT)          # warm discovery so only token requests remain
    else:
        acquirer = MtlsPopTokenAcquirer.for_managed_identity(
            ManagedIdentityId.user_assigned_client_id(authority.directory.user_assigned[2].client_id),
            cloud=authority.cloud)
    authority.clear_trace()
    authority.set_delay(30, listener="all")    # keep the flight open while the others arrive
    barrier = threading.Barrier(50)
    results, errors = [], []

    def worker():
        barrier.wait()
        try:
            results.append(acquirer.acquire_token(GRAPH, use_pop=True))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert authority.count_requests(path_contains="/oauth2/v2.0/token") == 1
    if flavour == "managed_identity_pop":
        assert authority.count_requests(path_contains="issuecredential") == 1
    assert len({r.access_token for r in results}) == 1
    assert [r.source for r in results].count("identity_provider") == 1
    acquirer.close()


def test_different_acquisitions_run_in_parallel(authority):
    app = authority.directory.register_app("parallel")
    acquirer = _cc(authority, app)
    acquirer.acquire_token(VAULT, use_pop=False)                            # warm the Bearer app
    acquirer.acquire_token(VAULT, use_pop=True)                             # warm the PoP app
    authority.clear_trace()
    authority.set_delay(300, listener="all")
    resources = [GRAPH, "https://storage.azure.com", "api://mtlspop-lab-api"]
    barrier = threading.Barrier(len(resources))

    def worker(resource):
        barrier.wait()
        acquirer.acquire_token(resource)

    threads = [threading.Thread(target=worker, args=(r,)) for r in resources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    token_entries = [e for e in authority.trace if e.path.endswith("/oauth2/v2.0/token")]
    assert len(token_entries) == 3
    # overlap: every request was received before the first one finished (300 ms each)
    starts = sorted(e.timestamp - e.elapsed_ms / 1000 for e in token_entries)
    ends = sorted(e.timestamp for e in token_entries)
    assert starts[-1] < ends[0], "different scopes must not wait for each other"
    acquirer.close()
