"""The lab's protected API told to trust another issuer: oidc-provider tokens over mTLS.

``authority.trust_issuer(issuer, jwks)`` makes the protected API verify that
issuer's tokens with its JWKS; audience and binding rules stay the lab's own.
An RFC 8705 token comes labelled Bearer, so for a trusted foreign issuer the
API takes it with the ``Bearer`` scheme (RFC 8705 section 3) as well as
``mtls_pop``, and still demands the certificate its ``cnf`` names.
"""

from __future__ import annotations

import pytest

from mtlspop_lab.cloud import Cloud
from mtlspop_lab.errors import ConfigurationError, ResourceAccessError
from mtlspop_lab.flows import call_resource
from mtlspop_lab.flows.rfc8705 import CertificateBoundClient

LAB_API = "api://mtlspop-lab-api"


@pytest.fixture(scope="module")
def foreign_result(oidc_provider):
    cloud = Cloud.from_discovery(oidc_provider.issuer, ca_bundle=oidc_provider.ca_bundle)
    with CertificateBoundClient(oidc_provider.self_signed_client_id, oidc_provider.self_signed_certificate,
                                cloud=cloud) as client:
        return client.acquire_token(LAB_API, scopes=[oidc_provider.resource_scope])


@pytest.fixture
def lab(fresh_authority, oidc_provider):
    # TLS layer: the resource listener must accept the oidc-provider client's self-signed certificate
    fresh_authority.trust_client_certificate(oidc_provider.self_signed_certificate)
    return fresh_authority


def _call(lab, result, **kwargs):
    return call_resource(lab.resource_url, result, ca_bundle=lab.ca_bundle, **kwargs)


def test_foreign_token_is_refused_until_its_issuer_is_trusted(lab, foreign_result):
    with pytest.raises(ResourceAccessError) as info:
        _call(lab, foreign_result)
    assert info.value.status == 401


@pytest.mark.parametrize("scheme", [None, "mtls_pop"])  # None: the result's own, Bearer
def test_trusted_issuer_token_is_accepted_with_its_certificate(lab, oidc_provider, foreign_result, scheme):
    lab.trust_issuer(oidc_provider.issuer, oidc_provider.jwks())
    response = _call(lab, foreign_result, scheme=scheme)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["aud"] == LAB_API
    assert body["x5t#S256"] == oidc_provider.self_signed_certificate.x5t_s256
    assert body["sub"] == oidc_provider.self_signed_client_id


def test_trusted_issuer_token_is_refused_with_another_certificate(lab, oidc_provider, foreign_result):
    lab.trust_issuer(oidc_provider.issuer, oidc_provider.jwks())
    thief = lab.directory.register_app("interop-thief").certificate  # passes TLS, wrong cnf
    with pytest.raises(ResourceAccessError) as info:
        _call(lab, foreign_result, certificate=thief)
    assert info.value.status == 401 and info.value.code == "certificate_mismatch"


def test_trusted_issuer_token_needs_a_certificate(lab, oidc_provider, foreign_result):
    lab.trust_issuer(oidc_provider.issuer, oidc_provider.jwks())
    bare = foreign_result.__class__(access_token=foreign_result.access_token, token_type="Bearer",
                                    expires_on=foreign_result.expires_on)  # same token, no certificate
    with pytest.raises(ResourceAccessError) as info:
        _call(lab, bare)
    assert info.value.status == 401 and "no client certificate" in info.value.message


def test_trusted_issuer_token_for_another_audience_is_refused(lab, oidc_provider):
    lab.trust_issuer(oidc_provider.issuer, oidc_provider.jwks())
    cloud = Cloud.from_discovery(oidc_provider.issuer, ca_bundle=oidc_provider.ca_bundle)
    with CertificateBoundClient(oidc_provider.self_signed_client_id, oidc_provider.self_signed_certificate,
                                cloud=cloud) as client:
        other = client.acquire_token(oidc_provider.resource)  # aud https://api.interop.example
    with pytest.raises(ResourceAccessError) as info:
        _call(lab, other)
    assert "wrong audience" in info.value.message


def test_trust_is_per_issuer_and_per_key(lab, oidc_provider, foreign_result):
    lab.trust_issuer("https://other-issuer.example", oidc_provider.jwks())  # right keys, other issuer
    with pytest.raises(ResourceAccessError):
        _call(lab, foreign_result)
    lab.trust_issuer(oidc_provider.issuer, lab.jwks)  # right issuer, wrong keys
    with pytest.raises(ResourceAccessError) as info:
        _call(lab, foreign_result)
    assert info.value.status == 401


@pytest.mark.parametrize("issuer, jwks", [("", {"keys": []}), ("https://x.example", {"keys": "nope"}),
                                          ("https://x.example", None), (None, {"keys": []})])
def test_trust_issuer_refuses_bad_input(fresh_authority, issuer, jwks):
    with pytest.raises(ConfigurationError):
        fresh_authority.trust_issuer(issuer, jwks)
