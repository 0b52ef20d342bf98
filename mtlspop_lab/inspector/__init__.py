"""The binding inspector: decode, verify and explain a token against a certificate.

The moment mTLS PoP clicks is when a learner sees the token's ``cnf.x5t#S256``
next to the thumbprint of the certificate they hold, and watches the
comparison fail for any other certificate. jwt.io and jwt.ms decode and
explain claims; neither checks a binding. This package does both, for tokens
from any RFC 8705 issuer, not only the lab's own. One module a job:

* :mod:`.decode` - :func:`decode_token` reads header and claims and says "not verified".
* :mod:`.verify` - :func:`verify_token` checks signature, times, audience and issuer with pyjwt.
* :mod:`.binding` - :func:`check_binding` compares ``cnf.x5t#S256`` with a certificate and
  names the usual mistakes when the two differ.
* :mod:`.explain` - :func:`explain_claims`, a pandas table of claims in plain words
  (the words live in :mod:`.glossary`).
* :mod:`.compare` - :func:`compare_tokens`, two bound tokens side by side.
* :mod:`.view` - :func:`inspect_token`, the claims inspector's card: segments, every claim in
  full, local and relative times, cnf beside the certificate, the signature against a JWKS.

Nothing here echoes a token back: messages give lengths and positions, reprs
and HTML show a redacted form, and the raw token comes out only through
``DecodedToken.token(reveal=True)``.
"""

from ..certs.parse import sha1_thumbprint, x5t, x5t_s256
from .binding import BindingVerdict, check_binding
from .compare import compare_tokens
from .decode import MAX_TOKEN_CHARS, DecodedToken, decode_token
from .explain import explain_claims
from .verify import verify_token
from .view import TokenView, inspect_token

__all__ = ["decode_token", "verify_token", "check_binding", "explain_claims", "compare_tokens",
           "inspect_token", "TokenView", "BindingVerdict", "DecodedToken", "x5t_s256", "x5t", "sha1_thumbprint", "MAX_TOKEN_CHARS"]
