"""The transport that presents the binding certificate: the other half of mTLS PoP.

An ``mtls_pop`` token is checked by the resource against the certificate of
the TLS handshake (RFC 8705 section 3). azure-core's transports take one
fixed certificate, if any; a PoP token comes with its own certificate, which
changes when the identity's certificate rotates (or IMDS issues a new one).
So this transport reads the token from the request's ``Authorization``
header, asks the credential which certificate it is bound to, and sends the
request over a connection presenting exactly that one: header and
certificate cannot drift apart. One inner azure-core transport (and
connection pool) per certificate; ``close()`` closes them all.

It does not look at the scheme: with a Bearer policy in front, the request
still goes out with the right certificate, and the resource's refusal is then
about the scheme alone (the pitfall the notebook shows side by side).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .azure_extra import require

require("azure.core")

from azure.core.pipeline.transport import HttpTransport, RequestsTransport  # noqa: E402

from ..errors import CertificateError, ConfigurationError  # noqa: E402
from ..transport import Transport  # noqa: E402

_MAX_CERTIFICATES = 8        # a rotation keeps the old pool until it ages out


def certificate_for_request(credential, headers):
    """The certificate (with key) the request's token is bound to; None for an unbound or unknown one.

    A request whose header says ``mtls_pop`` must get a certificate: sending
    it without one would only earn the resource's refusal, later and vaguer.
    """
    scheme, _, token = (headers.get("Authorization") or "").strip().partition(" ")
    certificate = credential.certificate_for_token(token.strip()) if token.strip() else None
    if certificate is None and scheme.lower() == "mtls_pop":
        raise CertificateError(
            "The mtls_pop token in this request has no known binding certificate.",
            cause="The transport presents the certificate the credential bound the token to; this token did "
                  "not come from the transport's credential (or the credential was closed).",
            fix="Build the policy and the transport from the same MtlsPopCredential.",
            code="mtls_certificate_not_provided")
    return certificate


def check_credential(credential) -> None:
    if not hasattr(credential, "certificate_for_token"):
        raise ConfigurationError("The transport needs the MtlsPopCredential that issues the tokens.",
                                 cause=f"Got {type(credential).__name__}, which cannot say which certificate "
                                       "a token is bound to.",
                                 fix="MtlsPopTransport(credential) with the policy's credential.")


class MtlsPopTransport(HttpTransport):
    """A ``RequestsTransport`` per binding certificate, chosen by the token in each request.

    ``connection_verify``: the CA bundle that verifies the resource's TLS
    certificate; defaults to the trust of the credential's cloud (the local
    authority's CA, or the system store for live Azure). Environment variables
    such as ``REQUESTS_CA_BUNDLE`` do not override it.
    """

    def __init__(self, credential, *, connection_verify: str | None = None):
        check_credential(credential)
        self._credential = credential
        self._ca_bundle = connection_verify if connection_verify is not None else credential.cloud.ca_bundle
        self._inner: OrderedDict[str | None, tuple[Transport, RequestsTransport]] = OrderedDict()
        self._lock = threading.Lock()

    def _transport_for(self, certificate) -> RequestsTransport:
        key = certificate.x5t_s256 if certificate is not None else None
        with self._lock:
            pair = self._inner.get(key)
            if pair is None:
                lab = Transport(certificate=certificate, ca_bundle=self._ca_bundle, name="azure-sdk")
                pair = self._inner[key] = (lab, RequestsTransport(session=lab.session, session_owner=False))
                while len(self._inner) > _MAX_CERTIFICATES:
                    old, _ = self._inner.popitem(last=False)[1]
                    old.close()
            self._inner.move_to_end(key)
            return pair[1]

    def send(self, request, **kwargs):
        certificate = certificate_for_request(self._credential, request.headers)
        return self._transport_for(certificate).send(request, **kwargs)

    @property
    def presented_certificates(self) -> list[str]:
        """x5t#S256 of each certificate this transport has connections for (None: no certificate)."""
        with self._lock:
            return list(self._inner)

    def open(self) -> None:
        """Connections open on first use, per certificate."""

    def close(self) -> None:
        """Close every connection pool. Idempotent; the transport can be used again afterwards."""
        with self._lock:
            pairs = list(self._inner.values())
            self._inner.clear()
        for lab, _ in pairs:
            lab.close()

    def __enter__(self) -> "MtlsPopTransport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
