"""The lab's RFC 8705 client and inspector against oidc-provider, a server nobody here wrote."""

from __future__ import annotations

import pytest
from jwt.algorithms import RSAAlgorithm

from mtlspop_lab.certs import Certificate
from mtlspop_lab.cloud import Cloud
from mtlspop_lab.errors import AuthorityError, CertificateError, ConfigurationError, TokenValidationError
from mtlspop_lab.inspector import check_binding, verify_token
from mtlspop_lab.flows.rfc8705 import CertificateBoundClient, CertificateBoundResult


@pytest.fixture(scope="module")
def cloud(oidc_provider):
    return Cloud.from_discovery(oidc_provider.issuer, ca_bundle=oidc_provider.ca_bundle)


@pytest.fixture(scope="module")
def self_signed_client(oidc_provider, cloud):
    with CertificateBoundClient(oidc_provider.self_signed_client_id, oidc_provider.self_signed_certificate,
                                cloud=cloud) as client:
        yield client


@pytest.mark.parametrize("which", ["self_signed", "pki"])
def test_bound_token_labelled_bearer_is_recognised_by_cnf(oidc_provider, cloud, which):
    certificate = getattr(oidc_provider, f"{which}_certificate")
    with CertificateBoundClient(getattr(oidc_provider, f"{which}_client_id"), certificate, cloud=cloud) as client:
        result = client.acquire_token(oidc_provider.resource, scopes=[oidc_provider.resource_scope])
    assert isinstance(result, CertificateBoundResult)
    assert result.token_type == "Bearer" and not result.is_pop
    assert result.is_bound and result.bound_by.startswith("cnf.x5t#S256") and "Bearer" in result.bound_by
    assert result.binding_certificate == certificate.public_only()
    assert result.authorization_header.startswith("Bearer ")  # RFC 8705 keeps RFC 6750's scheme
    assert result.as_dict()["bound"] is True and result.access_token not in repr(result)
    verdict = check_binding(result)  # the result's own binding certificate
    assert verdict.bound and any("binding is decided by cnf" in n for n in verdict.notes)
    stolen = check_binding(result, Certificate.create_self_signed("CN=thief"))
    assert not stolen.bound and stolen.mistakes == ("other_certificate",)


def test_verify_token_with_the_servers_jwks(oidc_provider, cloud, self_signed_client):
    result = self_signed_client.acquire_token(oidc_provider.resource, scopes=[oidc_provider.resource_scope])
    by_url = verify_token(result, jwks_url=cloud.jwks_uri, ca_bundle=oidc_provider.ca_bundle,
                          issuer=cloud.issuer, audience=oidc_provider.resource)
    assert by_url.verified and by_url.claims["client_id"] == oidc_provider.self_signed_client_id
    by_keys = verify_token(result, oidc_provider.jwks(), issuer=cloud.issuer, audience=oidc_provider.resource)
    assert by_keys.verified and by_keys.x5t_s256 == oidc_provider.self_signed_certificate.x5t_s256
    with pytest.raises(TokenValidationError) as wrong_aud:
        verify_token(result, oidc_provider.jwks(), audience="https://graph.microsoft.com")
    assert wrong_aud.value.code == "invalid_audience"


def test_verify_token_refuses_it_with_another_issuers_keys(oidc_provider, self_signed_client, authority):
    result = self_signed_client.acquire_token(oidc_provider.resource, scopes=[oidc_provider.resource_scope])
    with pytest.raises(TokenValidationError) as info:
        verify_token(result, authority=authority)
    assert info.value.code == "key_not_found"  # the kid is not in the lab's JWKS
    lab_key = RSAAlgorithm.from_jwk(authority.jwks["keys"][0])  # a bare RSA key object, no kid
    with pytest.raises(TokenValidationError) as info:
        verify_token(result, lab_key)  # right type, wrong key
    assert info.value.code == "invalid_signature"


