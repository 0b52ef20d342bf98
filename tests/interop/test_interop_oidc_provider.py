"""oidc-provider as a third-party RFC 8705 server: its metadata and its certificate-bound tokens.

These tests speak plain RFC 8705 with requests (no lab flow code), so they pin
down what the third-party server does; the lab's own flows and inspector are
tested against it in test_interop_rfc8705.py (and the protected API in
test_interop_trust_issuer.py).
"""

from __future__ import annotations

import jwt
import pytest

from mtlspop_lab.certs import Certificate
from mtlspop_lab.cloud import Cloud
from mtlspop_lab.errors import ConfigurationError


def _token_request(server, client_id, certificate, *, endpoint=None, **extra):
    with server.session(certificate) as s:
        return s.post(endpoint or server.mtls_token_endpoint, timeout=10,
                      data={"grant_type": "client_credentials", "client_id": client_id,
                            "resource": server.resource, "scope": server.resource_scope, **extra})


def test_discovery_publishes_rfc8705_metadata(oidc_provider):
    with oidc_provider.session() as s:
        doc = s.get(oidc_provider.discovery_url, timeout=10).json()
    assert doc["issuer"] == oidc_provider.issuer
    assert doc["tls_client_certificate_bound_access_tokens"] is True
    assert doc["mtls_endpoint_aliases"]["token_endpoint"] == oidc_provider.mtls_token_endpoint
    assert doc["token_endpoint"] == oidc_provider.token_endpoint != oidc_provider.mtls_token_endpoint
    assert {"self_signed_tls_client_auth", "tls_client_auth"} <= set(doc["token_endpoint_auth_methods_supported"])
    assert "client_credentials" in doc["grant_types_supported"]


def test_cloud_from_discovery_reads_the_mtls_alias(oidc_provider):
    cloud = Cloud.from_discovery(oidc_provider.issuer, ca_bundle=oidc_provider.ca_bundle)
    assert cloud.is_discovered and not cloud.is_local
    assert cloud.issuer == oidc_provider.issuer
    assert cloud.jwks_uri == oidc_provider.jwks_uri
    assert cloud.token_endpoint("ignored") == oidc_provider.token_endpoint
    assert cloud.mtls_token_endpoint("ignored") == oidc_provider.mtls_token_endpoint
    assert oidc_provider.mtls_url.startswith(cloud.mtls_base_url() + "/")  # the alias's origin
    assert cloud.issuer.endswith("/interop")  # a path, like Entra's tenant segment
    assert cloud.ca_bundle == oidc_provider.ca_bundle
    assert "RFC 8705" in cloud.describe()
    with pytest.raises(ConfigurationError) as info:
        cloud.mtls_token_endpoint("ignored", region="westus3")
    assert info.value.code == "unknown_region"
    # the full .well-known URL gives the same cloud
    same = Cloud.from_discovery(oidc_provider.discovery_url, ca_bundle=oidc_provider.ca_bundle)
    assert same.mtls_token_endpoint("x") == cloud.mtls_token_endpoint("x")


def test_cloud_from_discovery_refuses_a_document_fetched_under_another_url(oidc_provider):
    # The mTLS listener serves the same document, whose issuer is the other listener.
    with pytest.raises(ConfigurationError) as info:
        Cloud.from_discovery(oidc_provider.mtls_url, ca_bundle=oidc_provider.ca_bundle)
    assert info.value.code == "issuer_mismatch"


@pytest.mark.parametrize("which", ["self_signed", "pki"])
def test_certificate_bound_token_comes_as_bearer_with_cnf(oidc_provider, which):
    client_id = getattr(oidc_provider, f"{which}_client_id")
    certificate = getattr(oidc_provider, f"{which}_certificate")
    response = _token_request(oidc_provider, client_id, certificate)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"  # RFC 8705 leaves token_type alone: binding is in cnf
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["cnf"] == {"x5t#S256": certificate.x5t_s256}
    assert claims["aud"] == oidc_provider.resource
    assert claims["iss"] == oidc_provider.issuer
    assert claims["client_id"] == claims["sub"] == client_id
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"


def test_entra_shaped_scope_is_mapped_to_the_resource(oidc_provider):
    """`scope=<resource>/.default` and unknown `token_type=mtls_pop` still give a bound token."""
    response = _token_request(oidc_provider, oidc_provider.self_signed_client_id,
                              oidc_provider.self_signed_certificate, resource=None,
                              scope=f"{oidc_provider.resource}/.default", token_type="mtls_pop")
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == oidc_provider.resource
    assert claims["cnf"]["x5t#S256"] == oidc_provider.self_signed_certificate.x5t_s256


def _assert_invalid_client(response):
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


def test_self_signed_client_without_certificate_is_refused(oidc_provider):
    _assert_invalid_client(_token_request(oidc_provider, oidc_provider.self_signed_client_id, None))


def test_self_signed_client_with_an_unregistered_certificate_is_refused(oidc_provider):
    other = Certificate.create_self_signed("CN=interop-self-signed-client")  # same subject, other key
    _assert_invalid_client(_token_request(oidc_provider, oidc_provider.self_signed_client_id, other))


def test_pki_client_needs_a_certificate_from_the_trusted_ca(oidc_provider):
    forged = Certificate.create_self_signed(oidc_provider.pki_certificate.subject)  # right DN, no CA
    _assert_invalid_client(_token_request(oidc_provider, oidc_provider.pki_client_id, forged))
    wrong_dn = oidc_provider.ca.issue_client_certificate("CN=someone-else")  # right CA, wrong DN
    _assert_invalid_client(_token_request(oidc_provider, oidc_provider.pki_client_id, wrong_dn))


def test_server_tls_listener_never_sees_a_client_certificate(oidc_provider):
    """The ordinary token endpoint does not ask for a certificate, so mTLS clients fail there."""
    response = _token_request(oidc_provider, oidc_provider.self_signed_client_id,
                              oidc_provider.self_signed_certificate, endpoint=oidc_provider.token_endpoint)
    _assert_invalid_client(response)
