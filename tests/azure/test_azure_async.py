"""The same over AsyncPipelineClient and aiohttp: the certificate presented there too."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest
from azure.core import AsyncPipelineClient
from azure.core.credentials import AccessTokenInfo
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import HttpRequest

import mtlspop_lab as lab
from mtlspop_lab.flows import TokenCache

GRAPH = "https://graph.microsoft.com"
GRAPH_SCOPE = f"{GRAPH}/.default"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def resource_calls(authority) -> list:
    return [e for e in authority.trace if e.listener == "resource"]


async def get(client, authority, path):
    response = await client.send_request(HttpRequest("GET", authority.resource_url + path))
    await response.read()
    return response


def async_credential(authority, app, **kwargs):
    return lab.AsyncMtlsPopCredential(lab.MtlsPopCredential.for_confidential_client(
        app.client_id, app.tenant_id, app.certificate, cloud=authority.cloud, **kwargs))


def test_async_pipeline_gets_200_and_the_bearer_policy_is_refused(authority, app, resource_path):
    async def main():
        async with async_credential(authority, app) as credential:
            info = await credential.get_token_info(GRAPH_SCOPE)
            pop = lab.async_mtls_pop_pipeline_client(credential, authority.resource_url, GRAPH_SCOPE)
            bearer = AsyncPipelineClient(authority.resource_url,
                                         policies=[AsyncBearerTokenCredentialPolicy(credential, GRAPH_SCOPE)],
                                         transport=lab.AsyncMtlsPopTransport(credential))
            plain = AsyncPipelineClient(authority.resource_url,
                                        policies=[AsyncBearerTokenCredentialPolicy(credential, GRAPH_SCOPE)],
                                        transport=AioHttpTransport(connection_verify=authority.ca_bundle))
            async with pop, bearer, plain:
                answers = [await get(c, authority, resource_path) for c in (pop, pop, bearer, plain)]
            return info.token_type, [a.status_code for a in answers], answers[0].json()

    token_type, statuses, body = asyncio.run(main())
    assert isinstance(token_type, str) and token_type == "mtls_pop"
    assert statuses == [200, 200, 401, 401]
    assert body["scheme"] == "mtls_pop" and body["x5t#S256"] == app.certificate.x5t_s256
    calls = resource_calls(authority)
    assert [c.client_cert_x5t for c in calls] == [app.certificate.x5t_s256] * 3 + [None]
    assert calls[1].new_connection is False                   # aiohttp kept the mTLS connection
    assert authority.count_requests(path_contains="/oauth2/v2.0/token") == 1


def test_async_policy_refuses_a_mislabelled_bound_token(authority, app, resource_path):
    class Mislabelled:
        def __init__(self, inner):
            self.inner = inner

        async def get_token_info(self, *scopes, options=None):
            info = await self.inner.get_token_info(*scopes, options=options)
            return AccessTokenInfo(info.token, info.expires_on, token_type="Bearer")

    async def main():
        async with async_credential(authority, app) as credential:
            client = AsyncPipelineClient(authority.resource_url, transport=lab.AsyncMtlsPopTransport(credential),
                                         policies=[lab.AsyncMtlsPopAuthenticationPolicy(Mislabelled(credential),
                                                                                        GRAPH_SCOPE)])
            async with client:
                await get(client, authority, resource_path)

    with pytest.raises(lab.ConfigurationError) as caught:
        asyncio.run(main())
    assert caught.value.code == "bound_token_wrong_scheme"
    assert resource_calls(authority) == []


def test_async_refresh_before_expiry_and_rotation(authority, app, resource_path):
    authority.set_token_lifetime(7)
    new = lab.Certificate.create_self_signed(f"CN={app.client_id}-async-rotated")
    authority.directory.add_certificate(app, new)

    async def main():
        async with async_credential(authority, app, cache=TokenCache(refresh_margin_s=4)) as credential:
            transport = lab.AsyncMtlsPopTransport(credential)
            client = AsyncPipelineClient(authority.resource_url, transport=transport,
                                         policies=[lab.AsyncMtlsPopAuthenticationPolicy(credential, GRAPH_SCOPE)])
            async with client:
                first = await get(client, authority, resource_path)
                token1 = credential.sync.last_result
                refresh_on = (await credential.get_token_info(GRAPH_SCOPE)).refresh_on
                await asyncio.sleep(max(0.0, refresh_on + 0.2 - time.time()))
                still_valid = time.time() < token1.expires_on.timestamp()
                second = await get(client, authority, resource_path)
                token2 = credential.sync.last_result
                credential.sync.acquirer.rotate_certificate(new)
                third = await get(client, authority, resource_path)
                presented = list(transport.presented_certificates)
            return [r.status_code for r in (first, second, third)], token1, token2, still_valid, \
                third.json(), presented

    statuses, token1, token2, still_valid, rotated, presented = asyncio.run(main())
    assert statuses == [200, 200, 200]
    assert still_valid and digest(token2.access_token) != digest(token1.access_token)
    assert token2.source == "identity_provider"
    assert rotated["x5t#S256"] == new.x5t_s256
    assert presented == [app.certificate.x5t_s256, new.x5t_s256]
    assert [c.client_cert_x5t for c in resource_calls(authority)] == [app.certificate.x5t_s256] * 2 + [new.x5t_s256]
    assert authority.count_requests(path_contains="/oauth2/v2.0/token") == 3


def test_async_managed_identity_pipeline(authority, resource_path):
    async def main():
        sync = lab.MtlsPopCredential.for_managed_identity(lab.ManagedIdentityId.system_assigned(),
                                                          cloud=authority.cloud)
        async with lab.AsyncMtlsPopCredential(sync) as credential, \
                lab.async_mtls_pop_pipeline_client(credential, authority.resource_url, GRAPH_SCOPE) as client:
            answer = await get(client, authority, resource_path)
            return answer.status_code, answer.json(), sync.last_result.binding_certificate.x5t_s256

    status, body, bound_to = asyncio.run(main())
    assert status == 200 and body["x5t#S256"] == bound_to


def test_async_builders_refuse_the_wrong_credential(authority, app):
    sync = lab.MtlsPopCredential.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                         cloud=authority.cloud)
    with sync:
        with pytest.raises(lab.ConfigurationError):
            lab.async_mtls_pop_pipeline_client(sync, authority.resource_url, GRAPH_SCOPE)
        with pytest.raises(lab.ConfigurationError):
            lab.mtls_pop_pipeline_client(lab.AsyncMtlsPopCredential(sync), authority.resource_url, GRAPH_SCOPE)
        with pytest.raises(lab.ConfigurationError):
            lab.AsyncMtlsPopCredential(object())