def test_requests_go_to_the_mtls_alias_and_the_cache_serves_repeats(oidc_provider):
    cloud = Cloud.from_discovery(oidc_provider.issuer, ca_bundle=oidc_provider.ca_bundle)
    with CertificateBoundClient(oidc_provider.pki_client_id, oidc_provider.pki_certificate, cloud=cloud) as client:
        assert client.token_endpoint == oidc_provider.mtls_token_endpoint
        first = client.acquire_token(oidc_provider.resource, scopes=[oidc_provider.resource_scope])
        posts = [t for t in first.round_trips if t.method == "POST"]
        assert [t.endpoint for t in posts] == [oidc_provider.mtls_token_endpoint]
        assert posts[0].status == 200 and posts[0].client_cert_x5t == oidc_provider.pki_certificate.x5t_s256
        again = client.acquire_token(oidc_provider.resource, scopes=[oidc_provider.resource_scope])
        assert again.source == "cache" and again.access_token == first.access_token and not again.round_trips
        other_scope = client.acquire_token(oidc_provider.resource)  # another cache key: a new token
        assert other_scope.source == "identity_provider" and other_scope.access_token != first.access_token


def test_entra_shaped_request_with_scope_only(oidc_provider, cloud, self_signed_client):
    """`<resource>/.default` without a resource parameter: this server maps it to the resource."""
    result = self_signed_client.acquire_token(scopes=[f"{oidc_provider.resource}/.default"])
    assert result.is_bound and result.resource is None
    assert verify_token(result, oidc_provider.jwks(), audience=oidc_provider.resource).verified


def test_unknown_resource_is_an_authority_error(oidc_provider, self_signed_client):
    with pytest.raises(AuthorityError) as info:
        self_signed_client.acquire_token("https://unknown.example")
    assert info.value.error == "invalid_target" and info.value.status == 400


def test_unregistered_certificate_is_refused(oidc_provider, cloud):
    stranger = Certificate.create_self_signed("CN=interop-self-signed-client")
    with CertificateBoundClient(oidc_provider.self_signed_client_id, stranger, cloud=cloud) as client:
        with pytest.raises(AuthorityError) as info:
            client.acquire_token(oidc_provider.resource)
    assert info.value.error == "invalid_client" and info.value.status == 401
    assert "certificate" in info.value.cause


def test_unbound_token_is_refused_unless_accepted_knowingly(oidc_provider, cloud):
    args = (oidc_provider.unbound_client_id, oidc_provider.unbound_certificate)
    with CertificateBoundClient(*args, cloud=cloud) as client:
        with pytest.raises(AuthorityError) as info:
            client.acquire_token(oidc_provider.resource)
    assert info.value.code == "token_not_bound" and "tls_client_certificate_bound_access_tokens" in info.value.cause
    with CertificateBoundClient(*args, cloud=cloud, require_binding=False) as client:
        result = client.acquire_token(oidc_provider.resource)
    assert not result.is_bound and result.binding_certificate is None and result.bound_by == "not bound"
    assert result.binding.mistakes == ("no_cnf",)


def test_opaque_token_binding_cannot_be_seen(oidc_provider, cloud, self_signed_client):
    """Without a resource this server issues an opaque token: the client cannot read its cnf."""
    with pytest.raises(AuthorityError) as info:
        self_signed_client.acquire_token(scopes=[oidc_provider.resource_scope])
    assert info.value.code == "token_not_bound" and "opaque" in info.value.message
    with CertificateBoundClient(oidc_provider.self_signed_client_id, oidc_provider.self_signed_certificate,
                                cloud=cloud, require_binding=False) as client:
        result = client.acquire_token(scopes=[oidc_provider.resource_scope])
    assert result.access_token.count(".") != 2 and result.binding is None and not result.is_bound


