"""azure-identity, unchanged, against the embedded authority: Bearer tokens with documented settings.

ManagedIdentityCredential (system- and user-assigned, IMDS v1), CertificateCredential
(private_key_jwt) and ClientAssertionCredential (FIC leg 2, fed by a leg-1 token), sync and
async. What they all get is Bearer: azure-identity 1.27 has no mTLS PoP.
"""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientAssertionCredential, ManagedIdentityCredential
from azure.identity import aio as identity_aio

import mtlspop_lab as lab

GRAPH = "https://graph.microsoft.com"
GRAPH_SCOPE = f"{GRAPH}/.default"

EXCHANGE = "api://AzureADTokenExchange"


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def pem_of(certificate) -> bytes:
    return certificate.pem.encode() + certificate.private_key_pem()


def test_managed_identity_credential_system_assigned(authority, imds_env):
    credential = ManagedIdentityCredential()
    info = credential.get_token_info(GRAPH_SCOPE)
    sami = authority.directory.find_managed_identity("system_assigned")
    assert info.token_type == "Bearer" and "cnf" not in claims(info.token)
    assert claims(info.token)["oid"] == sami.object_id and claims(info.token)["aud"] == GRAPH
    assert info.expires_on > time.time() + 60
    assert lab.verify_token(info.token, authority.jwks, audience=GRAPH) is not None
    imds = [e for e in authority.trace if e.listener == "imds"]
    assert len(imds) == 1 and "/metadata/identity/oauth2/token" in imds[0].path and imds[0].status == 200


@pytest.mark.parametrize("selector", ["client_id", "object_id", "resource_id"])
def test_managed_identity_credential_user_assigned(authority, imds_env, selector):
    uami = authority.directory.user_assigned[1]
    credential = ManagedIdentityCredential(**{"client_id": {"client_id": uami.client_id},
                                              "object_id": {"identity_config": {"object_id": uami.object_id}},
                                              "resource_id": {"identity_config": {"resource_id": uami.resource_id}},
                                              }[selector])
    token = credential.get_token_info(GRAPH_SCOPE).token
    assert claims(token)["oid"] == uami.object_id
    # IMDS writes the resource id in lower case "resourcegroups", as Entra does
    assert claims(token)["xms_mirid"].lower() == uami.resource_id.lower()


def test_managed_identity_credential_unknown_identity_is_refused(authority, imds_env):
    credential = ManagedIdentityCredential(client_id="00000000-0000-0000-0000-00000000dead")
    with pytest.raises(ClientAuthenticationError):
        credential.get_token_info(GRAPH_SCOPE)
    assert [e.status for e in authority.trace if e.listener == "imds"][-1] == 400


def test_certificate_credential_private_key_jwt(authority, app, sdk_settings):
    credential = CertificateCredential(app.tenant_id, app.client_id, certificate_data=pem_of(app.certificate),
                                       **sdk_settings)
    info = credential.get_token_info(GRAPH_SCOPE)
    assert info.token_type == "Bearer" and "cnf" not in claims(info.token)
    assert claims(info.token)["oid"] == app.object_id
    token_posts = [e for e in authority.trace if e.method == "POST"]
    assert len(token_posts) == 1 and token_posts[0].listener == "login"
    assert token_posts[0].client_cert_x5t is None          # private_key_jwt: no TLS client certificate
    assert "jwt-bearer" in token_posts[0].request_body
    assert credential.get_token_info(GRAPH_SCOPE).token == info.token      # azure-identity's own cache


def test_certificate_credential_with_an_unregistered_certificate_is_refused(authority, app, sdk_settings):
    stranger = lab.Certificate.create_self_signed("CN=not-registered")
    credential = CertificateCredential(app.tenant_id, app.client_id, certificate_data=pem_of(stranger),
                                       **sdk_settings)
    with pytest.raises(ClientAuthenticationError) as caught:
        credential.get_token_info(GRAPH_SCOPE)
    assert "AADSTS700027" in str(caught.value)


