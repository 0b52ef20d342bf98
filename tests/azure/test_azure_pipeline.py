"""mTLS PoP in an azure-core PipelineClient: the lab's adapters against the protected API, sync.

The credential answers mtls_pop tokens, the policy writes the mtls_pop scheme, the transport
presents the certificate each token is bound to. Side by side, azure-core's own
BearerTokenCredentialPolicy with the same credential is refused by the API.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from azure.core import PipelineClient
from azure.core.credentials import AccessTokenInfo
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest
from azure.identity import ManagedIdentityCredential

import mtlspop_lab as lab
from mtlspop_lab.flows import TokenCache

GRAPH = "https://graph.microsoft.com"
GRAPH_SCOPE = f"{GRAPH}/.default"


def cnf_of(token: str):
    return jwt.decode(token, options={"verify_signature": False}).get("cnf", {}).get("x5t#S256")


def digest(token: str) -> str:
    """Compare tokens by hash: a failing assertion never prints a token."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def resource_calls(authority) -> list:
    return [e for e in authority.trace if e.listener == "resource"]


def get(client, authority, path):
    return client.send_request(HttpRequest("GET", authority.resource_url + path))


@pytest.fixture
def credential(authority, app):
    with lab.MtlsPopCredential.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                       cloud=authority.cloud) as credential:
        yield credential


def test_credential_reports_mtls_pop_with_refresh_before_expiry(authority, app, credential):
    info = credential.get_token_info(GRAPH_SCOPE)
    assert isinstance(info, AccessTokenInfo)
    token, token_type, refresh_on, expires_on = info.token, info.token_type, info.refresh_on, info.expires_on
    assert token_type == "mtls_pop" and cnf_of(token) == app.certificate.x5t_s256
    assert time.time() < refresh_on < expires_on
    assert credential.certificate_for_token(token).x5t_s256 == app.certificate.x5t_s256
    assert credential.certificate_for_token(token).has_private_key
    assert credential.certificate_for_token("not-a-token-it-gave") is None


def test_pipeline_client_gets_200_with_the_binding_certificate(authority, app, credential, resource_path):
    with lab.mtls_pop_pipeline_client(credential, authority.resource_url, GRAPH_SCOPE) as client:
        first = get(client, authority, resource_path)
        second = get(client, authority, resource_path)
    assert first.status_code == second.status_code == 200
    assert first.json()["scheme"] == "mtls_pop" and first.json()["x5t#S256"] == app.certificate.x5t_s256
    calls = resource_calls(authority)
    assert [c.status for c in calls] == [200, 200]
    assert {c.client_cert_x5t for c in calls} == {app.certificate.x5t_s256}
    assert calls[1].new_connection is False                      # the pool keeps the mTLS connection
    assert authority.count_requests(path_contains="/oauth2/v2.0/token") == 1     # the second from cache


def test_bearer_policy_with_the_same_token_is_refused_side_by_side(authority, app, credential, resource_path):
    """azure-core's BearerTokenCredentialPolicy writes 'Bearer' whatever token_type says."""
    pop = lab.mtls_pop_pipeline_client(credential, authority.resource_url, GRAPH_SCOPE)
    with_certificate = PipelineClient(authority.resource_url,
                                      policies=[BearerTokenCredentialPolicy(credential, GRAPH_SCOPE)],
                                      transport=lab.MtlsPopTransport(credential))
    plain = PipelineClient(authority.resource_url, policies=[BearerTokenCredentialPolicy(credential, GRAPH_SCOPE)],
                           transport=RequestsTransport(connection_verify=authority.ca_bundle))
    with pop, with_certificate, plain:
        answers = [get(c, authority, resource_path) for c in (pop, with_certificate, plain)]
    assert [a.status_code for a in answers] == [200, 401, 401]
    calls = resource_calls(authority)
    assert [c.client_cert_x5t for c in calls] == [app.certificate.x5t_s256, app.certificate.x5t_s256, None]
    assert calls[0].token_type == "mtls_pop"
    for refused in answers[1:]:
        assert refused.json()["error"]["code"] in ("InvalidAuthenticationToken", "MissingClientCertificate")
        assert refused.headers["WWW-Authenticate"].startswith("mtls_pop ")
    # the same token in all three: only the scheme (and, last, the missing certificate) differ
    assert authority.count_requests(path_contains="/oauth2/v2.0/token") == 1


class Mislabelled:
    """A credential that loses the token type (as a cache ignoring token_type would)."""

    def __init__(self, inner):
        self.inner = inner

    def get_token_info(self, *scopes, options=None):
        info = self.inner.get_token_info(*scopes, options=options)
        return AccessTokenInfo(info.token, info.expires_on, token_type="Bearer", refresh_on=info.refresh_on)


