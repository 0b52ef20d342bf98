"""An azure-core credential over the lab's mTLS PoP acquirers.

azure-core asks a credential for a token with ``get_token_info(*scopes)``
(the ``SupportsTokenInfo`` protocol) and gets an ``AccessTokenInfo``: token,
``expires_on``, ``token_type`` and ``refresh_on``. azure-identity 1.27 has no
mTLS PoP, so its credentials only ever answer ``Bearer``. This adapter answers
``token_type="mtls_pop"`` from the lab's acquirers (managed identity, a
confidential client, or the FIC two-leg flow) and remembers which certificate
each token is bound to, because a bound token is useless without it: the
transport (:mod:`.azure_transport`) asks :meth:`MtlsPopCredential.certificate_for_token`
which certificate to present in the TLS handshake.

Why ``get_token`` refuses: the older ``TokenCredential.get_token`` returns an
``AccessToken`` (token and expiry only). The token type is lost there, and a
bound token would travel as ``Bearer``: the pitfall this module exists to avoid.

The acquirers are synchronous; :class:`AsyncMtlsPopCredential` runs them in
a worker thread so an event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
from collections import OrderedDict

from .azure_extra import require

require("azure.core")

from azure.core.credentials import AccessToken, AccessTokenInfo  # noqa: E402

from ..errors import ConfigurationError  # noqa: E402
from ..flows import FicLeg1Acquirer, FicLeg2Exchanger, ManagedIdentityId, MtlsPopTokenAcquirer  # noqa: E402

MTLS_POP = "mtls_pop"
DEFAULT_SUFFIX = "/.default"
_REMEMBERED = 32          # tokens whose binding certificate the credential remembers


def resource_for_scopes(scopes) -> str:
    """``("https://graph.microsoft.com/.default",)`` -> ``"https://graph.microsoft.com"``.

    App-only tokens (client credentials, managed identity) are asked for one
    resource at a time with its ``/.default`` scope, as azure-identity does.
    """
    if len(scopes) != 1 or not isinstance(scopes[0], str) or not scopes[0].endswith(DEFAULT_SUFFIX) \
            or len(scopes[0]) == len(DEFAULT_SUFFIX):
        raise ConfigurationError(
            f"An app-only token needs exactly one '<resource>/.default' scope; got {list(scopes)[:3]!r}.",
            cause="Client credentials and managed identities are granted per resource, with its .default scope.",
            fix='Pass one scope such as "https://graph.microsoft.com/.default".', code="invalid_scope")
    return scopes[0][: -len(DEFAULT_SUFFIX)]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class MtlsPopCredential:
    """``SupportsTokenInfo`` over a lab acquirer: ``mtls_pop`` tokens, each with its certificate.

    Build it with :meth:`for_managed_identity`, :meth:`for_confidential_client`
    or :meth:`for_fic`, or wrap an acquirer you own (``MtlsPopCredential(acquirer)``).
    Freshness is the acquirer's cache's: a token is reused until ``refresh_on``
    (5 minutes before expiry), then fetched again, before it expires.
    ``use_pop=False`` asks for Bearer tokens (for side-by-side comparisons).
    ``close_acquirer``: whether :meth:`close` closes ``acquirer`` too (the
    ``for_*`` constructors create theirs and say yes).
    """

    def __init__(self, acquirer: MtlsPopTokenAcquirer, *, use_pop: bool = True, close_acquirer: bool = False):
        if not isinstance(acquirer, MtlsPopTokenAcquirer):
            raise ConfigurationError("MtlsPopCredential wraps a lab MtlsPopTokenAcquirer.",
                                     cause=f"Got {type(acquirer).__name__}.",
                                     fix="Use MtlsPopCredential.for_managed_identity(...), .for_confidential_client(...) "
                                         "or .for_fic(leg1, leg2).")
        self.acquirer = acquirer          # e.g. credential.acquirer.rotate_certificate(new_certificate)
        self.use_pop = bool(use_pop)
        self._acquire = lambda resource: acquirer.acquire_token(resource, use_pop=self.use_pop)
        self._margin = acquirer.cache.refresh_margin_s
        self.cloud = acquirer.cloud
        self._owned = (acquirer,) if close_acquirer else ()
        self._bindings: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False
        self.last_result = None           # the latest TokenResult (redacted repr), for display and tests

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def for_managed_identity(cls, identity: ManagedIdentityId, *, cloud=None, use_pop: bool = True,
                             **kwargs) -> "MtlsPopCredential":
        """A managed identity: PoP through IMDS v2 (certificate issued by IMDS), Bearer through IMDS v1."""
        acquirer = MtlsPopTokenAcquirer.for_managed_identity(identity, cloud=cloud, **kwargs)
        return cls(acquirer, use_pop=use_pop, close_acquirer=True)

    @classmethod
    def for_confidential_client(cls, client_id: str, tenant_id: str, certificate, *, cloud=None,
                                region: str | None = None, use_pop: bool = True, **kwargs) -> "MtlsPopCredential":
        """An app registration with a certificate (with its private key); PoP over the mTLS endpoint."""
        acquirer = MtlsPopTokenAcquirer.for_confidential_client(client_id, tenant_id, certificate, cloud=cloud,
                                                                region=region, **kwargs)
        return cls(acquirer, use_pop=use_pop, close_acquirer=True)

    @classmethod
    def for_fic(cls, leg1: FicLeg1Acquirer, leg2: FicLeg2Exchanger, *, use_pop: bool = True) -> "MtlsPopCredential":
        """The FIC two-leg flow: leg 1's PoP assertion exchanged by ``leg2`` for each resource.

        The tokens are bound to leg 1's certificate. The credential does not own
        ``leg1``/``leg2``: close them yourself.
        """
        if not isinstance(leg1, FicLeg1Acquirer) or not isinstance(leg2, FicLeg2Exchanger):
            raise ConfigurationError("for_fic(leg1, leg2) takes a FicLeg1Acquirer and a FicLeg2Exchanger.",
                                     cause=f"Got {type(leg1).__name__} and {type(leg2).__name__}.")
        self = cls(leg1.acquirer, use_pop=use_pop)
        self._acquire = lambda resource: leg2.exchange_assertion_for_access_token(
            leg1.acquire_assertion(), resource, use_pop=self.use_pop)
        self._margin = min(leg2.cache.refresh_margin_s, leg1.acquirer.cache.refresh_margin_s)
        return self

    # -- azure-core's protocols ------------------------------------------------------------------
    def get_token_info(self, *scopes: str, options=None) -> AccessTokenInfo:
        """The token for one ``<resource>/.default`` scope, typed ``mtls_pop`` (or ``Bearer``)."""
        self._check_open()
        _check_options(options)
        result = self._acquire(resource_for_scopes(scopes))
        self._remember(result)
        # whole seconds, as azure-core wants: expiry rounded down, refresh rounded up, so that
        # refresh_on is never earlier than the moment the cache itself starts refreshing
        expires_at = result.expires_on.timestamp()
        refresh_at = expires_at - self._margin
        if result.refresh_on is not None:
            refresh_at = min(refresh_at, result.refresh_on.timestamp())
        expires_on, refresh_on = int(math.floor(expires_at)), int(math.ceil(refresh_at))
        return AccessTokenInfo(result.access_token, expires_on, token_type=result.token_type,
                               refresh_on=refresh_on)

    def get_token(self, *scopes: str, claims=None, tenant_id=None, enable_cae: bool = False, **kwargs) -> AccessToken:
        """Refused for PoP: an ``AccessToken`` cannot say that the token is bound."""
        if self.use_pop:
            raise ConfigurationError(
                "get_token() cannot carry an mtls_pop token: AccessToken has no token_type.",
                cause="Callers of the older TokenCredential protocol write 'Authorization: Bearer <token>'; "
                      "a bound token sent that way is refused by the resource.",
                fix="Use get_token_info() (azure-core >= 1.31's SupportsTokenInfo) with "
                    "MtlsPopAuthenticationPolicy.", code="token_type_lost")
        info = self.get_token_info(*scopes, options={"claims": claims} if claims else None)
        return AccessToken(info.token, info.expires_on)

    # -- what the transport needs --------------------------------------------------------------
    def certificate_for_token(self, token: str):
        """The certificate (with its private key) ``token`` is bound to, for the TLS handshake;
        None for a Bearer token or a token this credential did not hand out."""
        with self._lock:
            return self._bindings.get(_digest(token)) if isinstance(token, str) else None

    def _remember(self, result) -> None:
        self.last_result = result
        if result._credential is None:
            return
        with self._lock:
            key = _digest(result.access_token)
            self._bindings[key] = result._credential
            self._bindings.move_to_end(key)
            while len(self._bindings) > _REMEMBERED:
                self._bindings.popitem(last=False)

    # -- lifecycle -----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError("This credential is closed.", fix="Create a new credential.",
                                     code="credential_closed")

    def close(self) -> None:
        """Forget the certificates and close the acquirers this credential created. Idempotent."""
        self._closed = True
        with self._lock:
            self._bindings.clear()
        for acquirer in self._owned:
            acquirer.close()

    def __enter__(self) -> "MtlsPopCredential":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = MTLS_POP if self.use_pop else "Bearer"
        return f"<MtlsPopCredential {kind} on {self.cloud.describe()}{' closed' if self._closed else ''}>"


class AsyncMtlsPopCredential:
    """The async face (``AsyncSupportsTokenInfo``) of a :class:`MtlsPopCredential`.

    Each acquisition runs in a worker thread (``asyncio.to_thread``): the lab's
    acquirers are synchronous, and an event loop must never wait on a socket.
    ``close()`` closes the wrapped credential.
    """

    def __init__(self, credential: MtlsPopCredential):
        if not isinstance(credential, MtlsPopCredential):
            raise ConfigurationError("AsyncMtlsPopCredential wraps a MtlsPopCredential.",
                                     cause=f"Got {type(credential).__name__}.",
                                     fix="AsyncMtlsPopCredential(MtlsPopCredential.for_managed_identity(...)).")
        self.sync = credential

    @property
    def cloud(self):
        return self.sync.cloud

    async def get_token_info(self, *scopes: str, options=None) -> AccessTokenInfo:
        return await asyncio.to_thread(self.sync.get_token_info, *scopes, options=options)

    async def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        return await asyncio.to_thread(self.sync.get_token, *scopes, **kwargs)

    def certificate_for_token(self, token: str):
        return self.sync.certificate_for_token(token)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> "AsyncMtlsPopCredential":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<Async{repr(self.sync)[1:]}"


def _check_options(options) -> None:
    """azure-core's TokenRequestOptions: CAE claims challenges and other tenants are not served here."""
    options = options or {}
    if options.get("claims"):
        raise ConfigurationError("A claims challenge (CAE) cannot be met by the lab's acquirers.",
                                 cause="The resource asked for a token with extra claims; the lab's flows "
                                       "ask for app-only tokens without claims.",
                                 fix="Retry without claims, or acquire with azure-identity for CAE.",
                                 code="claims_not_supported")
    if options.get("pop"):
        raise ConfigurationError("azure-core's 'pop' option is the signed-HTTP-request PoP (SHR), not mTLS PoP.",
                                 fix="Leave it out: this credential's tokens are mTLS-bound.",
                                 code="pop_kind_not_supported")
