"""Two certificate-bound tokens side by side: Entra's dialect of RFC 8705 and any other server's.

Why: a learner who has seen Entra's ``mtls_pop`` token meets a generic RFC 8705
server (oidc-provider, Keycloak) whose bound token says ``Bearer``; the table
shows that binding lives in ``cnf`` in both, and what else differs.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from .binding import check_binding
from .decode import decode_token


def _describe(token: Any, certificate: Any) -> dict:
    decoded = decode_token(token)
    header, claims = decoded.header, decoded.claims
    if certificate is None and hasattr(token, "binding_certificate"):
        certificate = token.binding_certificate
    verdict = check_binding(decoded, certificate) if certificate is not None else None
    cnf = claims.get("cnf")
    iat, exp = claims.get("iat"), claims.get("exp")
    token_type = decoded.token_type
    scheme = None
    if isinstance(getattr(token, "authorization_header", None), str):   # a flow's TokenResult
        scheme = token.authorization_header.split(" ", 1)[0]
    elif token_type:
        scheme = "mtls_pop" if token_type.lower() == "mtls_pop" else "Bearer"
    client = claims.get("appid") or claims.get("azp") or claims.get("client_id")
    client_claim = next((n for n in ("appid", "azp", "client_id") if n in claims), None)
    return {
        "token_type (token response)": token_type or "(not given)",
        "Authorization scheme": scheme or "(not given)",
        "JWS alg": header.get("alg"),
        "JWS typ": header.get("typ"),
        "kid in header": "yes" if header.get("kid") else "no",
        "iss": claims.get("iss"),
        "aud": claims.get("aud"),
        "sub": claims.get("sub"),
        "client claim": f"{client_claim} = {client}" if client_claim else "(none)",
        "scope claim": claims.get("scp") or claims.get("scope") or claims.get("roles") or "(none)",
        "cnf": "x5t#S256" if isinstance(cnf, dict) and "x5t#S256" in cnf else ("(none)" if cnf is None else "other"),
        "cnf.x5t#S256": cnf.get("x5t#S256") if isinstance(cnf, dict) else None,
        "bound to the given certificate": None if verdict is None else verdict.bound,
        "lifetime (s)": int(exp - iat) if isinstance(exp, (int, float)) and isinstance(iat, (int, float)) else None,
        "claims": ", ".join(sorted(claims)),
    }


_NOTES = {
    "token_type (token response)": "Entra binds when the request asks (token_type=mtls_pop) and says mtls_pop; "
                                   "RFC 8705 servers bind by client registration and say Bearer. "
                                   "Binding is in cnf, not in this label.",
    "Authorization scheme": "Entra's resources want 'mtls_pop <token>'; RFC 8705 resources take 'Bearer <token>' "
                            "and check the TLS certificate against cnf.",
    "JWS typ": "RFC 9068 JWT access tokens use 'at+jwt'; Entra writes 'JWT'.",
    "client claim": "Entra: appid/azp; RFC 9068: client_id.",
    "cnf.x5t#S256": "Both: base64url(SHA-256(DER of the client certificate)), RFC 8705 section 3.1.",
    "bound to the given certificate": "check_binding: the one check a resource server makes.",
}


def compare_tokens(a: Any, b: Any, *, certificate_a: Any = None, certificate_b: Any = None,
                   labels: tuple[str, str] = ("Entra-style mtls_pop", "RFC 8705 (oidc-provider)")):
    """A pandas DataFrame: two certificate-bound tokens side by side, one row per aspect.

    ``a``/``b``: token strings, token responses (dicts with ``access_token``
    and ``token_type``) or token results. ``certificate_a``/``_b``: the
    certificates to check the binding against (a result's
    ``binding_certificate`` by default). Nothing secret is shown: claims and
    thumbprints only, never the token or its signature. Columns: ``aspect``,
    the two labels, ``same`` and ``note``.
    """
    from .frames import WrappedFrame  # pandas: heavy, loaded only when a table is asked for

    if not (isinstance(labels, (tuple, list)) and len(labels) == 2 and labels[0] != labels[1]):
        raise ConfigurationError("labels must be two different column names.", cause=f"Got {labels!r}.",
                                 fix='labels=("Entra", "oidc-provider")')
    left, right = _describe(a, certificate_a), _describe(b, certificate_b)
    rows = []
    for aspect in left:
        va, vb = left[aspect], right[aspect]
        rows.append({"aspect": aspect, labels[0]: va, labels[1]: vb, "same": va == vb,
                     "note": _NOTES.get(aspect, "")})
    return WrappedFrame(rows, columns=["aspect", labels[0], labels[1], "same", "note"])
