"""The lab's certificate authority: a root that issues server and client certificates.

The embedded authority needs a server certificate naming every host it
serves, and the lab hands out client certificates (apps, managed identities,
a learner's own) that chain to one root a client can trust. In the spirit of
trustme: a tiny API, made for tests and notebooks; ``ca.pem`` is what a
client puts in its trust bundle.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .certificate import Certificate, generate_private_key, parse_name, utc_now


class CertificateAuthority:
    """A small CA for the embedded authority: server certificates and issued client certificates.

    ``ca.certificate`` is the root; ``ca.pem`` is what clients put in their
    trust bundle.
    """

    def __init__(self, name: str = "mtlspop-lab local CA", *, key_type: str = "rsa"):
        key = generate_private_key(key_type)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mtlspop-lab")])
        start = utc_now() - _dt.timedelta(minutes=5)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (x509.CertificateBuilder()
                .subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(start + _dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(ski, critical=False)
                .sign(key, hashes.SHA256()))
        self.certificate = Certificate(cert, key)

    @property
    def pem(self) -> str:
        return self.certificate.pem

    def issue(self, public_key, subject: str | x509.Name, *, days: float = 365,
              server_names: Iterable[str] = (), client_auth: bool = False,
              not_before: _dt.datetime | None = None) -> x509.Certificate:
        """Sign a certificate for ``public_key`` (a server when ``server_names`` is given)."""
        issuer = self.certificate.x509
        start = not_before or (utc_now() - _dt.timedelta(minutes=5))
        builder = (x509.CertificateBuilder()
                   .subject_name(parse_name(subject)).issuer_name(issuer.subject)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(start + _dt.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self.certificate.private_key.public_key()), critical=False))
        usages = []
        names = list(server_names)
        if names:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            alt: list[x509.GeneralName] = []
            for host in names:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    alt.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        if client_auth:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        return builder.sign(self.certificate.private_key, hashes.SHA256())

    def issue_server_certificate(self, *hosts: str, days: float = 30) -> Certificate:
        """A TLS server certificate for ``hosts`` (default 127.0.0.1 and localhost)."""
        hosts = hosts or ("127.0.0.1", "localhost")
        key = generate_private_key("rsa")
        return Certificate(self.issue(key.public_key(), f"CN={hosts[0]}", days=days, server_names=hosts), key)

    def issue_client_certificate(self, subject: str = "CN=mtlspop-lab client", *, days: float = 365,
                                 key_type: str = "rsa") -> Certificate:
        """A client certificate with a fresh key, chained to this CA."""
        key = generate_private_key(key_type)
        return Certificate(self.issue(key.public_key(), subject, days=days, client_auth=True), key)
