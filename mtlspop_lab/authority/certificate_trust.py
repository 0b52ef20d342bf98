"""Certificate trust by subject name and issuer ("SN+I", "SNI"), instead of a registered thumbprint.

An app registration normally lists the certificates it may use (by
thumbprint), so every renewal means registering the new one. With SN+I trust
the app instead trusts *a CA and a subject name*: any certificate that CA
issues for that subject is accepted, so renewals need no registration. The
token service can only check that if it sees the certificate and its chain:

* **client assertion** (Bearer, ``private_key_jwt``): the client puts the
  chain in the JWS header's ``x5c`` (msal's ``public_certificate``,
  MSAL.NET's ``WithSendX5C(true)``). Without ``x5c`` Entra looks the key up
  by thumbprint, does not find it, and answers AADSTS700027 ("The
  certificate with identifier used to sign the client assertion is not
  registered on application. [Reason - The key was not found ...]", as
  reported in AzureAD/microsoft-authentication-library-for-js#8339 and
  Azure/azure-sdk-for-js#21606);
* **mTLS** (PoP, and Bearer on the mTLS host): the certificate comes from
  the TLS handshake; no ``x5c`` is needed.

A chain that does not lead to the trusted CA gets AADSTS7000213 ("Invalid
certificate chain", AzureAD/microsoft-authentication-library-for-dotnet#3909).
A certificate of the right CA for another subject gets AADSTS700027 here: the
exact code Entra uses for a subject mismatch could not be confirmed, and
700027 is the family for "no acceptable key for this app" (noted in
``oauth_errors.NOTES``).

On live Entra, SN+I trust is configured by Microsoft for first-party
applications (MSAL.NET maintainers, AzureAD/microsoft-authentication-library-for-dotnet#3075);
the lab lets any app use it so that its mechanics can be seen.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ..certs import Certificate, x5t_of_der, x5t_s256_of_der

MAX_CHAIN = 5


@dataclass(frozen=True)
class SubjectNameTrust:
    """An app's trust in certificates that ``issuer`` (a CA certificate) issues for ``subject``."""

    issuer: Certificate          # public CA certificate
    subject: str                 # RFC 4514, e.g. "CN=contoso-sni.example"

    def describe(self) -> str:
        return f"{self.subject} issued by {self.issuer.subject}"


def _names_equal(a: x509.Name, subject: str) -> bool:
    return a.rfc4514_string().replace(", ", ",").lower() == subject.replace(", ", ",").lower()


class CertificateTrust:
    """The SN+I trusts of every app (client_id -> trusts). Thread-safe."""

    def __init__(self):
        self._trusts: dict[str, list[SubjectNameTrust]] = {}
        self._lock = threading.Lock()

    def add(self, client_id: str, trust: SubjectNameTrust) -> None:
        with self._lock:
            trusts = self._trusts.setdefault(client_id, [])
            if trust not in trusts:
                trusts.append(trust)

    def trusts_for(self, client_id: str) -> list[SubjectNameTrust]:
        with self._lock:
            return list(self._trusts.get(client_id, ()))

    # -- checks ----------------------------------------------------------------------
    def check_chain(self, client_id: str, chain: list[x509.Certificate], now: _dt.datetime | None = None
                    ) -> tuple[str, str] | None:
        """None when ``chain`` (leaf first) is trusted for the app, else (error kind, description)."""
        trusts = self.trusts_for(client_id)
        leaf = chain[0]
        now = now or _dt.datetime.now(_dt.timezone.utc)
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            return ("certificate_chain_invalid", "Invalid certificate chain: the certificate is expired or not yet "
                    "valid.")
        anchored = [t for t in trusts if _leads_to(chain, t.issuer.x509)]
        if not anchored:
            return ("certificate_chain_invalid", "Invalid certificate chain: it does not lead to a certificate "
                    f"authority trusted by application '{client_id}' (trusted: "
                    f"{'; '.join(t.issuer.subject for t in trusts)[:200]}).")
        if not any(_names_equal(leaf.subject, t.subject) for t in anchored):
            return ("certificate_subject_not_trusted", "The certificate with identifier used to authenticate is "
                    f"not registered on application '{client_id}'. [Reason - The key was not found: subject "
                    f"'{leaf.subject.rfc4514_string()[:120]}' is not a trusted subject name of that issuer.]")
        return None

    def check_tls(self, client_id: str, der: bytes) -> tuple[str, str] | None:
        """The TLS client certificate (leaf only: what the handshake gives the server)."""
        return self.check_chain(client_id, [x509.load_der_x509_certificate(der)])

    def check_assertion_header(self, client_id: str, header: dict) -> Certificate | tuple[str, str]:
        """The leaf to verify the assertion with, from its ``x5c``; or (error kind, description)."""
        x5c = header.get("x5c")
        if not x5c:
            return ("certificate_not_registered", "The certificate with identifier used to sign the client "
                    f"assertion is not registered on application '{client_id}'. [Reason - The key was not found. "
                    "The application trusts a subject name and issuer: send the certificate chain in the "
                    "assertion's x5c header (msal: public_certificate; MSAL.NET: WithSendX5C(true)).]")
        if not isinstance(x5c, list) or not 1 <= len(x5c) <= MAX_CHAIN or not all(isinstance(c, str) for c in x5c):
            return ("assertion_malformed", "The client assertion's x5c header must be a list of base64 "
                    "DER certificates, leaf first.")
        # msal copies the PEM body, line breaks included (msal.application.extract_certs): ignore whitespace
        ders = []
        try:
            for entry in x5c:
                ders.append(base64.b64decode("".join(entry.split()), validate=True))
            chain = [x509.load_der_x509_certificate(der) for der in ders]
        except (binascii.Error, ValueError):
            return ("assertion_malformed", "The client assertion's x5c header holds something that is not a "
                    "base64 DER certificate.")
        leaf_der = ders[0]
        named = {k: str(v).rstrip("=") for k, v in header.items() if k in ("x5t", "x5t#S256") and v}
        if named.get("x5t", x5t_of_der(leaf_der)) != x5t_of_der(leaf_der) or \
                named.get("x5t#S256", x5t_s256_of_der(leaf_der)) != x5t_s256_of_der(leaf_der):
            return ("assertion_malformed", "The client assertion's x5t does not name the first certificate of "
                    "its x5c header.")
        refused = self.check_chain(client_id, chain)
        return refused if refused is not None else Certificate(chain[0])


def _leads_to(chain: list[x509.Certificate], anchor: x509.Certificate) -> bool:
    """Each certificate is issued by the next; the last one is the anchor or issued by it."""
    try:
        for child, parent in zip(chain, chain[1:]):
            if parent == anchor:
                child.verify_directly_issued_by(anchor)
                return True
            child.verify_directly_issued_by(parent)
        last = chain[-1]
        if last == anchor:                 # a lone CA certificate is not a client certificate
            return False
        last.verify_directly_issued_by(anchor)
        return True
    except (InvalidSignature, ValueError, TypeError):   # not issued by it (name, key type or signature)
        return False
