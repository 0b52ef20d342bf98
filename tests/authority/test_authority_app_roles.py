"""App roles: tokens carry ``roles``, the API requires a role per path (403), assignments propagate.

Driven through the real flows (msal, IMDS, FIC) against the authority.
"""

from __future__ import annotations

import time

import jwt
import pytest
import requests

from mtlspop_lab.errors import ConfigurationError, ResourceAccessError
from mtlspop_lab.flows import FicLeg1Acquirer, FicLeg2Exchanger, ManagedIdentityId, MtlsPopTokenAcquirer, call_resource
from mtlspop_lab.workshop.checklist import run_checklist

API = "api://mtlspop-lab-api"


def _roles(result):
    return jwt.decode(result.access_token, options={"verify_signature": False}).get("roles")


def _cc(authority, app):
    return MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                        cloud=authority.cloud)


@pytest.fixture
def role(authority):
    return authority.directory.add_app_role(API, "Data.Read")


@pytest.mark.parametrize("use_pop", [True, False])
def test_app_token_carries_assigned_roles_and_the_api_requires_them(authority, role, use_pop):
    d = authority.directory
    granted, denied = d.register_app("roles-granted"), d.register_app("roles-denied")
    d.assign_app_role(granted, API, "Data.Read")
    authority.require_app_role("Data.Read", path="/data", resource=API)
    ok, ko = _cc(authority, granted), _cc(authority, denied)
    good = ok.acquire_token(API, use_pop=use_pop)
    bad = ko.acquire_token(API, use_pop=use_pop)
    assert _roles(good) == ["Data.Read"] and _roles(bad) is None
    assert call_resource(authority.resource_url, good, path="/data/items").ok
    assert call_resource(authority.resource_url, bad, path="/public").ok       # no rule there
    with pytest.raises(ResourceAccessError) as info:
        call_resource(authority.resource_url, bad, path="/data/items")
    assert info.value.status == 403 and info.value.code == "insufficient_permissions" and info.value.fix
    ok.close()
    ko.close()


def test_403_body_and_challenge(authority, role, tmp_path):
    d = authority.directory
    app = d.register_app("roles-raw")
    authority.require_app_role("Data.Read")
    acquirer = _cc(authority, app)
    token = acquirer.acquire_token(API, use_pop=True)
    certfile, keyfile = tmp_path / "c.pem", tmp_path / "k.pem"
    app.certificate.write_pem(certfile, keyfile)
    with requests.Session() as session:
        session.trust_env = False
        answer = session.get(authority.resource_url + "/anything", verify=authority.ca_bundle,
                             cert=(str(certfile), str(keyfile)),
                             headers={"Authorization": f"mtls_pop {token.access_token}"})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "Authorization_RequestDenied"
    assert answer.json()["required_roles"] == ["Data.Read"] and answer.json()["roles"] == []
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith("mtls_pop ") and 'error="insufficient_scope"' in challenge
    acquirer.close()


def test_role_for_another_resource_does_not_count(authority, role):
    d = authority.directory
    d.add_app_role("https://graph.microsoft.com", "Data.Read")
    app = d.register_app("roles-other-resource")
    d.assign_app_role(app, "https://graph.microsoft.com", "Data.Read")
    acquirer = _cc(authority, app)
    assert _roles(acquirer.acquire_token(API)) is None
    assert _roles(acquirer.acquire_token("https://graph.microsoft.com")) == ["Data.Read"]
    acquirer.close()


def test_managed_identity_roles_imds_v1_and_v2(authority, role):
    d = authority.directory
    uami = d.user_assigned[1]
    d.assign_app_role(ManagedIdentityId.user_assigned_client_id(uami.client_id), API, "Data.Read")
    acquirer = MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.user_assigned_client_id(uami.client_id),
                                                         cloud=authority.cloud)
    assert _roles(acquirer.acquire_token(API, use_pop=False)) == ["Data.Read"]     # IMDS v1
    assert _roles(acquirer.acquire_token(API, use_pop=True)) == ["Data.Read"]      # IMDS v2 + mTLS token endpoint
    acquirer.close()
    assert d.revoke_app_role(uami, API, "Data.Read")


def test_federated_principal_is_the_leg2_app(authority, role):
    d = authority.directory
    leg1_app, leg2_app = d.register_app("roles-leg1"), d.register_app("roles-leg2")
    d.add_federated_credential(leg2_app, trusted=leg1_app)
    d.assign_app_role(leg1_app, API, "Data.Read")            # leg 1's roles do not travel
    leg1 = FicLeg1Acquirer.for_confidential_client(leg1_app.client_id, leg1_app.tenant_id, leg1_app.certificate,
                                                   cloud=authority.cloud)
    leg2 = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud)
    assert _roles(leg2.exchange_assertion_for_access_token(leg1.acquire_assertion(), API)) is None
    d.assign_app_role(leg2_app, API, "Data.Read")
    fresh = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud)
    assert _roles(fresh.exchange_assertion_for_access_token(leg1.acquire_assertion(), API)) == ["Data.Read"]
    for closable in (leg1, leg2, fresh):
        closable.close()