def test_policy_refuses_a_bound_token_with_another_scheme(authority, credential, resource_path):
    client = PipelineClient(authority.resource_url,
                            policies=[lab.MtlsPopAuthenticationPolicy(Mislabelled(credential), GRAPH_SCOPE)],
                            transport=lab.MtlsPopTransport(credential))
    with client, pytest.raises(lab.ConfigurationError) as caught:
        get(client, authority, resource_path)
    assert caught.value.code == "bound_token_wrong_scheme"
    assert resource_calls(authority) == []                  # refused before anything left the machine


def test_policy_refuses_a_bearer_token_where_pop_is_required(authority, imds_env, resource_path):
    credential = ManagedIdentityCredential()                 # azure-identity: Bearer only
    with PipelineClient(authority.resource_url, policies=[lab.MtlsPopAuthenticationPolicy(credential, GRAPH_SCOPE)],
                        transport=RequestsTransport(connection_verify=authority.ca_bundle)) as client:
        with pytest.raises(lab.TokenTypeMismatchError) as caught:
            get(client, authority, resource_path)
    assert caught.value.code == "token_type_mismatch"
    assert resource_calls(authority) == []


def test_policy_refuses_plain_http(authority, credential):
    with lab.mtls_pop_pipeline_client(credential, authority.imds_url, GRAPH_SCOPE) as client:
        with pytest.raises(lab.ConfigurationError) as caught:
            client.send_request(HttpRequest("GET", authority.imds_url + "/x"))
    assert caught.value.code == "https_required"


def test_get_token_refuses_to_lose_the_token_type(credential):
    with pytest.raises(lab.ConfigurationError) as caught:
        credential.get_token(GRAPH_SCOPE)
    assert caught.value.code == "token_type_lost"


@pytest.mark.parametrize("scopes", [(), ("https://graph.microsoft.com",), (GRAPH_SCOPE, "openid"), ("/.default",)])
def test_credential_refuses_scopes_it_cannot_serve(credential, scopes):
    with pytest.raises(lab.ConfigurationError) as caught:
        credential.get_token_info(*scopes)
    assert caught.value.code == "invalid_scope"


def test_transport_refuses_an_mtls_pop_token_it_has_no_certificate_for(authority, app, credential, resource_path):
    token = authority.issue_token(GRAPH, client_id=app.client_id, certificate=app.certificate)   # not via credential
    request = HttpRequest("GET", authority.resource_url + resource_path, headers={"Authorization": f"mtls_pop {token}"})
    with lab.MtlsPopTransport(credential) as transport, pytest.raises(lab.CertificateError) as caught:
        transport.send(request)
    assert caught.value.code == "mtls_certificate_not_provided"
    assert resource_calls(authority) == []


def test_token_refresh_through_the_adapter_before_expiry(authority, app, resource_path):
    """A short token lifetime: the pipeline switches to a new token after refresh_on, before expires_on."""
    authority.set_token_lifetime(7)                           # expires_in 6 s
    acquirer = lab.MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                                cloud=authority.cloud,
                                                                cache=TokenCache(refresh_margin_s=4))
    with lab.MtlsPopCredential(acquirer) as credential, acquirer, \
            lab.mtls_pop_pipeline_client(credential, authority.resource_url, GRAPH_SCOPE) as client:
        assert get(client, authority, resource_path).status_code == 200
        first = credential.last_result
        info = credential.get_token_info(GRAPH_SCOPE)
        # (never put an AccessTokenInfo itself in an assert: its repr shows the token)
        token, refresh_on, expires_on = digest(info.token), info.refresh_on, info.expires_on
        assert token == digest(first.access_token) and expires_on - 5 <= refresh_on <= expires_on - 3
        time.sleep(max(0.0, refresh_on + 0.2 - time.time()))
        assert time.time() < first.expires_on.timestamp()    # the first token is still valid...
        assert get(client, authority, resource_path).status_code == 200
        second = credential.last_result
    assert digest(second.access_token) != digest(first.access_token)     # ...and was replaced anyway
    assert second.source == "identity_provider" and second.expires_on > first.expires_on
    assert authority.count_requests(path_contains="/oauth2/v2.0/token") == 2
    assert [c.status for c in resource_calls(authority)] == [200, 200]


def test_certificate_rotation_follows_the_token(authority, app, credential, resource_path):
    old = app.certificate
    new = lab.Certificate.create_self_signed(f"CN={app.client_id}-rotated")
    authority.directory.add_certificate(app, new)
    transport = lab.MtlsPopTransport(credential)
    with PipelineClient(authority.resource_url, transport=transport,
                        policies=[lab.MtlsPopAuthenticationPolicy(credential, GRAPH_SCOPE)]) as client:
        before = get(client, authority, resource_path)
        credential.acquirer.rotate_certificate(new)
        after = get(client, authority, resource_path)
    assert before.status_code == after.status_code == 200
    assert before.json()["x5t#S256"] == old.x5t_s256 and after.json()["x5t#S256"] == new.x5t_s256
    assert cnf_of(credential.last_result.access_token) == new.x5t_s256
    assert [c.client_cert_x5t for c in resource_calls(authority)] == [old.x5t_s256, new.x5t_s256]
    assert transport.presented_certificates == []            # closed with the client


