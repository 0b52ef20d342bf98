"""Azure SDK pipelines with mTLS PoP, assembled: credential + policy + transport.

An Azure SDK client is an azure-core pipeline: policies (headers, retry,
authentication, logging...) in front of a transport. For mTLS PoP two of them
change: the authentication policy writes ``Authorization: mtls_pop <token>``
(:mod:`.azure_policy`) and the transport presents the certificate the token is
bound to (:mod:`.azure_transport`, :mod:`.azure_aio_transport`). The
credential (:mod:`.azure_credential`) feeds both. These two functions build a
``PipelineClient`` / ``AsyncPipelineClient`` from one credential, in the
order Azure SDK clients use (retry before authentication, so a retried
request gets a current token).

What would change when the SDK gains native mTLS PoP: the credential would
come from azure-identity, the policy from azure-core, and the transport
would be told the certificate by the credential. The shape stays.
"""

from __future__ import annotations

from .azure_extra import require

require("azure.core")

from azure.core import AsyncPipelineClient, PipelineClient  # noqa: E402
from azure.core.pipeline.policies import AsyncRetryPolicy, HeadersPolicy, RetryPolicy, UserAgentPolicy  # noqa: E402

from ..errors import ConfigurationError  # noqa: E402
from .azure_credential import AsyncMtlsPopCredential, MtlsPopCredential  # noqa: E402
from .azure_policy import AsyncMtlsPopAuthenticationPolicy, MtlsPopAuthenticationPolicy  # noqa: E402
from .azure_transport import MtlsPopTransport  # noqa: E402

USER_AGENT = "mtlspop-lab"


def mtls_pop_pipeline_client(credential: MtlsPopCredential, base_url: str, scope: str, *,
                             retry_total: int = 3) -> PipelineClient:
    """A ``PipelineClient`` that calls ``base_url`` with ``credential``'s bound tokens and certificates.

    Close it (``with client:`` or ``client.close()``) to close its connections;
    the credential stays yours to close.
    """
    if not isinstance(credential, MtlsPopCredential):
        raise ConfigurationError("mtls_pop_pipeline_client needs a MtlsPopCredential.",
                                 cause=f"Got {type(credential).__name__}.")
    policies = [HeadersPolicy(), UserAgentPolicy(sdk_moniker=USER_AGENT), RetryPolicy(retry_total=retry_total),
                MtlsPopAuthenticationPolicy(credential, scope)]
    return PipelineClient(base_url, policies=policies, transport=MtlsPopTransport(credential))


def async_mtls_pop_pipeline_client(credential: AsyncMtlsPopCredential, base_url: str, scope: str, *,
                                   retry_total: int = 3) -> AsyncPipelineClient:
    """The same over aiohttp: an ``AsyncPipelineClient`` (``async with client:``)."""
    # imported here: aiohttp is only needed on the async path (and is part of the same extra)
    from .azure_aio_transport import AsyncMtlsPopTransport

    if not isinstance(credential, AsyncMtlsPopCredential):
        raise ConfigurationError("async_mtls_pop_pipeline_client needs an AsyncMtlsPopCredential.",
                                 cause=f"Got {type(credential).__name__}.",
                                 fix="AsyncMtlsPopCredential(MtlsPopCredential.for_...(...)).")
    policies = [HeadersPolicy(), UserAgentPolicy(sdk_moniker=USER_AGENT), AsyncRetryPolicy(retry_total=retry_total),
                AsyncMtlsPopAuthenticationPolicy(credential, scope)]
    return AsyncPipelineClient(base_url, policies=policies, transport=AsyncMtlsPopTransport(credential))
