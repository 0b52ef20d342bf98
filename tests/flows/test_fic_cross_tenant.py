"""Cross-tenant FIC through the flows: an identity of tenant A, a token issued by tenant B.

The supported set-up (Entra's "Configure an application to trust a managed identity"): a
multi-tenant app registered in A trusts the identity, is provisioned in B, and leg 2 goes to
B's token endpoint with that app's client id. What goes wrong is reproduced with Entra's
numbers: B's own app trusting A's issuer (700236), the app not provisioned in B (700016),
no federated credential (70021).
"""

from __future__ import annotations

import jwt
import pytest

from mtlspop_lab.errors import AuthorityError, ConfigurationError
from mtlspop_lab.flows import FicLeg1Acquirer, FicLeg2Exchanger, ManagedIdentityId, call_resource
from mtlspop_lab.transport.sequence import sequence_diagram

GRAPH = "https://graph.microsoft.com"
API = "api://mtlspop-lab-api"


def _claims(result):
    return jwt.decode(result.access_token, options={"verify_signature": False})


@pytest.fixture(scope="module")
def tenant_b(authority):
    return authority.add_tenant("fabrikam-flows")


@pytest.fixture
def bridge(authority, tenant_b):
    """A multi-tenant app of the home tenant trusting its system-assigned identity, provisioned in B."""
    app = authority.directory.register_app("bridge", multi_tenant=True)
    authority.directory.add_federated_credential(app, trusted=ManagedIdentityId.system_assigned())
    return app, tenant_b.provision(app)


@pytest.mark.parametrize("use_pop", [True, False])
def test_managed_identity_of_a_gets_a_token_of_b(authority, tenant_b, bridge, use_pop):
    app, in_b = bridge
    leg1 = FicLeg1Acquirer.for_managed_identity(ManagedIdentityId.system_assigned(), cloud=authority.cloud)
    leg2 = FicLeg2Exchanger.create(app.client_id, tenant_b.tenant_id, cloud=authority.cloud)
    assertion = leg1.acquire_assertion()
    final = leg2.exchange_assertion_for_access_token(assertion, GRAPH, use_pop=use_pop)
    first, second = _claims(assertion), _claims(final)
    assert (first["iss"], first["tid"]) == (authority.issuer, authority.tenant_id)
    # the final token is Graph's (v1): tenant B's sts issuer, the client in appid
    assert (second["iss"], second["tid"]) == (f"https://sts.mtlspop.localhost/{tenant_b.tenant_id}/", tenant_b.tenant_id)
    assert second["appid"] == app.client_id and second["oid"] == in_b.object_id
    assert final.tenant_id == tenant_b.tenant_id and final.is_pop == use_pop
    if use_pop:
        assert final.binding_certificate == assertion.binding_certificate
    assert tenant_b.tenant_id in [t for t in final.round_trips if t.kind == "token"][-1].endpoint
    assert call_resource(authority.resource_url, final).ok
    leg1.close()
    leg2.close()


def test_sequence_diagram_names_each_tenant(authority, tenant_b, bridge):
    app, _ = bridge
    leg1 = FicLeg1Acquirer.for_managed_identity(ManagedIdentityId.system_assigned(), cloud=authority.cloud)
    leg2 = FicLeg2Exchanger.create(app.client_id, tenant_b.tenant_id, cloud=authority.cloud)
    assertion = leg1.acquire_assertion()
    final = leg2.exchange_assertion_for_access_token(assertion, GRAPH)
    diagram = sequence_diagram(assertion, final)
    services = [p for p in diagram.participants if p.startswith("STS")]
    assert len(services) == 2
    text = diagram.mermaid()
    assert f"tenant {tenant_b.tenant_id[:8]}" in text
    leg1.close()
    leg2.close()


def test_confidential_client_of_a(authority, tenant_b):
    identity = authority.directory.register_app("identity-a")
    app = authority.directory.register_app("bridge-cc", multi_tenant=True)
    authority.directory.add_federated_credential(app, trusted=identity)
    tenant_b.provision(app)
    leg1 = FicLeg1Acquirer.for_confidential_client(identity.client_id, identity.tenant_id, identity.certificate,
                                                   cloud=authority.cloud)
    leg2 = FicLeg2Exchanger.create(app.client_id, tenant_b.tenant_id, cloud=authority.cloud)
    final = leg2.exchange_assertion_for_access_token(leg1.acquire_assertion(), GRAPH)
    assert _claims(final)["tid"] == tenant_b.tenant_id and final.is_pop
    leg1.close()
    leg2.close()


