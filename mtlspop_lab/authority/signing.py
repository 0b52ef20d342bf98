"""The authority's signing key: RS256 access tokens and the JWKS that verifies them.

As Entra's, the key comes with an X.509 signing certificate (here issued by
the lab's CA): the token header's ``kid`` and ``x5t`` are both the
certificate's SHA-1 thumbprint in base64url, and each JWKS key carries
``x5t``, ``x5c`` (the certificate, standard base64 DER) and ``issuer`` (the
v2.0 issuer template ``https://login.../{tenantid}/v2.0``). Sources:
learn.microsoft.com "access-tokens" (validating the signature) and the keys
at ``https://login.microsoftonline.com/common/discovery/v2.0/keys``.

Tokens are real JWS (pyjwt over cryptography), so any verifier that fetches
the published JWKS can check them, exactly as a resource server does with
Entra ID. Verification here is strict on purpose (pyjwt's own rule: the
algorithm list is named, ``none`` is never in it), and reports *which* check
failed, because the protected API and the FIC leg-2 checks must tell a
learner precisely why a token was refused.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import time
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

from ..certs import CertificateAuthority, b64url, x5t_of_der

ALGORITHM = "RS256"


class TokenCheckError(Exception):
    """Why a token failed verification. ``reason`` is a short machine tag, ``str()`` a sentence."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class Signer:
    """An RSA-2048 key and its signing certificate; mints and verifies the authority's tokens.

    ``ca``: the CA that issues the signing certificate (self-signed without one).
    ``jwks_issuer``: the ``issuer`` each JWKS key names (set by the authority
    once its login URL is known).
    """

    def __init__(self, ca: CertificateAuthority | None = None, *, jwks_issuer: str | None = None):
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._key.public_key()
        self.certificate = _signing_certificate(self._key, ca)
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        self.kid = self.x5t = x5t_of_der(der)      # Entra: kid == x5t == base64url SHA-1 of the certificate
        jwk = json.loads(RSAAlgorithm.to_jwk(self.public_key))
        jwk = {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.x5t, "n": jwk["n"], "e": jwk["e"],
               "x5c": [base64.b64encode(der).decode("ascii")]}
        self._jwk = jwk
        self.jwks_issuer = jwks_issuer
        self._headers = {"typ": "JWT", "x5t": self.x5t, "kid": self.kid}

    @property
    def jwks(self) -> dict:
        """The public JWK Set (a fresh copy each time)."""
        key = dict(self._jwk, x5c=list(self._jwk["x5c"]))
        if self.jwks_issuer:
            key["issuer"] = self.jwks_issuer
        return {"keys": [key]}

    def mint(self, claims: dict) -> str:
        """Sign ``claims`` as an RS256 JWT with header ``typ: JWT``, ``x5t`` and ``kid``."""
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers=dict(self._headers))

    def sign_payload(self, payload: bytes) -> str:
        """Sign arbitrary payload bytes (no claim checks): for tests of what verifiers refuse."""
        return jwt.api_jws.encode(payload, self._key, algorithm=ALGORITHM, headers=dict(self._headers))

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


def _signing_certificate(key, ca: CertificateAuthority | None) -> x509.Certificate:
    subject = "CN=mtlspop-lab token signing"
    if ca is not None:
        return ca.issue(key.public_key(), subject, days=365)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mtlspop-lab token signing")])
    start = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(minutes=5)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + _dt.timedelta(days=365)).sign(key, hashes.SHA256()))


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
