"""Key attestation for IMDS v2, client side: the lab's software stand-in for KeyGuard + MAA.

On live Azure today, an attested managed-identity key needs **Windows** (a VM
with VBS/KeyGuard: the key is created in a virtualization-isolated KSP and
cannot be exported), **MSAL.NET** with its attestation package
(``Microsoft.Azure.Security.KeyGuardAttestation``, via
``WithAttestationSupport()``), and a VM whose IMDS platform metadata names an
``attestationEndpoint`` (Microsoft Azure Attestation). MSAL sends the key's
attestation to ``{attestationEndpoint}/attest/keyguard`` and the resulting
token to ``issuecredential`` as ``attestation_token``. msal Python has none
of this, and Linux has no KeyGuard.

What :func:`attest_software_key` does instead, and says: it proves possession
of the lab's **software** RSA key to the embedded authority's attestation
service (a signature over the public key) and gets back a real signed token
whose claims say ``x-ms-lab-key-protection: "software"`` and
``x-ms-lab-stand-in: true``. It exercises the same wire and the same IMDS
checks, not the same protection: a software key can be copied out of
memory, a KeyGuard key cannot. Against live Azure it refuses to run.
"""

from __future__ import annotations

import base64
import json

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from ..cloud import Cloud
from ..errors import ConfigurationError, ManagedIdentityError
from ..redact import redact_text
from ..transport import Transport, transport_error

ATTEST_PATH = "/attest/keyguard"
MAA_API_VERSION = "2023-04-01-preview"      # the version MSAL.NET's MSI v2 design document shows

# what capabilities() and acquirers report as the binding strength
STRENGTH_HARDWARE = "attested hardware-isolated key (KeyGuard/VBS, MSAL.NET on Windows)"
STRENGTH_SOFTWARE_ATTESTED = ("software key, attested by the lab's attestation service "
                              "(a stand-in for KeyGuard: same wire, no hardware isolation)")
STRENGTH_SOFTWARE = "software key, unattested"
STRENGTH_NONE = "none (Bearer: not bound to any key)"


def live_attestation_unavailable() -> ConfigurationError:
    return ConfigurationError(
        "Key attestation against live Azure is not available from this lab.",
        cause="Live attestation needs a KeyGuard key (Windows with VBS) and MSAL.NET's attestation "
              "package (Microsoft.Azure.Security.KeyGuardAttestation, WithAttestationSupport()); the "
              "lab's software key and stand-in evidence would be refused by Microsoft Azure Attestation.",
        fix="Use attestation=True against the embedded LocalAuthority; on Azure use MSAL.NET on a "
            "Windows VM with KeyGuard, or attestation=False (an unattested key).",
        code="attestation_not_available_here")


def attest_software_key(key, endpoint: str, transport: Transport) -> str:
    """The attestation token for ``key`` (an RSA private key) from the lab service at ``endpoint``."""
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    proof = key.sign(der, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    evidence = {"publicKey": base64.b64encode(der).decode("ascii"),
                "proof": base64.b64encode(proof).decode("ascii")}
    info = base64.b64encode(json.dumps(evidence).encode("utf-8")).decode("ascii")
    url = f"{endpoint.rstrip('/')}{ATTEST_PATH}"
    try:
        response = transport.post(url, params={"api-version": MAA_API_VERSION}, json={"AttestationInfo": info},
                                  leg="attestation")
    except requests.RequestException as exc:
        raise transport_error(exc, url, what="the attestation service") from None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    token = payload.get("token") if isinstance(payload, dict) else None
    if response.status_code != 200 or not isinstance(token, str) or not token:
        detail = payload.get("error") if isinstance(payload, dict) else None
        raise ManagedIdentityError(
            f"The attestation service at {redact_text(url)} did not attest the key "
            f"(HTTP {response.status_code}): {redact_text(json.dumps(detail))[:200] if detail else 'no token'}",
            cause="The attestation evidence was refused, or something else answered at the attestation endpoint.",
            fix="Check the attestationEndpoint from getplatformmetadata; retry.",
            code="attestation_failed")
    return token


def check_attestation_target(cloud: Cloud) -> None:
    """Raise when ``attestation=True`` is asked against a live cloud (see the module doc)."""
    if not cloud.is_local:
        raise live_attestation_unavailable()
