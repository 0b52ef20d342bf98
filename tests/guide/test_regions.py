"""region="auto": REGION_NAME, then IMDS's compute location (msal's region discovery), else global with a note."""

from __future__ import annotations

import pytest

from mtlspop_lab.errors import ConfigurationError
from mtlspop_lab.flows import FicLeg1Acquirer, FicLeg2Exchanger, MtlsPopTokenAcquirer
from mtlspop_lab.flows.region import resolve_region

GRAPH = "https://graph.microsoft.com"


@pytest.fixture(autouse=True)
def _no_region_environment(monkeypatch):
    for name in ("REGION_NAME", "MSAL_FORCE_REGION"):
        monkeypatch.delenv(name, raising=False)


def _cc(authority, app, region):
    return MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                        cloud=authority.cloud, region=region)


def _token_bases(*results):
    """Where each result's token request went: the base URL before the tenant (from its round trips)."""
    return [t.endpoint.rsplit("/", 4)[0] for r in results for t in r.round_trips if t.kind == "token"]


def _base(authority, region=None):
    return authority.cloud.mtls_base_url(region)


def test_auto_reads_the_imds_compute_location(authority):
    app = authority.directory.register_app("region-auto-imds")
    with _cc(authority, app, "auto") as acquirer:
        compute = [e for e in authority.trace if e.path == "/metadata/instance/compute?api-version=2021-02-01"]
        assert len(compute) == 1 and compute[0].status == 200
        location = authority.regions[0]
        assert acquirer.region_choice.region == location and acquirer.region_choice.source == "IMDS"
        result = acquirer.acquire_token(GRAPH)
        assert (result.region, result.region_source, result.notes) == (location, "IMDS", ())
        assert _token_bases(result) == [_base(authority, location)]
        assert result.as_dict()["region"] == location


def test_region_name_wins_over_imds_and_imds_is_not_asked(authority, monkeypatch):
    other = authority.regions[-1]
    monkeypatch.setenv("REGION_NAME", other)
    app = authority.directory.register_app("region-auto-env")
    with _cc(authority, app, "auto") as acquirer:
        result = acquirer.acquire_token(GRAPH)
    assert (result.region, result.region_source) == (other, "REGION_NAME")
    assert authority.count_requests(path_contains="/metadata/instance") == 0
    assert _token_bases(result) == [_base(authority, other)]


@pytest.mark.parametrize("how", ["imds_absent", "imds_v1_only_still_has_compute", "imds_garbage",
                                 "bad_region_name", "region_not_served"])
def test_auto_falls_back_to_global_with_a_visible_note(authority, monkeypatch, how):
    if how == "imds_absent":
        authority.set_imds_mode("absent")
    elif how == "imds_garbage":
        authority.inject_fault("malformed_json", listener="imds", path_contains="/metadata/instance/compute")
    elif how == "bad_region_name":
        monkeypatch.setenv("REGION_NAME", "West US 3!")
    elif how == "region_not_served":
        monkeypatch.setenv("REGION_NAME", "centralus")
    app = authority.directory.register_app(f"region-fallback-{how}")
    with _cc(authority, app, "auto") as acquirer:
        result = acquirer.acquire_token(GRAPH)
    if how == "imds_v1_only_still_has_compute":      # control: v1-only IMDS still serves compute metadata
        assert result.region == authority.regions[0] and not result.notes
        return
    assert result.region is None and result.region_source == "global"
    assert len(result.notes) == 1 and "global endpoint" in result.notes[0]
    assert acquirer.region_choice.fell_back
    assert _token_bases(result) == [_base(authority)]
    if how == "bad_region_name":
        assert authority.count_requests(path_contains="/metadata/instance") == 0     # msal: no IMDS then


