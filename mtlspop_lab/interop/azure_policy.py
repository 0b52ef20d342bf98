"""The pipeline policy that writes ``Authorization: mtls_pop <token>``.

azure-core's ``BearerTokenCredentialPolicy`` (1.41) reads ``token_type`` from
``AccessTokenInfo`` and then ignores it: every token goes out as ``Bearer``.
A bound token sent that way is refused by the resource (RFC 8705 section 3:
the scheme says how the token must be checked). This policy writes the
``mtls_pop`` scheme, and it refuses, before anything leaves the machine:

* a token whose type is not ``mtls_pop`` but that carries a ``cnf`` claim
  (a bound token mislabelled Bearer, e.g. by a cache that ignores the type):
  code ``bound_token_wrong_scheme``;
* an unbound Bearer token where PoP was asked for (a downgrade, MSAL.NET's
  ``token_type_mismatch``).

It asks the credential on every request rather than holding a token: the
credential's cache decides freshness (refreshing before ``refresh_on``), and
a rotated certificate takes effect on the next request, so the token in the
header and the certificate the transport presents always belong together.
"""

from __future__ import annotations

from .azure_extra import require

require("azure.core")

import jwt  # noqa: E402
from azure.core.pipeline.policies import AsyncHTTPPolicy, HTTPPolicy  # noqa: E402

from ..errors import ConfigurationError, TokenTypeMismatchError  # noqa: E402

MTLS_POP = "mtls_pop"


def is_bound(token: str) -> bool:
    """Whether the JWT carries a ``cnf`` claim (read without verification: used only to refuse)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.exceptions.PyJWTError:
        return False
    return isinstance(claims, dict) and isinstance(claims.get("cnf"), dict)


def mtls_pop_authorization(info) -> str:
    """``mtls_pop <token>`` for an ``AccessTokenInfo`` typed mtls_pop; a typed error otherwise."""
    token_type = str(getattr(info, "token_type", "Bearer") or "Bearer")
    if token_type.lower() == MTLS_POP:
        return f"{MTLS_POP} {info.token}"
    if is_bound(info.token):
        raise ConfigurationError(
            f"Refusing to send a certificate-bound token with the {token_type[:20]!r} scheme.",
            cause="The token carries cnf (it is bound to a certificate) but the credential labelled it "
                  f"{token_type[:20]!r}; the resource refuses a bound token under any scheme but mtls_pop.",
            fix="Use a credential that reports token_type='mtls_pop' (MtlsPopCredential), and never "
                "serve a PoP token from a cache entry that ignores the token type.",
            code="bound_token_wrong_scheme")
    raise TokenTypeMismatchError(
        f"You asked for token type mtls_pop, but received {token_type[:20]}.",
        cause="The credential returned an unbound token where MtlsPopAuthenticationPolicy needs a bound one "
              "(azure-identity credentials only issue Bearer tokens; some resources downgrade).",
        fix="Use MtlsPopCredential (use_pop=True), or BearerTokenCredentialPolicy for Bearer tokens.",
        code="token_type_mismatch")


def _check_https(request) -> None:
    if not request.http_request.url.lower().startswith("https://"):
        raise ConfigurationError("An mtls_pop token travels over TLS only.",
                                 cause=f"The request URL is not https: {request.http_request.url[:80]!r}.",
                                 fix="Call the resource's https URL.", code="https_required")


class MtlsPopAuthenticationPolicy(HTTPPolicy):
    """Writes ``Authorization: mtls_pop <token>`` from a ``SupportsTokenInfo`` credential.

    Pair it with :class:`~mtlspop_lab.interop.azure_transport.MtlsPopTransport`,
    which presents the certificate the token is bound to.
    """

    def __init__(self, credential, *scopes: str):
        super().__init__()
        if not hasattr(credential, "get_token_info"):
            raise ConfigurationError("MtlsPopAuthenticationPolicy needs a credential with get_token_info().",
                                     cause="Only SupportsTokenInfo reports the token type.",
                                     fix="Pass a MtlsPopCredential.", code="token_type_lost")
        if not scopes:
            raise ConfigurationError("At least one scope is required.",
                                     fix='e.g. MtlsPopAuthenticationPolicy(credential, "https://graph.microsoft.com/.default")')
        self._credential = credential
        self._scopes = scopes

    def on_request(self, request) -> None:
        _check_https(request)
        info = self._credential.get_token_info(*self._scopes)
        request.http_request.headers["Authorization"] = mtls_pop_authorization(info)

    def send(self, request):
        self.on_request(request)
        return self.next.send(request)


class AsyncMtlsPopAuthenticationPolicy(AsyncHTTPPolicy):
    """The same for ``AsyncPipelineClient`` and an async credential (``AsyncSupportsTokenInfo``)."""

    def __init__(self, credential, *scopes: str):
        super().__init__()
        MtlsPopAuthenticationPolicy(credential, *scopes)      # the same argument checks
        self._credential = credential
        self._scopes = scopes

    async def on_request(self, request) -> None:
        _check_https(request)
        info = await self._credential.get_token_info(*self._scopes)
        request.http_request.headers["Authorization"] = mtls_pop_authorization(info)

    async def send(self, request):
        await self.on_request(request)
        return await self.next.send(request)
