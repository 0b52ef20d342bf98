"""Certificates: create, load, fingerprint, and hand to TLS.

A :class:`Certificate` is an X.509 certificate with an optional private key.
It is what an app registers, what a managed identity gets from IMDS v2, and
what an mTLS PoP token is bound to, through its **x5t#S256** thumbprint
(RFC 8705 section 3.1: base64url, no padding, of SHA-256 over the DER).

The lab's CA, which issues them, is :mod:`.ca`.

Private keys never leave this module in a displayable form: ``repr`` and
``str`` show subject and thumbprints only, and the only ways out are explicit
(:meth:`Certificate.write_pem` with a 0600 key file, :meth:`Certificate.to_pfx`,
:meth:`Certificate.load_into`).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import CertificateError
from ..redact import redact_text

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def b64url(data: bytes) -> str:
    """base64url without padding, as JOSE and RFC 8705 use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def x5t_s256_of_der(der: bytes) -> str:
    """RFC 8705 ``x5t#S256``: base64url(SHA-256(DER)), no padding."""
    return b64url(hashlib.sha256(der).digest())


def x5t_of_der(der: bytes) -> str:
    """JWS ``x5t``: base64url(SHA-1(DER)), no padding (client assertion headers)."""
    return b64url(hashlib.sha1(der).digest())  # noqa: S324 - a thumbprint, not security


def sha1_hex_of_der(der: bytes) -> str:
    """The Windows / Azure portal "thumbprint": upper-case hex SHA-1 of the DER."""
    return hashlib.sha1(der).hexdigest().upper()  # noqa: S324


