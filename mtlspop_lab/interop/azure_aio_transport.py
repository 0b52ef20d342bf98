"""The async transport that presents the binding certificate (aiohttp, azure-core's default).

Same rule as :mod:`.azure_transport`: the token in the request's
``Authorization`` header decides the certificate of the TLS handshake. One
``aiohttp.ClientSession`` per certificate, whose connector carries the lab's
``SSLContext`` (TLS 1.2+, the cloud's trust, the certificate and its key);
azure-core's ``AioHttpTransport`` sends through it. Sessions are created
inside the running event loop, on first use, and ``await close()`` closes
them all.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from .azure_extra import require

require("azure.core", "aiohttp")

import aiohttp  # noqa: E402
from azure.core.pipeline.transport import AioHttpTransport, AsyncHttpTransport  # noqa: E402

from ..transport import shared_ssl_context  # noqa: E402
from .azure_transport import certificate_for_request, check_credential  # noqa: E402

_MAX_CERTIFICATES = 8


class AsyncMtlsPopTransport(AsyncHttpTransport):
    """An ``AioHttpTransport`` per binding certificate, chosen by the token in each request."""

    def __init__(self, credential, *, connection_verify: str | None = None):
        check_credential(credential)
        self._credential = credential
        self._ca_bundle = connection_verify if connection_verify is not None else credential.cloud.ca_bundle
        self._inner: OrderedDict[str | None, tuple[aiohttp.ClientSession, AioHttpTransport]] = OrderedDict()
        self._lock = asyncio.Lock()

    async def _transport_for(self, certificate) -> AioHttpTransport:
        key = certificate.x5t_s256 if certificate is not None else None
        async with self._lock:
            pair = self._inner.get(key)
            if pair is None:
                context = shared_ssl_context(self._ca_bundle, certificate)
                session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
                pair = self._inner[key] = (session, AioHttpTransport(session=session, session_owner=False))
                while len(self._inner) > _MAX_CERTIFICATES:
                    old, _ = self._inner.popitem(last=False)[1]
                    await old.close()
            self._inner.move_to_end(key)
            return pair[1]

    async def send(self, request, **kwargs):
        certificate = certificate_for_request(self._credential, request.headers)
        transport = await self._transport_for(certificate)
        return await transport.send(request, **kwargs)

    @property
    def presented_certificates(self) -> list[str]:
        return list(self._inner)

    async def open(self) -> None:
        """Sessions open on first use, per certificate."""

    async def close(self) -> None:
        """Close every session. Idempotent."""
        async with self._lock:
            sessions = [session for session, _ in self._inner.values()]
            self._inner.clear()
        for session in sessions:
            await session.close()

    async def __aenter__(self) -> "AsyncMtlsPopTransport":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
