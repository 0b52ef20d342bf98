"""Unmodified msal 1.39 against the embedded authority: the interoperability promise."""

from __future__ import annotations

import jwt
import msal
import pytest
import requests

from mtlspop_lab.certs import CertificateAuthority
from mtlspop_lab.redact import contains_secret

GRAPH = "https://graph.microsoft.com"


def _claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def _credential(cert):
    return {"private_key": cert.private_key_pem().decode(), "thumbprint": cert.thumbprint}


def _verify(authority, token, audience):
    """Full verification with the published JWKS, the way a resource server does it."""
    key = jwt.PyJWKSet.from_dict(authority.jwks).keys[0].key
    return jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=authority.issuers)


def test_confidential_client_certificate_gets_bearer(authority, app, session_for):
    cca = msal.ConfidentialClientApplication(
        app.client_id, client_credential=_credential(app.certificate),
        authority=f"{authority.login_url}/{authority.tenant_id}", instance_discovery=False,
        http_client=session_for())
    result = cca.acquire_token_for_client([f"{GRAPH}/.default"])
    assert result.get("token_type") == "Bearer", result.get("error_description")
    claims = _verify(authority, result["access_token"], GRAPH)
    assert claims["appid"] == app.client_id and "azp" not in claims     # Graph: a v1.0 token
    assert claims["oid"] == claims["sub"] == app.object_id
    assert claims["tid"] == authority.tenant_id and claims["idtyp"] == "app" and claims["ver"] == "1.0"
    assert "cnf" not in claims
    header = jwt.get_unverified_header(result["access_token"])
    assert header["kid"] == authority.jwks["keys"][0]["kid"] and header["typ"] == "JWT"
    posts = [e for e in authority.trace if e.method == "POST"]
    assert posts[-1].grant_type == "client_credentials" and posts[-1].listener == "login"
    # the client assertion and the token are in the trace only in redacted form
    assert "client_assertion" in posts[-1].request_body
    assert not contains_secret(repr(authority.trace))
    assert result["access_token"] not in repr(authority.trace)


def test_confidential_client_over_mtls_gets_mtls_pop_bound_to_tls_cert(authority, app, session_for):
    cert = app.certificate
    cca = msal.ConfidentialClientApplication(
        app.client_id, client_credential=_credential(cert),
        authority=f"{authority.mtls_url}/{authority.tenant_id}", instance_discovery=False,
        http_client=session_for(cert))
    result = cca.acquire_token_for_client([f"{GRAPH}/.default"],
                                          data={"token_type": "mtls_pop", "key_id": cert.x5t_s256})
    assert result.get("token_type") == "mtls_pop", result.get("error_description")
    claims = _verify(authority, result["access_token"], GRAPH)
    assert claims["cnf"] == {"x5t#S256": cert.x5t_s256}
    post = [e for e in authority.trace if e.method == "POST"][-1]
    assert post.listener == "mtls" and post.client_cert_x5t == cert.x5t_s256 and post.token_type == "mtls_pop"


def test_confidential_client_regional_listener_binds_too(authority, app, session_for):
    cert = app.certificate
    cca = msal.ConfidentialClientApplication(
        app.client_id, client_credential=_credential(cert),
        authority=f"{authority.regional_urls['eastus2']}/{authority.tenant_id}", instance_discovery=False,
        http_client=session_for(cert))
    result = cca.acquire_token_for_client([f"{GRAPH}/.default"], data={"token_type": "mtls_pop"})
    assert result["token_type"] == "mtls_pop"
    assert _claims(result["access_token"])["cnf"]["x5t#S256"] == cert.x5t_s256
    assert authority.count_requests("mtls:eastus2", "/oauth2/v2.0/token") == 1
    assert authority.count_requests("mtls", "/oauth2/v2.0/token") == 0


def test_pop_to_bearer_only_resource_is_refused_with_392196(authority, app, session_for):
    cert = app.certificate
    cca = msal.ConfidentialClientApplication(
        app.client_id, client_credential=_credential(cert),
        authority=f"{authority.mtls_url}/{authority.tenant_id}", instance_discovery=False,
        http_client=session_for(cert))
    result = cca.acquire_token_for_client(["https://legacy.contoso.example/.default"],
                                          data={"token_type": "mtls_pop"})
    assert result["error"] == "invalid_request" and result["error_codes"] == [392196]
    assert result["error_description"].startswith("AADSTS392196:")


@pytest.fixture
def imds_env(authority, monkeypatch):
    # configuration, not protocol: msal reads this to find IMDS
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", authority.imds_url)
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT"):
        monkeypatch.delenv(name, raising=False)


def _mi_client(identity):
    return msal.ManagedIdentityClient(identity, http_client=requests.Session())


def test_managed_identity_client_system_assigned(authority, imds_env):
    result = _mi_client(msal.SystemAssignedManagedIdentity()).acquire_token_for_client(resource=GRAPH)
    assert result.get("token_type") == "Bearer", result
    claims = _verify(authority, result["access_token"], GRAPH)
    sami = authority.directory.system_assigned
    assert claims["oid"] == sami.object_id and claims["appid"] == sami.client_id
    assert claims["xms_mirid"] == sami.resource_id.replace("/resourceGroups/", "/resourcegroups/") and "cnf" not in claims
    assert authority.count_requests("imds", "/metadata/identity/oauth2/token") == 1


@pytest.mark.parametrize("id_type", ["client_id", "object_id", "resource_id"])
def test_managed_identity_client_user_assigned_each_id_type(authority, imds_env, id_type):
    uami = authority.directory.user_assigned[1]
    identity = msal.UserAssignedManagedIdentity(**{id_type: getattr(uami, id_type)})
    result = _mi_client(identity).acquire_token_for_client(resource="https://vault.azure.net")
    assert result.get("token_type") == "Bearer", result
    claims = _verify(authority, result["access_token"], "https://vault.azure.net")
    assert claims["oid"] == uami.object_id and claims["appid"] == uami.client_id
    assert claims["xms_mirid"] == uami.resource_id.replace("/resourceGroups/", "/resourcegroups/")


def test_managed_identity_client_unknown_uami_gets_identity_not_found(authority, imds_env):
    identity = msal.UserAssignedManagedIdentity(client_id="00000000-0000-0000-0000-000000000000")
    result = _mi_client(identity).acquire_token_for_client(resource=GRAPH)
    assert "access_token" not in result
    assert "Identity not found" in result.get("error_description", "")


def test_works_with_unrelated_requests_ca_bundle(authority, app, tmp_path, monkeypatch, session_for):
    """REQUESTS_CA_BUNDLE pointing elsewhere must not break the lab's own sessions."""
    unrelated = tmp_path / "unrelated-ca.pem"
    unrelated.write_text(CertificateAuthority("some corporate CA").pem)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(unrelated))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(unrelated))
    # a naive session (trust_env on) is overridden by the env var and fails: the trap is real
    naive = requests.Session()
    naive.verify = authority.ca_bundle
    with pytest.raises(requests.exceptions.SSLError):
        naive.get(f"{authority.authority_url()}/v2.0/.well-known/openid-configuration")
    naive.close()
    cert = app.certificate
    cca = msal.ConfidentialClientApplication(
        app.client_id, client_credential=_credential(cert),
        authority=f"{authority.mtls_url}/{authority.tenant_id}", instance_discovery=False,
        http_client=session_for(cert))
    result = cca.acquire_token_for_client([f"{GRAPH}/.default"], data={"token_type": "mtls_pop"})
    assert result.get("token_type") == "mtls_pop", result.get("error_description")