def test_managed_identity_pop_through_the_pipeline(authority, resource_path):
    """IMDS v2: the certificate is issued by IMDS; the transport presents it."""
    with lab.MtlsPopCredential.for_managed_identity(lab.ManagedIdentityId.system_assigned(),
                                                    cloud=authority.cloud) as credential, \
            lab.mtls_pop_pipeline_client(credential, authority.resource_url, GRAPH_SCOPE) as client:
        answer = get(client, authority, resource_path)
        bound_to = credential.last_result.binding_certificate.x5t_s256
    assert answer.status_code == 200 and answer.json()["x5t#S256"] == bound_to
    sami = authority.directory.find_managed_identity("system_assigned")
    assert authority.directory.issued_to(bound_to) == sami.client_id       # IMDS v2 issued it to the SAMI
    assert answer.json()["sub"] == sami.object_id


def test_fic_two_leg_pop_through_the_pipeline(authority, app, resource_path):
    """FIC: leg 1 by a managed identity (PoP), leg 2 by the app; the final token is bound to leg 1's certificate."""
    mi = lab.ManagedIdentityId.system_assigned()
    authority.directory.add_federated_credential(app, trusted=mi)
    leg1 = lab.FicLeg1Acquirer.for_managed_identity(mi, cloud=authority.cloud)
    leg2 = lab.FicLeg2Exchanger.create(app.client_id, app.tenant_id, cloud=authority.cloud)
    try:
        with lab.MtlsPopCredential.for_fic(leg1, leg2) as credential, \
                lab.mtls_pop_pipeline_client(credential, authority.resource_url, GRAPH_SCOPE) as client:
            answer = get(client, authority, resource_path)
            final = credential.last_result
    finally:
        leg1.close()
        leg2.close()
    assert answer.status_code == 200 and final.flow == "fic_leg2"
    assert answer.json()["sub"] == app.object_id
    assert answer.json()["x5t#S256"] == final.binding_certificate.x5t_s256 == cnf_of(final.access_token)


def test_closed_credential_refuses_and_forgets_certificates(authority, app):
    credential = lab.MtlsPopCredential.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                               cloud=authority.cloud)
    token = credential.get_token_info(GRAPH_SCOPE).token
    credential.close()
    credential.close()
    assert credential.certificate_for_token(token) is None
    with pytest.raises(lab.ConfigurationError) as caught:
        credential.get_token_info(GRAPH_SCOPE)
    assert caught.value.code == "credential_closed"


def test_bearer_mode_works_with_azure_cores_own_policy(authority, app, resource_path):
    """use_pop=False: an unbound token, which BearerTokenCredentialPolicy sends correctly."""
    acquirer = lab.MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                                cloud=authority.cloud)
    with acquirer:
        credential = lab.MtlsPopCredential(acquirer, use_pop=False)
        access = credential.get_token(GRAPH_SCOPE)             # the older protocol is fine for Bearer
        assert cnf_of(access.token) is None and credential.certificate_for_token(access.token) is None
        with PipelineClient(authority.resource_url, policies=[BearerTokenCredentialPolicy(credential, GRAPH_SCOPE)],
                            transport=RequestsTransport(connection_verify=authority.ca_bundle)) as client:
            answer = get(client, authority, resource_path)
        assert answer.status_code == 200 and answer.json()["scheme"] == "Bearer"
        with lab.mtls_pop_pipeline_client(credential, authority.resource_url, GRAPH_SCOPE) as client, \
                pytest.raises(lab.TokenTypeMismatchError):
            get(client, authority, resource_path)
        credential.close()


def test_threads_share_one_pipeline_and_one_token(authority, app, credential, resource_path):
    """azure-core clients are used from many threads: one token request (single flight), every call 200."""
    with lab.mtls_pop_pipeline_client(credential, authority.resource_url, GRAPH_SCOPE) as client:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: get(client, authority, resource_path).status_code, range(24)))
    assert statuses == [200] * 24
    assert authority.count_requests(path_contains="/oauth2/v2.0/token") == 1
    assert {c.client_cert_x5t for c in resource_calls(authority)} == {app.certificate.x5t_s256}


def test_an_authority_refusal_surfaces_as_a_lab_error_and_nothing_reaches_the_api(authority, app, resource_path):
    stranger = lab.Certificate.create_self_signed("CN=unregistered-for-azure-sdk")
    authority.trust_client_certificate(stranger)               # past TLS, so the token service answers
    with lab.MtlsPopCredential.for_confidential_client(app.client_id, app.tenant_id, stranger,
                                                       cloud=authority.cloud) as credential, \
            lab.mtls_pop_pipeline_client(credential, authority.resource_url, GRAPH_SCOPE) as client:
        with pytest.raises(lab.AuthorityError) as caught:
            get(client, authority, resource_path)
    assert caught.value.aadsts == 700027 and caught.value.error == "invalid_client"
    assert resource_calls(authority) == []
