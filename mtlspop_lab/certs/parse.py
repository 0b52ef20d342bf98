"""Reading a certificate from whatever a learner has: a lab Certificate, PEM, DER, PFX, base64, a path.

The one reader behind :func:`x5t_s256` and the inspector: every wrong input
(a key, a CSR, a token, a password-protected PFX, a folder) gets its own
:class:`~mtlspop_lab.errors.CertificateError` code.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from typing import Any

from cryptography import x509

from ..errors import CertificateError
from .certificate import (
    MAX_FILE_BYTES as MAX_CERTIFICATE_BYTES,
    Certificate,
    read_file,
    sha1_hex_of_der,
    x5t_of_der,
    x5t_s256_of_der,
)


def _clip(text: Any, limit: int = 200) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def read_certificates(certificate: Any) -> list[Certificate]:
    """One or more public certificates (leaf first) from any of the accepted forms."""
    from cryptography import x509

    if isinstance(certificate, Certificate):
        return [certificate]
    if isinstance(certificate, x509.Certificate):
        return [Certificate(certificate)]
    if certificate is None:
        raise CertificateError("No certificate was given (None).",
                               cause="The token result is a Bearer result (binding_certificate is "
                                     "None) or the variable was never set.",
                               fix="Pass the certificate the token should be bound to.",
                               code="certificate_missing")
    if isinstance(certificate, dict) and isinstance(certificate.get("x5c"), list):
        certificate = certificate["x5c"]  # msal's proposed binding_certificate shape
    if isinstance(certificate, (list, tuple)):
        if not certificate:
            raise CertificateError("The certificate list is empty.", cause="No certificate in it.",
                                   fix="Pass the binding (leaf) certificate.")
        chain: list[Certificate] = []
        for item in certificate:
            if isinstance(item, (list, tuple, dict)):
                raise CertificateError("A certificate chain is a flat list of certificates.",
                                       cause=f"One item is a {type(item).__name__}.",
                                       fix="Pass [leaf, intermediate, ...] or the leaf alone.")
            chain.extend(read_certificates(item))
        return chain
    if hasattr(certificate, "binding_certificate") and not isinstance(certificate, (str, bytes)):
        return read_certificates(certificate.binding_certificate)
    if isinstance(certificate, os.PathLike):
        return _certificates_from_bytes(read_file(certificate), source="file")
    if isinstance(certificate, (bytes, bytearray, memoryview)):
        return _certificates_from_bytes(bytes(certificate), source="bytes")
    if isinstance(certificate, str):
        if "-----BEGIN" in certificate:
            return _certificates_from_bytes(certificate.encode("utf-8", "replace"), source="text")
        stripped = certificate.strip()
        if not stripped:
            raise CertificateError("The certificate is an empty string.", cause="Nothing was passed.",
                                   fix="Pass a certificate, PEM text or a file path.",
                                   code="certificate_missing")
        if stripped.startswith("eyJ") and stripped.count(".") in (2, 4):
            raise CertificateError("This is a token, not a certificate.",
                                   cause="The arguments may be swapped.",
                                   fix="Call check_binding(token, certificate): the token first.",
                                   code="token_not_certificate")
        if not _is_file(stripped) and len(stripped) > 200 and re.fullmatch(r"[A-Za-z0-9+/=\s]+", stripped):
            try:  # base64 DER, as in x5c or the IMDS v2 'certificate' field
                return _certificates_from_bytes(base64.b64decode(stripped), source="base64")
            except (binascii.Error, ValueError):
                pass
        return _certificates_from_bytes(read_file(stripped), source="file")
    raise CertificateError(f"Cannot read a certificate from a {type(certificate).__name__}.",
                           cause="Accepted: lab Certificate, cryptography x509.Certificate, PEM text "
                                 "or bytes, DER bytes, or a file path.",
                           fix="Pass one of those (for a PFX with a password, load it with "
                               "lab.Certificate.load_pfx first).")


def _is_file(text: str) -> bool:
    try:
        return len(text) < 4096 and Path(text).is_file()
    except (OSError, ValueError):
        return False


def _certificates_from_bytes(data: bytes, *, source: str) -> list[Certificate]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if not data:
        raise CertificateError("The certificate data is empty.", cause="An empty file or value.",
                               fix="Pass the certificate's PEM or DER.", code="certificate_missing")
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise CertificateError(f"The certificate data is {len(data):,} bytes: too large for a certificate.",
                               cause="It is another kind of data.", fix="Pass one certificate.")
    if b"-----BEGIN" in data:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except Exception:
            certs = []
        if certs:
            return [Certificate(c) for c in certs]
        if b"PRIVATE KEY-----" in data:
            raise CertificateError("This PEM holds a private key, not a certificate.",
                                   cause="A key was given where the certificate was expected. The "
                                         "binding is to the certificate (its DER), not to the key.",
                                   fix="Pass the certificate PEM (-----BEGIN CERTIFICATE-----). "
                                       "Keep private keys out of notebooks and logs.",
                                   code="private_key_not_certificate")
        if b"PUBLIC KEY-----" in data:
            raise CertificateError("This PEM holds a public key, not a certificate.",
                                   cause="x5t#S256 is computed over the whole certificate DER, so a "
                                         "public key alone cannot be compared.",
                                   fix="Pass the certificate PEM (-----BEGIN CERTIFICATE-----).",
                                   code="public_key_not_certificate")
        if b"CERTIFICATE REQUEST-----" in data:
            raise CertificateError("This PEM is a certificate signing request (CSR), not a certificate.",
                                   cause="A CSR is what is sent to be signed; the certificate is "
                                         "what comes back.", fix="Pass the issued certificate.")
        raise CertificateError("The PEM certificate cannot be parsed.",
                               cause="The base64 inside the BEGIN/END CERTIFICATE block is damaged, "
                                     "truncated or mixed with other text.",
                               fix="Export the certificate again as PEM.", code="bad_certificate")
    try:
        return [Certificate(x509.load_der_x509_certificate(data))]
    except Exception:
        pass
    for loader in (serialization.load_der_private_key,):
        try:
            loader(data, None)
        except TypeError:  # encrypted key
            raise CertificateError("These bytes are an encrypted private key, not a certificate.",
                                   cause="A key was given where the certificate was expected.",
                                   fix="Pass the certificate (PEM or DER).",
                                   code="private_key_not_certificate") from None
        except Exception:
            continue
        raise CertificateError("These bytes are a private key (DER), not a certificate.",
                               cause="A key was given where the certificate was expected.",
                               fix="Pass the certificate (PEM or DER); keep private keys private.",
                               code="private_key_not_certificate")
    try:
        from cryptography.hazmat.primitives.serialization import pkcs12
        _key, cert, extra = pkcs12.load_key_and_certificates(data, None)
        if cert is not None:
            return [Certificate(cert)] + [Certificate(c) for c in (extra or [])]
        if extra:   # certificate-only PKCS#12 (no key): the leaf is the one that is not a CA
            return [Certificate(c) for c in sorted(extra, key=_is_ca)]
    except Exception as exc:
        text = str(exc).lower()
        if "password" in text or "mac" in text or "decrypt" in text:
            raise CertificateError("This PFX is password-protected.",
                                   cause="The inspector does not take passwords.",
                                   fix="Load it with lab.Certificate.load_pfx(path, password) and "
                                       "pass that Certificate.", code="invalid_pfx_password") from None
    raise CertificateError("The data is not a certificate (neither PEM nor DER).",
                           cause=("The DER is truncated or damaged, or the data is another kind of "
                                  "file." if data[:1] == b"\x30" else
                                  "It does not start like DER (0x30) and has no PEM block."),
                           fix="Pass the certificate file as exported (PEM or DER), or a lab Certificate.",
                           code="bad_certificate")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _leaf(certificate: Any) -> Certificate:
    return read_certificates(certificate)[0]


def x5t_s256(certificate: Any) -> str:
    """RFC 8705 ``x5t#S256``: base64url, no padding, of SHA-256 over the certificate DER.

    ``certificate``: a lab Certificate, a cryptography certificate, PEM text
    or bytes, DER bytes, or a file path. For a chain, the first (leaf).
    """
    return x5t_s256_of_der(_leaf(certificate).der)


def x5t(certificate: Any) -> str:
    """JWS ``x5t``: base64url SHA-1 of the DER (client-assertion headers use it)."""
    return x5t_of_der(_leaf(certificate).der)


def sha1_thumbprint(certificate: Any) -> str:
    """The Windows / Azure portal "thumbprint": upper-case hex SHA-1 of the DER."""
    return sha1_hex_of_der(_leaf(certificate).der)

