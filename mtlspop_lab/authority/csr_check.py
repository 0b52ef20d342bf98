"""The signature algorithm of an IMDS v2 CSR, read from its DER before anything else.

The protocol fixes it: RSASSA-PSS with SHA-256, MGF1 over SHA-256, a 32-byte
salt (RFC 4055 parameters; an absent parameter means its default: SHA-1,
MGF1-SHA-1, salt 20). A CSR that differs is refused with the exact
difference named, which a generic X.509 parser cannot do (it may refuse the
whole request as unreadable, or accept parameters the protocol forbids). So
the ``signatureAlgorithm`` of the PKCS#10 structure is walked here with a
minimal DER reader (tag, length, value; no other ASN.1 features needed).
"""

from __future__ import annotations

OID_RSASSA_PSS = "1.2.840.113549.1.1.10"
OID_MGF1 = "1.2.840.113549.1.1.8"
HASH_NAMES = {
    "1.3.14.3.2.26": "SHA-1",
    "2.16.840.1.101.3.4.2.4": "SHA-224",
    "2.16.840.1.101.3.4.2.1": "SHA-256",
    "2.16.840.1.101.3.4.2.2": "SHA-384",
    "2.16.840.1.101.3.4.2.3": "SHA-512",
}
SIGNATURE_NAMES = {
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption (PKCS#1 v1.5)",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption (PKCS#1 v1.5)",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption (PKCS#1 v1.5)",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption (PKCS#1 v1.5)",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.3.101.112": "Ed25519",
}
REQUIRED = "RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt"


class DerError(ValueError):
    pass


def _read(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, value, next position) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise DerError("truncated")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DerError("bad length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise DerError("truncated")
    return tag, data[pos:pos + length], pos + length


def _children(value: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(value):
        tag, inner, pos = _read(value, pos)
        out.append((tag, inner))
    return out


def _oid(value: bytes) -> str:
    if not value:
        raise DerError("empty OID")
    parts = [value[0] // 40, value[0] % 40]
    n = 0
    for byte in value[1:]:
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(n)
            n = 0
    return ".".join(str(p) for p in parts)


def _algorithm(value: bytes) -> tuple[str, bytes | None]:
    """(OID, DER of the parameters or None) of an AlgorithmIdentifier's content."""
    items = _children(value)
    if not items or items[0][0] != 0x06:
        raise DerError("AlgorithmIdentifier without OID")
    params = None
    if len(items) > 1 and items[1][0] != 0x05:      # NULL means no parameters
        params = items[1]
    return _oid(items[0][1]), params


def signature_problem(der: bytes) -> str | None:
    """What is wrong with the CSR's signature algorithm (a sentence), or None when it is the required one.

    Raises :class:`DerError` when the bytes are not even a PKCS#10 outline.
    """
    tag, outer, _ = _read(der, 0)
    if tag != 0x30:
        raise DerError("not a SEQUENCE")
    parts = _children(outer)
    if len(parts) != 3 or parts[1][0] != 0x30:
        raise DerError("not a CertificationRequest")
    oid, params = _algorithm(parts[1][1])
    if oid != OID_RSASSA_PSS:
        name = SIGNATURE_NAMES.get(oid, f"OID {oid}")
        return f"The CSR is signed with {name}; it must be signed with {REQUIRED}."
    hash_name, mgf_name, mgf_hash, salt = "SHA-1", "MGF1", "SHA-1", 20     # RFC 4055 defaults
    if params is not None:
        if params[0] != 0x30:
            raise DerError("PSS parameters are not a SEQUENCE")
        for ptag, pvalue in _children(params[1]):
            _, inner, _ = _read(pvalue, 0)
            if ptag == 0xA0:
                hash_oid, _ = _algorithm(inner)
                hash_name = HASH_NAMES.get(hash_oid, f"OID {hash_oid}")
            elif ptag == 0xA1:
                mgf_oid, mgf_params = _algorithm(inner)
                mgf_name = "MGF1" if mgf_oid == OID_MGF1 else f"OID {mgf_oid}"
                if mgf_params is not None and mgf_params[0] == 0x30:
                    h_oid, _ = _algorithm(mgf_params[1])
                    mgf_hash = HASH_NAMES.get(h_oid, f"OID {h_oid}")
            elif ptag == 0xA2:
                salt = int.from_bytes(inner, "big")
    if hash_name != "SHA-256":
        return f"The CSR's RSASSA-PSS signature uses {hash_name}; it must use SHA-256."
    if mgf_name != "MGF1" or mgf_hash != "SHA-256":
        return (f"The CSR's RSASSA-PSS mask generation is {mgf_name} with {mgf_hash}; "
                "it must be MGF1 with SHA-256.")
    if salt != 32:
        return f"The CSR's RSASSA-PSS salt is {salt} bytes; it must be 32 bytes."
    return None
