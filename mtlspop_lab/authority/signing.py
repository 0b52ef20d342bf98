"""The authority's signing key: RS256 access tokens and the JWKS that verifies them.

Tokens are real JWS (pyjwt over cryptography), so any verifier that fetches
the published JWKS can check them, exactly as a resource server does with
Entra ID. Verification here is strict on purpose (pyjwt's own rule: the
algorithm list is named, ``none`` is never in it), and reports *which* check
failed, because the protected API and the FIC leg-2 checks must tell a
learner precisely why a token was refused.
"""

from __future__ import annotations

import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ..certs import b64url

ALGORITHM = "RS256"


class TokenCheckError(Exception):
    """Why a token failed verification. ``reason`` is a short machine tag, ``str()`` a sentence."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class Signer:
    """An RSA-2048 key with a ``kid``; mints and verifies the authority's tokens."""

    def __init__(self):
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._key.public_key()
        jwk = json.loads(RSAAlgorithm.to_jwk(self.public_key))
        self.kid = b64url(uuid.uuid4().bytes)
        jwk.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM, "kty": "RSA"})
        self._jwk = jwk

    @property
    def jwks(self) -> dict:
        """The public JWK Set (a fresh copy each time)."""
        return {"keys": [dict(self._jwk)]}

    def mint(self, claims: dict) -> str:
        """Sign ``claims`` as an RS256 JWT with header ``kid`` and ``typ: JWT``."""
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "JWT"})

    def sign_payload(self, payload: bytes) -> str:
        """Sign arbitrary payload bytes (no claim checks): for tests of what verifiers refuse."""
        return jwt.api_jws.encode(payload, self._key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "JWT"})

    def verify(self, token: str, *, now: float | None = None, leeway: float = 0) -> dict:
        """Check structure, algorithm, key, signature and time; return the claims.

        Audience and binding are left to the caller, who knows what it expects.
        Raises :class:`TokenCheckError` with a distinct ``reason`` per failure.
        """
        check_header(token, (ALGORITHM,), (self.kid,), who="this authority")
        try:
            claims = jwt.decode(token, self.public_key, algorithms=[ALGORITHM],
                                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                                         "verify_iat": False, "verify_iss": False})
        except jwt.exceptions.InvalidSignatureError:
            raise TokenCheckError("bad_signature", "The token signature does not verify with the authority's key (tampered or forged).") from None
        except jwt.exceptions.PyJWTError:
            raise TokenCheckError("malformed", "The token payload cannot be decoded.") from None
        moment = time.time() if now is None else now
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, (int, float)):
            raise TokenCheckError("malformed", "The token has no numeric exp claim.")
        if moment > exp + leeway:
            raise TokenCheckError("expired", f"The token expired {int(moment - exp)} s ago.")
        if isinstance(nbf, (int, float)) and moment + leeway < nbf:
            raise TokenCheckError("not_yet_valid", "The token is not valid yet (nbf is in the future).")
        return claims


def check_header(token, algorithms, kids, *, who: str) -> dict:
    """Structure, algorithm and key id of a JWS, checked before any key is touched.

    Shared by the authority's own verification and the protected API's check
    of a trusted foreign issuer, so both refuse the same things for the same
    reasons (``alg: none`` first of all).
    """
    if not isinstance(token, str) or token.count(".") != 2:
        raise TokenCheckError("malformed", "The token is not a compact JWS (three dot-separated parts).")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.exceptions.PyJWTError:
        raise TokenCheckError("malformed", "The token header is not base64url JSON.") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise TokenCheckError("alg_none", "The token is unsigned (alg 'none'); unsigned tokens are never accepted.")
    if alg not in algorithms:
        raise TokenCheckError("alg_not_allowed", f"The token algorithm {alg[:20]!r} is not accepted; "
                                                 f"{who} signs with {', '.join(algorithms)}.")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in kids:
        raise TokenCheckError("unknown_key", f"The token's kid is not in {who}'s JWKS; it was not issued there.")
    return header


def new_uti() -> str:
    """Entra's ``uti``: a unique token id in base64url."""
    return b64url(uuid.uuid4().bytes)


def access_token_claims(*, issuer: str, tenant_id: str, audience: str, subject_oid: str, client_id: str,
                        lifetime_s: int, cnf_x5t_s256: str | None = None, mi_resource_id: str | None = None,
                        now: float | None = None) -> dict:
    """Entra v2-style app-only claims; ``cnf`` only when the token is certificate-bound."""
    iat = int(time.time() if now is None else now)
    claims = {
        "aud": audience, "iss": issuer, "iat": iat, "nbf": iat, "exp": iat + int(lifetime_s),
        "tid": tenant_id, "oid": subject_oid, "sub": subject_oid, "azp": client_id, "appid": client_id,
        "azpacr": "2", "idtyp": "app", "ver": "2.0", "uti": new_uti(),
    }
    if mi_resource_id:
        claims["xms_mirid"] = mi_resource_id
    if cnf_x5t_s256:
        claims["cnf"] = {"x5t#S256": cnf_x5t_s256}
    return claims