def test_b_own_app_trusting_a_is_700236(authority, tenant_b):
    naive = tenant_b.register_app("naive-b-app")
    tenant_b.add_federated_credential(naive, trusted=ManagedIdentityId.system_assigned())
    leg1 = FicLeg1Acquirer.for_managed_identity(ManagedIdentityId.system_assigned(), cloud=authority.cloud)
    leg2 = FicLeg2Exchanger.create(naive.client_id, tenant_b.tenant_id, cloud=authority.cloud)
    with pytest.raises(AuthorityError) as info:
        leg2.exchange_assertion_for_access_token(leg1.acquire_assertion(), GRAPH)
    assert info.value.aadsts == 700236 and info.value.code == "cross_tenant_federated_credential"
    assert "multi-tenant" in info.value.fix
    leg1.close()
    leg2.close()


def test_not_provisioned_700016_and_no_credential_70021(authority, tenant_b):
    leg1 = FicLeg1Acquirer.for_managed_identity(ManagedIdentityId.system_assigned(), cloud=authority.cloud)
    assertion = leg1.acquire_assertion()
    lonely = authority.directory.register_app("not-provisioned", multi_tenant=True)
    authority.directory.add_federated_credential(lonely, trusted=ManagedIdentityId.system_assigned())
    with pytest.raises(AuthorityError) as info:
        FicLeg2Exchanger.create(lonely.client_id, tenant_b.tenant_id, cloud=authority.cloud
                                ).exchange_assertion_for_access_token(assertion, GRAPH)
    assert info.value.aadsts == 700016
    untrusting = authority.directory.register_app("no-fic-bridge", multi_tenant=True)
    tenant_b.provision(untrusting)
    with pytest.raises(AuthorityError) as info:
        FicLeg2Exchanger.create(untrusting.client_id, tenant_b.tenant_id, cloud=authority.cloud
                                ).exchange_assertion_for_access_token(assertion, GRAPH)
    assert info.value.aadsts == 70021
    leg1.close()


def test_roles_are_the_resource_tenants(authority, tenant_b, bridge):
    app, _ = bridge
    authority.directory.add_app_role(API, "Data.Read")
    authority.directory.assign_app_role(app, API, "Data.Read")      # in A: does not reach B's tokens
    tenant_b.add_app_role(API, "Data.Write")
    tenant_b.assign_app_role(app, API, "Data.Write")                 # the service principal in B
    leg1 = FicLeg1Acquirer.for_managed_identity(ManagedIdentityId.system_assigned(), cloud=authority.cloud)
    leg2 = FicLeg2Exchanger.create(app.client_id, tenant_b.tenant_id, cloud=authority.cloud)
    assert _claims(leg2.exchange_assertion_for_access_token(leg1.acquire_assertion(), API))["roles"] == ["Data.Write"]
    leg1.close()
    leg2.close()


def test_external_issuer_to_an_app_of_b(authority, tenant_b):
    """External tokens are not Entra's: B's own app may trust them directly."""
    github = authority.add_external_issuer("github_actions", name="gh-cross")
    app = tenant_b.register_app("deploy-in-b")
    subject = "repo:fabrikam/site:ref:refs/heads/main"
    tenant_b.add_federated_credential(app, trusted=(github, subject))
    leg1 = FicLeg1Acquirer.from_external_token(lambda: github.issue_token(subject), cloud=authority.cloud)
    leg2 = FicLeg2Exchanger.create(app.client_id, tenant_b.tenant_id, cloud=authority.cloud)
    final = leg2.exchange_assertion_for_access_token(leg1.acquire_assertion(), GRAPH, use_pop=False)
    assert _claims(final)["tid"] == tenant_b.tenant_id
    leg2.close()


def test_set_up_mistakes_are_refused(authority, tenant_b, bridge):
    app, in_b = bridge
    single = authority.directory.register_app("single-tenant")
    cases = [(lambda: tenant_b.provision(single), "app_not_multitenant"),
             (lambda: authority.directory.provision(app), "already_registered_here"),
             (lambda: tenant_b.add_federated_credential(in_b, trusted=ManagedIdentityId.system_assigned()),
              "credential_on_registration")]
    for call, code in cases:
        with pytest.raises(ConfigurationError) as info:
            call()
        assert info.value.code == code and info.value.fix
    assert tenant_b.provision(app) is in_b              # provisioning twice is the same principal
