"""The claims of an app-only access token, in the version its resource accepts.

Entra issues the token version the *resource* accepts (its manifest's
``accessTokenAcceptedVersion``), not the version of the endpoint asked:

* **v1.0** (Microsoft Graph, Key Vault, ARM, Storage, and tokens for
  ``api://AzureADTokenExchange``): ``iss`` ``https://sts.<domain>/{tid}/``,
  ``aud`` the resource URI, the client in ``appid`` + ``appidacr``.
* **v2.0** (an API registered by the learner, by default): ``iss``
  ``https://login.<domain>/{tid}/v2.0``, ``aud`` the API's application id
  (a GUID), the client in ``azp`` + ``azpacr``. Never both client pairs.

Both carry ``idp``, ``aio``, ``rh``, ``uti``, ``idtyp: app``, ``oid``,
``sub``, ``tid``; a managed identity adds ``xms_mirid`` (its resource id with
a lower-case ``resourcegroups``); a certificate-bound token adds ``cnf`` and
``xms_tbflags``; ``roles`` appear when app roles were granted. Sources:
learn.microsoft.com identity-platform "access-token-claims-reference" and
"access-tokens"; MSAL4J/MSAL Go mTLS PoP manual-testing notes (``xms_tbflags``:
2 on bound tokens).

Lifetimes: app tokens live a random 60-90 minutes, managed identity tokens
24 hours (IMDS answers ``expires_in`` "86399"), unless the authority's
lifetime knob fixes them (short lifetimes for notebooks).
"""

from __future__ import annotations

import os
import random
import re
import time

from ..certs import b64url
from .signing import new_uti

APP_LIFETIME_RANGE_S = (3600, 5400)
MANAGED_IDENTITY_LIFETIME_S = 86400
REFRESH_IN_FROM_S = 7200         # tokens living 2 h or more get refresh_in (half their lifetime)
BOUND_TOKEN_FLAGS = 2

_RESOURCE_GROUPS = re.compile(r"/resourcegroups/", re.IGNORECASE)


def sts_issuer(domain: str, tenant_id: str) -> str:
    """The v1.0 issuer of a tenant (Entra: ``https://sts.windows.net/{tid}/``)."""
    return f"https://sts.{domain}/{tenant_id}/"


def lifetime_for(*, managed_identity: bool, fixed: int | None) -> int:
    """Seconds a new token lives: the knob when set, else Entra's (24 h MI, 60-90 min app)."""
    if fixed is not None:
        return int(fixed)
    if managed_identity:
        return MANAGED_IDENTITY_LIFETIME_S
    return random.randint(*APP_LIFETIME_RANGE_S)


def refresh_in_for(expires_in: int) -> int | None:
    """``refresh_in`` for a token answer (half the lifetime of long-lived tokens), or None."""
    return expires_in // 2 if expires_in >= REFRESH_IN_FROM_S else None


def mirid(resource_id: str) -> str:
    """``xms_mirid`` as Entra writes it: the resource id with ``resourcegroups`` in lower case."""
    return _RESOURCE_GROUPS.sub("/resourcegroups/", resource_id)


def _opaque(n: int) -> str:
    return b64url(os.urandom(n))


def app_token_claims(*, version: int, domain: str, issuer_v2: str, tenant_id: str, audience: str,
                     object_id: str, client_id: str, lifetime_s: int, cnf_x5t_s256: str | None = None,
                     mi_resource_id: str | None = None, roles=(), now: float | None = None) -> dict:
    """The claims of an app-only token of ``version`` 1 or 2 (``audience``: URI for v1, app id GUID for v2)."""
    iat = int(time.time() if now is None else now)
    v1_issuer = sts_issuer(domain, tenant_id)
    claims = {"aud": audience, "iss": v1_issuer if version == 1 else issuer_v2,
              "iat": iat, "nbf": iat, "exp": iat + int(lifetime_s), "aio": _opaque(48)}
    if version == 1:
        claims.update({"appid": client_id, "appidacr": "2"})
    else:
        claims.update({"azp": client_id, "azpacr": "2"})
    claims.update({"idp": v1_issuer, "idtyp": "app", "oid": object_id, "rh": f"1.{_opaque(42)}.",
                   "sub": object_id, "tid": tenant_id, "uti": new_uti(),
                   "ver": "1.0" if version == 1 else "2.0"})
    if roles:
        claims["roles"] = list(roles)
    if mi_resource_id:
        claims["xms_mirid"] = mirid(mi_resource_id)
    if cnf_x5t_s256:
        claims["cnf"] = {"x5t#S256": cnf_x5t_s256}
        claims["xms_tbflags"] = BOUND_TOKEN_FLAGS
    return claims