def test_explicit_and_forced_regions(authority, monkeypatch):
    region = authority.regions[-1]
    app = authority.directory.register_app("region-explicit")
    with _cc(authority, app, region) as acquirer:
        explicit = acquirer.acquire_token(GRAPH)
        assert (explicit.region, explicit.region_source) == (region, "explicit")
    with _cc(authority, app, None) as acquirer:
        plain = acquirer.acquire_token(GRAPH)
        assert (plain.region, plain.region_source) == (None, "global")
    monkeypatch.setenv("MSAL_FORCE_REGION", region)             # msal: region=None reads it
    with _cc(authority, app, None) as acquirer:
        forced = acquirer.acquire_token(GRAPH)
        assert (forced.region, forced.region_source) == (region, "MSAL_FORCE_REGION")
    assert _token_bases(explicit, plain, forced) == [_base(authority, region), _base(authority),
                                                      _base(authority, region)]
    monkeypatch.setenv("MSAL_FORCE_REGION", "not a region")
    with pytest.raises(ConfigurationError) as info:
        _cc(authority, app, None)
    assert info.value.code == "invalid_region"


def test_bearer_on_the_embedded_authority_goes_to_the_login_host(authority):
    app = authority.directory.register_app("region-bearer")
    with _cc(authority, app, "auto") as acquirer:
        result = acquirer.acquire_token(GRAPH, use_pop=False)
    assert result.region is None and _token_bases(result) == [authority.cloud.login_url]


def test_fic_legs_with_auto_region(authority):
    leg1_app = authority.directory.register_app("region-leg1")
    leg2_app = authority.directory.register_app("region-leg2")
    authority.directory.add_federated_credential(leg2_app, trusted=leg1_app)
    leg1 = FicLeg1Acquirer.for_confidential_client(leg1_app.client_id, leg1_app.tenant_id, leg1_app.certificate,
                                                   cloud=authority.cloud, region="auto")
    leg2 = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud, region="auto")
    try:
        assertion = leg1.acquire_assertion()
        final = leg2.exchange_assertion_for_access_token(assertion, GRAPH)
    finally:
        leg1.close()
        leg2.close()
    location = authority.regions[0]
    assert (final.region, final.region_source) == (location, "IMDS")
    assert _token_bases(assertion, final) == [_base(authority, location)] * 2


def test_resolve_region_rules_without_a_network(authority):
    cloud = authority.cloud
    assert resolve_region("WestUS3", cloud, environ={}).region == "westus3"
    with pytest.raises(ConfigurationError) as info:
        resolve_region("centralus", cloud, environ={})        # explicit but not served: say so
    assert info.value.code == "unknown_region"
    with pytest.raises(ConfigurationError) as info:
        resolve_region("west us", cloud, environ={})
    assert info.value.code == "invalid_region"
    choice = resolve_region("auto", cloud, environ={"REGION_NAME": authority.regions[-1]})
    assert choice.source == "REGION_NAME" and choice.note is None


def test_live_cloud_urls_follow_the_detected_region(monkeypatch):
    """No network: REGION_NAME answers before IMDS would be asked."""
    from mtlspop_lab.certs import Certificate
    from mtlspop_lab.cloud import Cloud
    from mtlspop_lab.flows.confidential import ConfidentialClientFlow

    monkeypatch.setenv("REGION_NAME", "westus2")
    flow = ConfidentialClientFlow("00000000-0000-0000-0000-000000000001", "contoso.onmicrosoft.com",
                                  Certificate.create_self_signed("CN=live-region"), cloud=Cloud.public(),
                                  region="auto")
    try:
        assert flow.mtls_authority == "https://westus2.mtlsauth.microsoft.com/contoso.onmicrosoft.com"
        assert flow.region_fields(True) == {"region": "westus2", "region_source": "REGION_NAME", "notes": ()}
        assert flow.region_fields(False)["region"] == "westus2"      # msal's regional login host for Bearer
    finally:
        flow.close()


def test_a_managed_identity_result_names_the_region_imds_chose(authority):
    from mtlspop_lab.flows import ManagedIdentityId
    mi = ManagedIdentityId.user_assigned_client_id(authority.directory.user_assigned[0].client_id)
    with MtlsPopTokenAcquirer.for_managed_identity(mi, cloud=authority.cloud) as acquirer:
        result = acquirer.acquire_token(GRAPH)
        assert acquirer.region_choice is None                         # IMDS names the endpoint
    assert (result.region, result.region_source) == (authority.regions[0], "IMDS mtls_authentication_endpoint")
    assert _token_bases(result) == [_base(authority, authority.regions[0])]