def test_bad_arguments(oidc_provider, cloud, self_signed_client):
    with pytest.raises(ConfigurationError) as info:
        CertificateBoundClient("x", oidc_provider.self_signed_certificate, cloud=Cloud.public())
    assert info.value.code == "not_a_discovered_cloud"
    with pytest.raises(ConfigurationError):
        CertificateBoundClient(" ", oidc_provider.self_signed_certificate, cloud=cloud)
    with pytest.raises(CertificateError):
        CertificateBoundClient("x", oidc_provider.self_signed_certificate.public_only(), cloud=cloud)
    with pytest.raises(CertificateError):
        CertificateBoundClient("x", "cert.pem", cloud=cloud)
    for bad in [dict(), dict(resource=""), dict(scopes="api:read"), dict(scopes=["a b"])]:
        with pytest.raises(ConfigurationError):
            self_signed_client.acquire_token(**bad)


def test_from_discovery_shortcut(oidc_provider):
    with CertificateBoundClient.from_discovery(oidc_provider.discovery_url, oidc_provider.pki_client_id,
                                               oidc_provider.pki_certificate,
                                               ca_bundle=oidc_provider.ca_bundle) as client:
        assert client.acquire_token(oidc_provider.resource).is_bound


# -- the same client against the lab's Entra-like authority ------------------------------------
def test_lab_authority_is_discoverable_as_a_generic_rfc8705_server(authority):
    # Entra's OpenID document has no RFC 8705 fields; the lab's RFC 8414 document (generic path) has
    cloud = Cloud.from_discovery(f"{authority.issuer}/.well-known/oauth-authorization-server",
                                 ca_bundle=authority.ca_bundle)
    assert cloud.issuer == authority.issuer
    assert cloud.mtls_token_endpoint("ignored") == authority.token_endpoint("mtls")
    assert cloud.token_endpoint("ignored") == authority.token_endpoint("login")


def test_entra_binds_per_request_rfc8705_servers_per_registration(authority, oidc_provider, cloud):
    from mtlspop_lab.flows import call_resource
    app = authority.directory.register_app("interop-generic-client")
    lab_cloud = Cloud.from_discovery(f"{authority.issuer}/.well-known/oauth-authorization-server",
                                     ca_bundle=authority.ca_bundle)
    graph = "https://graph.microsoft.com"
    with CertificateBoundClient(app.client_id, app.certificate, cloud=lab_cloud) as client:
        result = client.acquire_token(scopes=[f"{graph}/.default"])  # sends token_type=mtls_pop
    assert result.token_type == "mtls_pop" and result.is_bound and "mtls_pop" in result.bound_by
    response = call_resource(authority.resource_url, result, ca_bundle=authority.ca_bundle)
    assert response.ok and response.json()["scheme"] == "mtls_pop"
    # Without Entra's token_type=mtls_pop the lab (like Entra) issues an unbound Bearer token...
    with CertificateBoundClient(app.client_id, app.certificate, cloud=lab_cloud, ask_mtls_pop=False) as client:
        with pytest.raises(AuthorityError) as info:
            client.acquire_token(scopes=[f"{graph}/.default"])
    assert info.value.code == "token_not_bound"
    # ...while oidc-provider binds because the client is registered for bound tokens.
    with CertificateBoundClient(oidc_provider.pki_client_id, oidc_provider.pki_certificate, cloud=cloud,
                                ask_mtls_pop=False) as client:
        assert client.acquire_token(oidc_provider.resource).is_bound


def test_entra_flow_refuses_a_discovered_server_and_names_the_generic_client(cloud, self_signed_client):
    from mtlspop_lab import MtlsPopTokenAcquirer
    from mtlspop_lab.errors import ConfigurationError
    certificate = self_signed_client.certificate
    with pytest.raises(ConfigurationError) as info:
        MtlsPopTokenAcquirer.for_confidential_client("any-client", "any-tenant", certificate, cloud=cloud)
    assert info.value.code == "not_an_entra_authority" and "CertificateBoundClient" in info.value.fix
