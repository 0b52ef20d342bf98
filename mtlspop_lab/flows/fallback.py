"""Falling back from mTLS PoP to Bearer, only where that is safe, and never silently.

Some resources cannot take certificate-bound tokens. Entra says so at the
token endpoint, before any token exists: ``AADSTS392196: The resource
application does not support certificate-bound token. Please set token_type
to 'bearer'``. A resource server that receives a bound token it cannot use
answers 401 (the lab's protected API: "the resource ... does not accept
certificate-bound tokens"). The pattern the error itself prescribes is to ask
again for a Bearer token, for that resource only.

When falling back is **safe**: the refusal comes from the resource's own
configuration (AADSTS392196, or the API's "does not accept certificate-bound
tokens"), the caller knows this resource is Bearer-only, and accepts that a
Bearer token can be replayed by anyone who steals it. Then the Bearer token
is used for that resource alone.

When it is **not**: for a resource that requires binding (an
``mtlstb.graph`` or ``tokenbinding.vault`` style endpoint, or any API whose
owner turned binding on); on a downgrade (asked mtls_pop, got Bearer: a test
slice or an attack, MSAL.NET raises ``token_type_mismatch``); on certificate,
TLS, assertion or network errors (the fix is the certificate or the network,
and a Bearer token would hide it). :func:`acquire_with_fallback` falls back on
the first case only, only when told to (``allow_bearer`` has no default), and
the result says it fell back (``result.notes``, ``result.token_type``).
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import AuthorityError, ConfigurationError, ResourceAccessError
from .resource import ResourceResponse, call_resource
from .result import TokenResult

BOUND_TOKENS_NOT_SUPPORTED = 392196
RESOURCE_REFUSES_BOUND = "bound_token_not_supported"     # ResourceAccessError.code from call_resource


def refuses_bound_tokens(error: BaseException) -> bool:
    """True when ``error`` says the resource cannot take certificate-bound tokens (and nothing else)."""
    if isinstance(error, AuthorityError):
        return error.aadsts == BOUND_TOKENS_NOT_SUPPORTED
    return isinstance(error, ResourceAccessError) and error.code == RESOURCE_REFUSES_BOUND


def acquire_with_fallback(acquirer, resource: str, *, allow_bearer: bool, force_refresh: bool = False
                          ) -> TokenResult:
    """A PoP token for ``resource``, or, when the resource refuses bound tokens and
    ``allow_bearer`` is True, a Bearer token with a note saying why.

    ``acquirer``: an :class:`~mtlspop_lab.flows.MtlsPopTokenAcquirer`. ``allow_bearer`` must
    be given: False raises a :class:`~mtlspop_lab.errors.ConfigurationError`
    (``bearer_fallback_not_allowed``) that says what the resource answered; True falls back.
    Every other failure propagates unchanged: falling back there would hide the real problem.
    """
    if not isinstance(allow_bearer, bool):
        raise ConfigurationError("allow_bearer must be True or False.",
                                 cause="Falling back to an unbound token is a security decision the "
                                       "caller makes explicitly.",
                                 fix="Pass allow_bearer=True only for resources known to be Bearer-only.")
    try:
        return acquirer.acquire_token(resource, use_pop=True, force_refresh=force_refresh)
    except AuthorityError as error:
        if not refuses_bound_tokens(error):
            raise
        refusal = error
    if not allow_bearer:
        raise ConfigurationError(
            f"{resource} does not accept certificate-bound tokens (AADSTS{refusal.aadsts}); no Bearer "
            "fall-back was allowed.",
            cause="The resource application is configured for Bearer tokens only; Entra refuses "
                  "token_type=mtls_pop for it.",
            fix="If this resource is known to be Bearer-only and replay risk is acceptable, call "
                "acquire_with_fallback(..., allow_bearer=True) or acquire_token(..., use_pop=False); "
                "otherwise ask the resource owner to accept bound tokens.",
            code="bearer_fallback_not_allowed") from None
    result = acquirer.acquire_token(resource, use_pop=False, force_refresh=force_refresh)
    note = (f"Fell back to Bearer: {resource} refuses certificate-bound tokens (AADSTS{refusal.aadsts}). "
            "This token is not bound to a certificate: whoever holds it can use it.")
    return _with_note(result, note)


def call_resource_with_fallback(url: str, acquirer, resource: str, *, allow_bearer: bool,
                                path: str = "") -> tuple[TokenResult, ResourceResponse]:
    """Acquire (as :func:`acquire_with_fallback`) and call ``url``; when the resource server
    itself refuses the bound token as one it cannot take, and ``allow_bearer`` is True, acquire
    a Bearer token and call once more. Returns ``(token result, response)``."""
    result = acquire_with_fallback(acquirer, resource, allow_bearer=allow_bearer)
    try:
        return result, call_resource(url, result, path=path)
    except ResourceAccessError as error:
        if not (result.is_pop and refuses_bound_tokens(error) and allow_bearer):
            raise
    bearer = acquirer.acquire_token(resource, use_pop=False)
    bearer = _with_note(bearer, f"Fell back to Bearer: the resource at {url} refused the certificate-bound "
                                "token as one it cannot accept. This token is not bound: whoever holds it "
                                "can use it.")
    return bearer, call_resource(url, bearer, path=path)


def _with_note(result: TokenResult, note: str) -> TokenResult:
    return replace(result, notes=tuple(result.notes) + (note,))