def generate_private_key(key_type: str = "rsa") -> PrivateKey:
    """A fresh RSA-2048 or EC P-256 key (``key_type`` ``"rsa"`` or ``"ec"``)."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise CertificateError(f"Unknown key type {key_type!r}.", cause="Only RSA and EC keys are supported.",
                           fix='Pass key_type="rsa" (RSA-2048) or key_type="ec" (P-256).')


def parse_name(subject: str | x509.Name) -> x509.Name:
    """An X.509 name from RFC 4514 text ("CN=my-app,O=Contoso"), or the name itself."""
    if isinstance(subject, x509.Name):
        return subject
    try:
        return x509.Name.from_rfc4514_string(subject)
    except Exception:  # cryptography raises ValueError and friends
        raise CertificateError(f"Cannot read subject name {subject!r}.",
                               cause="It is not an RFC 4514 distinguished name.",
                               fix='Write it like "CN=my-app" or "CN=my-app,O=Contoso".') from None


class Certificate:
    """An X.509 certificate with an optional private key.

    Build one with :meth:`create_self_signed`, :meth:`from_pem`,
    :meth:`load_pem`, :meth:`from_pfx`, :meth:`load_pfx` or :meth:`from_der`.
    Two certificates are equal when their DER bytes are equal.
    """

    __slots__ = ("_cert", "_key", "_der")

    def __init__(self, certificate: x509.Certificate, private_key: PrivateKey | None = None):
        if not isinstance(certificate, x509.Certificate):
            raise CertificateError("Certificate() needs a cryptography x509.Certificate.",
                                   cause=f"Got {type(certificate).__name__}.",
                                   fix="Use Certificate.from_pem(), load_pem(), from_pfx() or create_self_signed().")
        if private_key is not None and not _key_matches(certificate, private_key):
            raise CertificateError("The private key does not belong to this certificate.",
                                   cause="The key's public half differs from the certificate's public key.",
                                   fix="Load the key file that was generated with this certificate.",
                                   code="key_certificate_mismatch")
        self._cert = certificate
        self._key = private_key
        self._der = certificate.public_bytes(serialization.Encoding.DER)

    # -- construction -------------------------------------------------------------
    @classmethod
    def create_self_signed(cls, subject: str = "CN=mtlspop-lab", *, key_type: str = "rsa",
                           days: float = 365, not_before: _dt.datetime | None = None,
                           client_auth: bool = True) -> "Certificate":
        """A new self-signed certificate and key, valid ``days`` from ``not_before`` (now)."""
        key = generate_private_key(key_type)
        name = parse_name(subject)
        start = not_before or (utc_now() - _dt.timedelta(minutes=5))
        builder = (x509.CertificateBuilder()
                   .subject_name(name).issuer_name(name)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start)
                   .not_valid_after(start + _dt.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if client_auth:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return cls(builder.sign(key, hashes.SHA256()), key)

    @classmethod
    def from_der(cls, der: bytes) -> "Certificate":
        """A public-only certificate from DER bytes."""
        try:
            return cls(x509.load_der_x509_certificate(bytes(der)))
        except CertificateError:
            raise
        except Exception:
            raise CertificateError("These bytes are not a DER certificate.",
                                   cause="The data is truncated, PEM text, or another kind of object.",
                                   fix="Pass the raw DER bytes of one X.509 certificate (or use from_pem).") from None

    @classmethod
    def from_pem(cls, cert_pem: str | bytes, key_pem: str | bytes | None = None, *,
                 password: str | bytes | None = None) -> "Certificate":
        """From PEM text. The key may sit in ``cert_pem`` too, or come in ``key_pem``.

        When the PEM holds a chain, the first certificate is the leaf and the
        others are ignored.
        """
        data = _as_bytes(cert_pem)
        if b"-----BEGIN" not in data:
            raise CertificateError("No PEM block found.",
                                   cause="The text has no '-----BEGIN CERTIFICATE-----' line.",
                                   fix="Pass PEM text, or use from_der / from_pfx for binary files.")
        try:
            certs = x509.load_pem_x509_certificates(data)
        except Exception:
            if b"PRIVATE KEY-----" in data and b"BEGIN CERTIFICATE" not in data:
                raise CertificateError("This PEM holds a private key, not a certificate.",
                                       cause="A key file was given where the certificate was expected.",
                                       fix="Pass the certificate PEM, and the key as key_pem.",
                                       code="private_key_not_certificate") from None
            raise CertificateError("The PEM certificate cannot be parsed.",
                                   cause="The base64 inside the PEM block is damaged or truncated.",
                                   fix="Export the certificate again as PEM.") from None
        key = None
        key_source = _as_bytes(key_pem) if key_pem is not None else (
            data if b"PRIVATE KEY-----" in data else None)
        if key_source is not None:
            key = _load_pem_key(key_source, password)
        return cls(certs[0], key)

    @classmethod
    def load_pem(cls, cert_path: str | os.PathLike, key_path: str | os.PathLike | None = None, *,
                 password: str | bytes | None = None) -> "Certificate":
        """From PEM files on disk (the key file is optional)."""
        cert_data = read_file(cert_path, "certificate")
        key_data = read_file(key_path, "private key") if key_path is not None else None
        return cls.from_pem(cert_data, key_data, password=password)

    @classmethod
    def from_pfx(cls, data: bytes, password: str | bytes | None = None) -> "Certificate":
        """From PKCS#12 (PFX) bytes, the Windows export format, with its password."""
        try:
            key, cert, _extra = pkcs12.load_key_and_certificates(bytes(data), _as_password(password))
        except ValueError as exc:
            text = str(exc).lower()
            if "password" in text or "mac" in text or "decrypt" in text:
                raise CertificateError("The PFX password is wrong.",
                                       cause="PKCS#12 integrity check failed with the password given.",
                                       fix="Pass the password the PFX was exported with (None if it has none).",
                                       code="invalid_pfx_password") from None
            raise CertificateError("These bytes are not a PFX (PKCS#12) file.",
                                   cause="The data is damaged, truncated or of another format.",
                                   fix="Export the certificate again as .pfx with its private key.") from None
        except TypeError:
            raise CertificateError("The PFX password has the wrong type.",
                                   cause="Passwords are str or bytes.",
                                   fix="Pass the password as a string.") from None
        if cert is None:
            raise CertificateError("The PFX holds no certificate.", cause="It was exported with a key only.",
                                   fix="Export the certificate together with its key.")
        return cls(cert, key)  # type: ignore[arg-type]  # a PFX key of another kind fails in check_usable

    @classmethod
    def load_pfx(cls, path: str | os.PathLike, password: str | bytes | None = None) -> "Certificate":
        """From a .pfx/.p12 file on disk."""
        return cls.from_pfx(read_file(path, "PFX"), password)

    # -- facts ------------------------------------------------------------------------
    @property
    def x509(self) -> x509.Certificate:
        """The underlying ``cryptography`` certificate."""
        return self._cert

    @property
    def der(self) -> bytes:
        return self._der

    @property
    def pem(self) -> str:
        """The certificate (never the key) as PEM text."""
        return self._cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def x5t_s256(self) -> str:
        """What a bound token's ``cnf`` must carry (RFC 8705)."""
        return x5t_s256_of_der(self._der)

    @property
    def x5t(self) -> str:
        return x5t_of_der(self._der)

    @property
    def thumbprint(self) -> str:
        """Hex SHA-1, as Windows and the Azure portal show it."""
        return sha1_hex_of_der(self._der)

    @property
    def x5c(self) -> str:
        """Standard base64 of the DER, as a JWS ``x5c`` entry carries it."""
        return base64.b64encode(self._der).decode("ascii")

    @property
    def subject(self) -> str:
        return self._cert.subject.rfc4514_string()

    @property
    def issuer(self) -> str:
        return self._cert.issuer.rfc4514_string()

    @property
    def not_before(self) -> _dt.datetime:
        return self._cert.not_valid_before_utc

    @property
    def not_after(self) -> _dt.datetime:
        return self._cert.not_valid_after_utc

    def expires_in(self, at: _dt.datetime | None = None) -> _dt.timedelta:
        """Time left until ``not_after`` (negative once expired)."""
        return self.not_after - (at or utc_now())

    def is_expired(self, at: _dt.datetime | None = None) -> bool:
        moment = at or utc_now()
        return moment >= self.not_after or moment < self.not_before

    @property
    def has_private_key(self) -> bool:
        return self._key is not None

    @property
    def private_key(self) -> PrivateKey:
        """The key object, for signing. Raises when this is a public-only copy."""
        if self._key is None:
            raise CertificateError(f"Certificate {self.subject} has no private key.",
                                   cause="It was loaded from a public file or made public-only.",
                                   fix="Load it from a PFX or with its key file.",
                                   code="cert_without_private_key")
        return self._key

    @property
    def key_type(self) -> str:
        return "ec" if isinstance(self._cert.public_key(), ec.EllipticCurvePublicKey) else "rsa"

    def public_only(self) -> "Certificate":
        """The same certificate without its key: safe to hand to display code."""
        return Certificate(self._cert)

    def binding_certificate(self) -> dict:
        """The shape msal's future API uses (PR #938): ``{x5c, thumbprint_sha256}``."""
        return {"x5c": [self.x5c], "thumbprint_sha256": self.x5t_s256}

    def check_usable(self, at: _dt.datetime | None = None) -> "Certificate":
        """Raise a :class:`CertificateError` unless it has a key and is in its validity window."""
        self.private_key  # noqa: B018 - raises cert_without_private_key
        moment = at or utc_now()
        if moment >= self.not_after:
            raise CertificateError(f"Certificate {self.subject} expired on {self.not_after:%Y-%m-%d %H:%M} UTC.",
                                   cause="Its not_after date has passed.",
                                   fix="Renew the certificate (and register the new one with the app).",
                                   code="certificate_expired")
        if moment < self.not_before:
            raise CertificateError(f"Certificate {self.subject} is not valid before {self.not_before:%Y-%m-%d %H:%M} UTC.",
                                   cause="Its not_before date is in the future (or the clock is wrong).",
                                   fix="Check the machine's clock or wait until the certificate is valid.",
                                   code="certificate_not_yet_valid")
        return self

    # -- export -------------------------------------------------------------------
    def private_key_pem(self, password: str | bytes | None = None) -> bytes:
        """The key as PKCS#8 PEM bytes. Explicit on purpose: never for display."""
        enc = (serialization.BestAvailableEncryption(_as_password(password)) if password
               else serialization.NoEncryption())
        return self.private_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8, enc)

    def write_pem(self, cert_path: str | os.PathLike, key_path: str | os.PathLike | None = None, *,
                  password: str | bytes | None = None) -> None:
        """Write the certificate, and the key with mode 0600 when ``key_path`` is given.

        All or nothing: the key is written first, and when the certificate
        cannot be written the key file is removed again.
        """
        key_data = self.private_key_pem(password) if key_path is not None else None
        for path in (cert_path, key_path):
            if path is not None:
                _check_folder(Path(path))
        if key_data is not None:
            _write_private(Path(key_path), key_data)
        try:
            _write_file(Path(cert_path), self.pem.encode("ascii"))
        except CertificateError:
            if key_path is not None:
                Path(key_path).unlink(missing_ok=True)
            raise

    def to_pfx(self, password: str | bytes | None = None, name: str = "mtlspop-lab") -> bytes:
        """PKCS#12 bytes with the key (when present), encrypted with ``password``."""
        enc = (serialization.BestAvailableEncryption(_as_password(password)) if password
               else serialization.NoEncryption())
        return pkcs12.serialize_key_and_certificates(name.encode(), self._key, self._cert, None, enc)

    def write_pfx(self, path: str | os.PathLike, password: str | bytes | None = None) -> None:
        """Write a PKCS#12 file (with the key when held), mode 0600."""
        data = self.to_pfx(password)
        _check_folder(Path(path))
        _write_private(Path(path), data)

    def load_into(self, context) -> None:
        """Load certificate and key into an ``ssl.SSLContext`` as its client/server identity.

        ``ssl`` reads keys from files only, so they pass through a private
        temporary directory (0700, key 0600) that is removed at once.
        """
        self.private_key  # noqa: B018 - a TLS identity needs the key
        folder = tempfile.mkdtemp(prefix="mtlspop-")
        try:
            cert_file, key_file = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
            self.write_pem(cert_file, key_file)
            context.load_cert_chain(cert_file, key_file)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- display ------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Certificate) and other._der == self._der

    def __hash__(self) -> int:
        return hash(self._der)

    def __repr__(self) -> str:
        key = "with private key" if self._key is not None else "public only"
        return (f"<Certificate {self.subject} x5t#S256={self.x5t_s256} "
                f"not_after={self.not_after:%Y-%m-%d} {key}>")

    __str__ = __repr__

    def _repr_html_(self) -> str:
        import html
        key = "private key held" if self._key is not None else "public only"
        return (f"<div style='font-family:monospace'><b>Certificate</b> {html.escape(self.subject)}<br>"
                f"x5t#S256: <code>{self.x5t_s256}</code><br>"
                f"valid {self.not_before:%Y-%m-%d} to {self.not_after:%Y-%m-%d} ({key})</div>")


