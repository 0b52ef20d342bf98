"""Reproductions that need more than an acquirer: a client that misbehaves on purpose, on the wire.

Why a separate module: the troubleshooting catalogue provokes each failure with
the lab's own flows, but the lab's managed identity client always attests the
key it sends. A *replayed* attestation (a real token that attests another key,
as a thief who copied one would send) can only be shown by a client that
builds the IMDS v2 requests itself; this one does, with the flows' own pieces
(CSR builder, attestation client, IMDS error mapping), so the error the learner
sees is the one the lab's client would raise.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric import rsa

from ..flows.attestation import attest_software_key
from ..flows.diagnose import imds_error
from ..flows.managed_identity import build_csr
from ..transport import RetryPolicy, Transport

V2 = {"cred-api-version": "2.0"}
HEADERS = {"Metadata": "true"}


def attestation_replayed(authority) -> None:
    """issuecredential with a CSR over key A and an attestation of key B: IMDS refuses (key mismatch)."""
    cloud = authority.cloud
    imds = cloud.imds_url.rstrip("/")
    with Transport(ca_bundle=cloud.ca_bundle, retry=RetryPolicy.none(), name="troubleshoot") as transport:
        meta = transport.get(f"{imds}/metadata/identity/getplatformmetadata", params=V2, headers=HEADERS).json()
        mine, theirs = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
        stolen = attest_software_key(theirs, meta["attestationEndpoint"], transport)
        csr = base64.b64encode(build_csr(mine, meta["clientId"], meta["tenantId"], meta.get("cuId") or {}))
        response = transport.post(f"{imds}/metadata/identity/issuecredential", params=V2, headers=HEADERS,
                                  json={"csr": csr.decode("ascii"), "attestation_token": stolen})
    if response.status_code != 200:
        raise imds_error(response.json(), status=response.status_code, identity="system-assigned identity")
