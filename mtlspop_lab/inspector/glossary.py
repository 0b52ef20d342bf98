"""What each JWT header parameter and claim means, in plain words.

Why a table of its own: :func:`mtlspop_lab.inspector.explain_claims` is a
teaching surface, and the words belong in one place a reader can review
without reading code. Sources: RFC 7515/7519 (JOSE, JWT), RFC 7800 and 8705
(``cnf``), RFC 9068 (access-token profile) and Microsoft's public access-token
claim reference. Claims a table does not know are still shown, marked as such.
"""

from __future__ import annotations

HEADER_MEANINGS: dict[str, str] = {
    "alg": "Signature algorithm (RS256 = RSA PKCS#1 v1.5 with SHA-256). 'none' or an HMAC "
           "algorithm (HS256) on a token from an identity provider is an attack, not a token.",
    "typ": "Media type of the token ('JWT', or 'at+jwt' for RFC 9068 access tokens).",
    "kid": "Key ID: which key of the issuer's JWKS signed the token; verifiers pick the key by it.",
    "x5t": "SHA-1 thumbprint (base64url) of the signing certificate, the older way to name the key.",
    "x5t#S256": "SHA-256 thumbprint (base64url) of the signing certificate.",
    "x5c": "The signing certificate chain itself (standard base64 DER).",
    "jku": "URL of a JWKS; a verifier must not follow it blindly (it is attacker-controlled input).",
    "jwk": "A public key embedded in the header; never trust it to verify the same token.",
    "cty": "Content type of the payload (nested tokens).",
    "crit": "Header parameters the verifier must understand, or reject the token.",
    "nonce": "Microsoft Graph tokens carry a header nonce: they are meant for Graph only and "
             "do not verify with the standard algorithm outside Graph.",
}

CLAIM_MEANINGS: dict[str, str] = {
    # RFC 7519 registered claims
    "iss": "Issuer: the authority (and tenant) that signed the token. A verifier compares it "
           "with the issuer it trusts.",
    "sub": "Subject: who the token is about. For an app or managed identity token, the "
           "service principal's object id.",
    "aud": "Audience: the resource the token is for (an App ID URI such as "
           "https://graph.microsoft.com, or the resource's client id). A resource refuses tokens "
           "for another audience.",
    "exp": "Expiry: after this moment the token must be refused (resources allow a small clock skew).",
    "nbf": "Not before: the token must be refused before this moment.",
    "iat": "Issued at: when the authority minted the token.",
    "jti": "Token id: unique per token, lets a resource detect replays.",
    # RFC 7800 / 8705
    "cnf": "Confirmation: binds the token to a key. With 'x5t#S256' (RFC 8705) the token is "
           "certificate-bound: a resource accepts it only over mutual TLS with the certificate "
           "whose base64url(SHA-256(DER)) equals that value. Without cnf the token is a bearer "
           "token anyone holding it can use.",
    # OAuth / RFC 9068
    "scope": "Delegated scopes granted (space separated).",
    "client_id": "The OAuth client that requested the token (RFC 9068).",
    # Microsoft identity platform
    "tid": "Tenant id: the Entra ID tenant (directory) that issued the token.",
    "oid": "Object id of the caller's service principal (or user) in the tenant: the stable "
           "identifier to authorize on.",
    "azp": "Authorized party (v2.0 tokens): the client id of the application that requested the token.",
    "appid": "Application id (v1.0 tokens): the client id of the application that requested the token.",
    "azpacr": "How the client authenticated (v2.0): 0 public client, 1 client secret, "
              "2 client certificate (mTLS PoP and private_key_jwt are certificates).",
    "appidacr": "How the client authenticated (v1.0): 0 public client, 1 secret, 2 certificate.",
    "idtyp": "Identity type: 'app' for an app-only (client credentials or managed identity) "
             "token, 'user' for a user token.",
    "ver": "Token version: '1.0' or '2.0' (which claims and issuer format to expect).",
    "uti": "Unique token identifier (Microsoft's internal id, useful in support requests).",
    "rh": "Opaque internal claim Microsoft uses to revalidate tokens; ignore it.",
    "aio": "Opaque internal claim Microsoft uses for token reuse; ignore it.",
    "roles": "Application permissions (app roles) granted to the caller on this resource.",
    "wids": "Directory role template ids of the caller.",
    "groups": "Group object ids of the caller (when the app asks for them).",
    "name": "Display name of the user (user tokens).",
    "preferred_username": "Sign-in name of the user (user tokens; not stable, do not authorize on it).",
    "upn": "User principal name (v1.0 user tokens).",
    "unique_name": "Human-readable name of the subject (v1.0 tokens; do not authorize on it).",
    "amr": "Authentication methods used (user tokens).",
    "acr": "Authentication context class (v1.0 user tokens).",
    "acrs": "Authentication context ids satisfied (Conditional Access).",
    "xms_mirid": "Managed identity resource id: the Azure resource path of the managed identity "
                 "that requested the token.",
    "xms_tcdt": "Tenant creation date/time (Microsoft internal).",
    "xms_cc": "Client capabilities the app declared (e.g. 'cp1' for continuous access evaluation).",
    "xms_idrel": "Relationship of the identity to the tenant (Microsoft internal).",
    "xms_ftd": "Microsoft internal claim; ignore it.",
    "xms_az_rid": "Azure resource id of the caller (managed identity tokens).",
    "xms_az_nwperimid": "Network security perimeter ids (Azure internal).",
    "xms_pdid": "Microsoft internal claim; ignore it.",
    "xms_rd": "Microsoft internal claim; ignore it.",
    "xms_sub_fct": "Subject facets (Microsoft internal).",
    "xms_act_fct": "Actor facets (Microsoft internal).",
    "xms_tnt_fct": "Tenant facets (Microsoft internal).",
    "ipaddr": "IP address the caller authenticated from (user tokens).",
    "onprem_sid": "On-premises security identifier (synced users).",
    "sid": "Session id (user tokens).",
    "nonce": "Nonce echoed from the request (ID tokens).",
    "at_hash": "Hash of the access token (ID tokens).",
}

CNF_MEMBER_MEANINGS: dict[str, str] = {
    "x5t#S256": "certificate-bound (RFC 8705): base64url, no padding, of SHA-256 over the "
                "certificate's DER bytes",
    "jkt": "key-bound by DPoP (RFC 9449): thumbprint of a JWK, not of a certificate",
    "jwk": "key-bound (RFC 7800): a public JWK, used by signed-HTTP-request PoP, not by mTLS",
    "kid": "key-bound (RFC 7800) by key id, not by certificate",
    "jwe": "key-bound (RFC 7800) to an encrypted key, not to a certificate",
    "jku": "key-bound (RFC 7800) to a key in a JWKS URL, not to a certificate",
}

# Claims holding NumericDate values (seconds since 1970-01-01 UTC).
TIME_CLAIMS = ("iat", "nbf", "exp", "auth_time", "xms_tcdt")


def meaning_of(name: str, *, header: bool = False) -> str:
    """The plain-words meaning of a claim (or of a header parameter when ``header``)."""
    table = HEADER_MEANINGS if header else CLAIM_MEANINGS
    if name in table:
        return table[name]
    if not header and name.startswith("xms_"):
        return "Microsoft-specific extension claim (xms_*); informative, not for authorization."
    return ("Not a registered or Microsoft claim the lab knows; the issuer or the "
            "application defines it.")