def new_guid() -> str:
    return str(uuid.uuid4())


# -- helpers -----------------------------------------------------------------------
def _as_bytes(data: str | bytes) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise CertificateError(f"Expected PEM text (str or bytes), got {type(data).__name__}.",
                           cause="A non-text object was passed where PEM was expected.",
                           fix="Read the file first, or use load_pem(path).")


def _as_password(password: str | bytes | None) -> bytes | None:
    """Normalise a password; anything but text is refused before it reaches OpenSSL.

    Why so strict: ``bytes(1234)`` is 1234 NUL bytes, and a NUL inside a
    password makes cryptography's Rust layer panic (an exception that even
    ``except Exception`` does not catch).
    """
    if password is None or password == "" or password == b"":
        return None
    if isinstance(password, str):
        data = password.encode("utf-8", "surrogatepass")
    elif isinstance(password, (bytes, bytearray)):
        data = bytes(password)
    else:
        raise CertificateError(f"A password must be text, not {type(password).__name__}.",
                               cause="A number or another object was passed as the password.",
                               fix='Pass the password as a string, e.g. password="1234".',
                               code="invalid_password")
    if b"\x00" in data:
        raise CertificateError("A password cannot contain a NUL character.",
                               cause="The password text holds a '\\x00' character.",
                               fix="Check how the password was read (a stray terminator?).",
                               code="invalid_password")
    return data


