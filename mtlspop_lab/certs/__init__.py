"""Certificates: make them (a tiny CA for tests and the lab), read them in any form, thumbprint them.

- :mod:`.certificate` - :class:`Certificate` (a certificate and, optionally, its key): make,
  load, write, thumbprint, hand to TLS.
- :mod:`.ca` - :class:`CertificateAuthority` (issues server and client certificates), in the
  spirit of trustme.
- :mod:`.parse` - the one reader of whatever a learner has (PEM, DER, PFX, base64, a path), and
  the three thumbprints: :func:`x5t_s256` (what ``cnf`` carries), :func:`x5t`, :func:`sha1_thumbprint`.
"""

from .ca import CertificateAuthority
from .certificate import (
                          Certificate,
                          b64url,
                          generate_private_key,
                          new_guid,
                          sha1_hex_of_der,
                          x5t_of_der,
                          x5t_s256_of_der,
)
from .parse import MAX_CERTIFICATE_BYTES, read_certificates, sha1_thumbprint, x5t, x5t_s256

__all__ = ["Certificate", "CertificateAuthority", "b64url", "generate_private_key", "new_guid",
           "sha1_hex_of_der", "x5t_of_der", "x5t_s256_of_der", "MAX_CERTIFICATE_BYTES",
           "read_certificates", "sha1_thumbprint", "x5t", "x5t_s256"]