def test_assignment_reaches_only_tokens_issued_after_it(authority, role):
    d = authority.directory
    app = d.register_app("roles-late")
    authority.require_app_role("Data.Read", path="/data")
    acquirer = _cc(authority, app)
    before = acquirer.acquire_token(API)
    d.assign_app_role(app, API, "Data.Read")
    cached = acquirer.acquire_token(API)
    assert cached.access_token == before.access_token and cached.source != before.source   # from the cache
    with pytest.raises(ResourceAccessError):
        call_resource(authority.resource_url, cached, path="/data")
    fresh = _cc(authority, app).acquire_token(API)                 # a new token, issued after the grant
    assert call_resource(authority.resource_url, fresh, path="/data").ok
    acquirer.close()


def test_propagation_delay(authority, role):
    d = authority.directory
    app = d.register_app("roles-propagation")
    authority.set_permission_propagation_delay(1.0)
    assignment = d.assign_app_role(app, API, "Data.Read")
    assert assignment.effective_at - assignment.created_at == pytest.approx(1.0)
    assert _roles(_cc(authority, app).acquire_token(API)) is None        # not yet propagated
    time.sleep(max(0.0, assignment.effective_at - time.time()) + 0.05)
    assert _roles(_cc(authority, app).acquire_token(API)) == ["Data.Read"]
    authority.reset_knobs()
    assert authority.permission_propagation_delay_s == 0


def test_bad_input_is_refused_with_typed_errors(authority, role):
    d = authority.directory
    app = d.register_app("roles-bad")
    cases = [
        (lambda: d.assign_app_role(app, API, "Data.Write"), "app_role_not_found"),
        (lambda: d.add_app_role(API, "has space"), "invalid_app_role"),
        (lambda: d.add_app_role("https://nowhere.example", "Data.Read"), "resource_not_found"),
        (lambda: d.assign_app_role("not-a-principal", API, "Data.Read"), "principal_not_found"),
    ]
    for call, code in cases:
        with pytest.raises(ConfigurationError) as info:
            call()
        assert info.value.code == code and info.value.fix
    for bad in (-1, 10_000, "5"):
        with pytest.raises(ConfigurationError):
            authority.set_permission_propagation_delay(bad)
    with pytest.raises(ConfigurationError):
        authority.require_app_role("Data.Read", path="data")


def test_checklist_shows_the_permissions_to_document(authority, role):
    app = authority.directory.register_app("roles-checklist")
    authority.directory.assign_app_role(app, API, "Data.Read")
    authority.require_app_role("Data.Read", path="/data", resource=API)
    report = run_checklist(authority=authority, identity=(app.client_id, app.tenant_id, app.certificate),
                           resource=API)
    (item,) = [r for r in report.results if r.key == "permissions_documented"]
    assert item.status == "manual"
    assert "carries app roles: Data.Read" in item.evidence and "requires: Data.Read on /data" in item.evidence


def test_role_rules_are_checked_and_kept_trimmed(fresh_authority):
    for bad in ("", "   ", None, 5):
        with pytest.raises(ConfigurationError):
            fresh_authority.require_app_role(bad)
    fresh_authority.require_app_role("  Data.Read  ", path="/data/")
    assert fresh_authority.role_requirements == [("/data", "Data.Read", None)]


def test_403_names_the_roles_the_token_has(authority, role, tmp_path):
    d = authority.directory
    d.add_app_role(API, "Reports.Export")
    app = d.register_app("roles-some")
    d.assign_app_role(app, API, "Data.Read")
    authority.require_app_role("Reports.Export", path="/reports")
    acquirer = _cc(authority, app)
    token = acquirer.acquire_token(API, use_pop=True)
    certfile, keyfile = tmp_path / "c.pem", tmp_path / "k.pem"
    app.certificate.write_pem(certfile, keyfile)
    with requests.Session() as session:
        session.trust_env = False
        answer = session.get(authority.resource_url + "/reports/x", verify=authority.ca_bundle,
                             cert=(str(certfile), str(keyfile)),
                             headers={"Authorization": f"mtls_pop {token.access_token}"})
    assert answer.status_code == 403
    body = answer.json()
    assert body["ok"] is False and body["roles"] == ["Data.Read"] and body["required_roles"] == ["Reports.Export"]
    acquirer.close()