def _load_pem_key(data: bytes, password: str | bytes | None) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, _as_password(password))
    except TypeError as exc:
        needs = "encrypted" in str(exc).lower() or "password was not given" in str(exc).lower()
        raise CertificateError("The private key is encrypted and needs a password." if needs
                               else "A password was given but the private key is not encrypted.",
                               cause="The password does not match how the key file was written.",
                               fix="Pass password= exactly when the key is encrypted.") from None
    except ValueError:
        raise CertificateError("The private key cannot be read.",
                               cause="Wrong password, or the key PEM is damaged.",
                               fix="Check the password and export the key again.") from None
    except Exception:
        raise CertificateError("The private key cannot be read.",
                               cause="The key PEM is damaged or of an unsupported type.",
                               fix="Use an RSA or EC key in PEM (PKCS#1, SEC1 or PKCS#8).") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise CertificateError("Only RSA and EC private keys are supported.",
                               cause=f"The key is {type(key).__name__}.",
                               fix="Use an RSA-2048+ or EC P-256 key.")
    return key


def _key_matches(cert: x509.Certificate, key) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        return (cert.public_key().public_bytes(serialization.Encoding.DER, spki)
                == key.public_key().public_bytes(serialization.Encoding.DER, spki))
    except Exception:
        return False


