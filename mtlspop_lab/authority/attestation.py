"""The lab attestation service, modelled on Microsoft Azure Attestation (MAA), and IMDS's check of it.

What live Azure does (MSAL.NET's MSI v2 design, ``docs/msi_v2/msi_with_credential_design.md``
in AzureAD/microsoft-authentication-library-for-dotnet): on an attestable VM,
MSAL creates the key in **KeyGuard** (VBS-isolated, Windows only), asks MAA to
attest it (``POST {attestationEndpoint}/attest/keyguard``, the endpoint named
by IMDS's platform metadata), and sends the MAA token to IMDS's
``issuecredential`` as ``attestation_token``. Entra then issues mtls_pop
tokens for attested keys; unattested compute units get Bearer only.

What the lab does instead, said plainly: Linux has no KeyGuard, so the key is
a **software key** and the "evidence" is a proof of possession of it (a
RSASSA-PSS signature over its public key), not a hardware report. The
service checks that proof and answers with a real signed JWT (RS256, its own
key, published as JWKS at ``/certs`` with OpenID metadata at
``/.well-known/openid-configuration``, as MAA publishes them). Its claims
say what it attested: ``x-ms-attestation-type: "keyguard"`` (the protocol
slot it fills), ``x-ms-lab-key-protection: "software"`` and
``x-ms-lab-stand-in: true`` (what it really is), and
``x-ms-lab-key-sha256``: the SHA-256 of the attested public key (SPKI DER,
base64url), which IMDS compares with the CSR's key.

IMDS's policy (:data:`POLICIES`): ``off`` ignores ``attestation_token``;
``optional`` (the default) verifies it when one is sent; ``required``
refuses a CSR without one. Each refusal is an IMDS error (HTTP 400,
``{"error", "error_description"}``) with its own ``error``:
``attestation_required``, ``attestation_malformed``, ``attestation_untrusted``
(another signer or issuer), ``attestation_expired`` and
``attestation_key_mismatch`` (it attests another key than the CSR's).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..certs import b64url
from .server import Request, Response
from .signing import Signer, TokenCheckError

POLICIES = ("off", "optional", "required")
DEFAULT_POLICY = "optional"
ATTEST_PATH = "/attest/keyguard"
TOKEN_LIFETIME_S = 8 * 3600          # MAA tokens are short-lived; the lab uses eight hours
ATTESTATION_TYPE = "keyguard"


def key_thumbprint(public_key) -> str:
    """base64url SHA-256 of the public key's SubjectPublicKeyInfo DER (what the token attests)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url(hashlib.sha256(der).digest())


def maa_error(status: int, error: str, description: str) -> Response:
    """MAA's error shape: ``{"error": {"code", "message"}}``."""
    return Response.json(status, {"error": {"code": error, "message": description}}, error=f"{error}: {description}"[:300])


class AttestationService:
    """Answers the attestation listener: OpenID metadata, JWKS and ``/attest/keyguard``.

    ``url()`` is where it listens (its issuer). ``policy`` is IMDS's knob,
    kept here so the one object that signs attestation tokens also judges them.
    """

    def __init__(self, url):
        self._url = url
        self.signer = Signer()
        self.policy = DEFAULT_POLICY

    @property
    def issuer(self) -> str:
        return self._url()

    def set_policy(self, policy: str) -> None:
        self.policy = policy

    # -- the service ------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path == "/.well-known/openid-configuration" and request.method in ("GET", "HEAD"):
            return Response.json(200, {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/certs",
                                       "id_token_signing_alg_values_supported": ["RS256"],
                                       "claims_supported": ["iss", "iat", "nbf", "exp", "jti",
                                                            "x-ms-attestation-type", "x-ms-lab-key-sha256",
                                                            "x-ms-lab-key-protection", "x-ms-lab-stand-in"]})
        if path == "/certs" and request.method in ("GET", "HEAD"):
            return Response.json(200, self.signer.jwks)
        if path == ATTEST_PATH:
            if request.method != "POST":
                return maa_error(405, "MethodNotAllowed", f"{request.method} is not allowed on {ATTEST_PATH}.")
            return self.attest(request)
        return maa_error(404, "NotFound", f"No attestation endpoint at {path[:100]}.")

    def attest(self, request: Request) -> Response:
        """Evidence: ``{"AttestationInfo": base64(JSON {"publicKey": b64 SPKI DER, "proof": b64 PSS sig})}``."""
        try:
            body = json.loads(request.body.decode("utf-8"))
            info = json.loads(base64.b64decode(body["AttestationInfo"], validate=True))
            der = base64.b64decode(info["publicKey"], validate=True)
            proof = base64.b64decode(info["proof"], validate=True)
            public_key = serialization.load_der_public_key(der)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error):
            return maa_error(400, "InvalidParameter", "AttestationInfo must be base64 JSON with publicKey "
                             "(base64 SubjectPublicKeyInfo DER) and proof (base64 signature).")
        if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < 2048:
            return maa_error(400, "InvalidParameter", "The key to attest must be RSA with at least 2048 bits.")
        try:
            public_key.verify(proof, der, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                              hashes.SHA256())
        except InvalidSignature:
            return maa_error(400, "AttestationFailed", "The proof does not verify: the caller does not hold "
                             "the private key it asks to attest.")
        now = int(time.time())
        claims = {"iss": self.issuer, "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME_S,
                  "jti": b64url(hashlib.sha256(proof).digest()[:16]),
                  "x-ms-attestation-type": ATTESTATION_TYPE, "x-ms-lab-key-sha256": key_thumbprint(public_key),
                  "x-ms-lab-key-protection": "software", "x-ms-lab-stand-in": True}
        return Response.json(200, {"token": self.signer.mint(claims)}, grant_type="attest_keyguard")

    # -- IMDS's check ---------------------------------------------------------------
    def check(self, token, csr_public_key) -> tuple[str, str] | None:
        """None when ``token`` (maybe absent) is acceptable under the policy, else (error, description)."""
        if self.policy == "off":
            return None
        if token is None:
            if self.policy == "required":
                return ("attestation_required", "This compute unit requires key attestation: send "
                        "attestation_token (a token from the attestationEndpoint that attests the CSR's key).")
            return None
        if not isinstance(token, str) or not token.strip():
            return ("attestation_malformed", "attestation_token is empty or not a string.")
        try:
            claims = self.signer.verify(token.strip())
        except TokenCheckError as exc:
            if exc.reason == "expired":
                return ("attestation_expired", f"The attestation token has expired: {exc}")
            if exc.reason in ("unknown_key", "bad_signature"):
                return ("attestation_untrusted", "The attestation token was not signed by this platform's "
                        f"attestation service ({self.issuer}).")
            return ("attestation_malformed", f"The attestation token is not a usable JWT: {exc}")
        if claims.get("iss") != self.issuer:
            return ("attestation_untrusted", f"The attestation token's issuer {str(claims.get('iss'))[:80]!r} is "
                    f"not this platform's attestation service ({self.issuer}).")
        if claims.get("x-ms-attestation-type") != ATTESTATION_TYPE:
            return ("attestation_malformed", "The attestation token does not attest a key (x-ms-attestation-type).")
        if claims.get("x-ms-lab-key-sha256") != key_thumbprint(csr_public_key):
            return ("attestation_key_mismatch", "The attestation token attests another key than the CSR's "
                    "(x-ms-lab-key-sha256 differs from the SHA-256 of the CSR's public key).")
        return None