@pytest.mark.parametrize("leg1_by", ["lab", "azure_identity"])
def test_client_assertion_credential_fic_leg2(authority, app, imds_env, sdk_settings, leg1_by):
    """FIC with Bearer: a managed identity's unbound token for api://AzureADTokenExchange is the
    jwt-bearer assertion (Entra's "managed identity as a federated credential")."""
    mi = lab.ManagedIdentityId.system_assigned()
    authority.directory.add_federated_credential(app, trusted=mi)
    if leg1_by == "lab":
        leg1 = lab.FicLeg1Acquirer.for_managed_identity(mi, cloud=authority.cloud)
        assertion = lambda: leg1.acquire_assertion(use_pop=False).access_token  # noqa: E731
    else:
        leg1 = ManagedIdentityCredential()
        assertion = lambda: leg1.get_token(f"{EXCHANGE}/.default").token  # noqa: E731
    try:
        credential = ClientAssertionCredential(app.tenant_id, app.client_id, assertion, **sdk_settings)
        info = credential.get_token_info(GRAPH_SCOPE)
    finally:
        leg1.close()
    final = claims(info.token)
    assert info.token_type == "Bearer" and "cnf" not in final
    assert final["oid"] == app.object_id and final["aud"] == GRAPH
    leg2 = [e for e in authority.trace if e.method == "POST" and e.client_id == app.client_id]
    assert len(leg2) == 1 and leg2[0].status == 200 and leg2[0].client_cert_x5t is None


def test_client_assertion_credential_with_a_bound_leg1_gets_an_unbound_bearer_token(authority, app, sdk_settings):
    """A PoP leg-1 token sent as a plain jwt-bearer assertion (the guide's bindCertificate: false):
    leg 2 answers Bearer, a token bound to nothing - the SDK's credential cannot ask for more."""
    mi = lab.ManagedIdentityId.system_assigned()
    authority.directory.add_federated_credential(app, trusted=mi)
    leg1 = lab.FicLeg1Acquirer.for_managed_identity(mi, cloud=authority.cloud)
    try:
        bound = leg1.acquire_assertion()
    finally:
        leg1.close()
    assert bound.is_pop
    credential = ClientAssertionCredential(app.tenant_id, app.client_id, lambda: bound.access_token,
                                           **sdk_settings)
    info = credential.get_token_info(GRAPH_SCOPE)
    assert info.token_type == "Bearer"
    assert "cnf" not in lab.decode_token(info.token).claims


def test_client_assertion_credential_without_a_federated_credential_is_refused(authority, app, imds_env,
                                                                               sdk_settings):
    leg1 = ManagedIdentityCredential()
    credential = ClientAssertionCredential(app.tenant_id, app.client_id,
                                           lambda: leg1.get_token(f"{EXCHANGE}/.default").token, **sdk_settings)
    with pytest.raises(ClientAuthenticationError) as caught:
        credential.get_token_info(GRAPH_SCOPE)
    assert "AADSTS70021" in str(caught.value)


def test_async_credentials(authority, app, imds_env, sdk_settings):
    """azure.identity.aio over aiohttp: the same documented settings, the same Bearer tokens."""
    async def main():
        async with identity_aio.ManagedIdentityCredential() as mi, \
                identity_aio.CertificateCredential(app.tenant_id, app.client_id,
                                                   certificate_data=pem_of(app.certificate), **sdk_settings) as cc:
            return await mi.get_token_info(GRAPH_SCOPE), await cc.get_token_info(GRAPH_SCOPE)

    mi_info, cc_info = asyncio.run(main())
    assert mi_info.token_type == cc_info.token_type == "Bearer"
    assert claims(mi_info.token)["oid"] == authority.directory.find_managed_identity("system_assigned").object_id
    assert claims(cc_info.token)["oid"] == app.object_id