# Certificates, keys and PFX files larger than this are not what they claim to be.
MAX_FILE_BYTES = 1024 * 1024


def _shown(path) -> str:
    """A path for a message: clipped, and redacted in case a secret was passed as a "path"."""
    text = redact_text(str(path))
    return repr(text if len(text) <= 120 else text[:119] + "…")


def read_file(path, what: str = "certificate") -> bytes:
    """The bytes of a certificate, key or PFX file: the one file reader of the lab's certificate code.

    Capped by reading, not by asking the file system (devices and pipes report size 0, and
    ``/dev/zero`` never ends); every failure is a :class:`CertificateError` with a code.
    """
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise CertificateError(f"The {what} file {_shown(path)} was not found.",
                               cause="The path is wrong or the file was not created (or the text is neither "
                                     "PEM nor a path).",
                               fix="Check the path (relative paths start from the notebook's folder), or pass "
                                   "the PEM text itself.", code="certificate_not_found") from None
    except IsADirectoryError:
        raise CertificateError(f"{_shown(path)} is a folder, not a {what} file.",
                               cause="A directory was given.", fix="Name the file itself.",
                               code="path_is_a_folder") from None
    except TypeError:
        raise CertificateError(f"The {what} path must be a string or a Path.",
                               cause=f"Got {type(path).__name__}.", fix="Pass a file path.") from None
    except (OSError, ValueError):
        raise CertificateError(f"The {what} file {_shown(path)} cannot be read.",
                               cause="Access was denied, or the path is invalid (too long, bad characters).",
                               fix="Check the path and the file's permissions.",
                               code="file_unreadable") from None
    if len(data) > MAX_FILE_BYTES:
        raise CertificateError(f"The file {_shown(path)} holds more than {MAX_FILE_BYTES:,} bytes: too large "
                               f"for a {what}.", cause="It is another kind of file.",
                               fix="Name the certificate file (.pem, .crt, .cer, .der or .pfx).",
                               code="certificate_too_large")
    return data


def _check_folder(path: Path) -> None:
    if not path.parent.is_dir():
        raise CertificateError(f"The folder {os.fspath(path.parent)!r} does not exist.",
                               cause="Files are written into an existing folder only.",
                               fix="Create the folder first (Path(...).mkdir(parents=True)).",
                               code="folder_not_found")


def _write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write to a temporary file beside ``path`` and rename it: never a half-written file.

    The file is created with ``mode`` before any byte is written, so a key
    file never exists with wider rights than 0600.
    """
    _check_folder(path)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise CertificateError(f"Cannot write {os.fspath(path)!r}: {exc.strerror or exc}.",
                               cause="The folder is not writable or the disk is full.",
                               fix="Choose a writable folder.") from None


def _write_private(path: Path, data: bytes) -> None:
    """A secret file (key, PFX): mode 0600 from its first byte."""
    _write_file(path, data, 0o600)
