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
    "kid": "Key ID: which key of the issuer's JWKS signed the token; verifiers pick the key by it. "
           "Entra's kid is the signing certificate's SHA-1 thumbprint (base64url), the same value as x5t.",
    "x5t": "SHA-1 thumbprint (base64url) of the issuer's signing certificate; Entra sends it next to kid "
           "with the same value. Not the client's certificate: that one is in cnf.",
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
    "iss": "Issuer: the authority and tenant that signed the token. Its form tells the version: "
           "v1.0 tokens say https://sts.windows.net/{tenant}/ (the lab: https://sts.mtlspop.localhost/"
           "{tenant}/), v2.0 tokens https://login.microsoftonline.com/{tenant}/v2.0. A verifier compares "
           "it with the issuer it trusts, for the version its API accepts.",
    "sub": "Subject: who the token is about. For an app or managed identity token, the "
           "service principal's object id.",
    "aud": "Audience: the resource the token is for. In a v1.0 token it is the resource's URI "
           "(https://graph.microsoft.com); in a v2.0 token the API's application (client) id, a GUID. "
           "A resource refuses tokens for another audience.",
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
    "azp": "Authorized party (v2.0 tokens): the client id of the application that requested the token. "
           "A v1.0 token names it appid instead; a token never carries both.",
    "appid": "Application id (v1.0 tokens): the client id of the application that requested the token. "
             "A v2.0 token names it azp instead.",
    "azpacr": "How the client authenticated (v2.0): 0 public client, 1 client secret, "
              "2 client certificate (mTLS PoP and private_key_jwt are certificates).",
    "appidacr": "How the client authenticated (v1.0): 0 public client, 1 secret, 2 certificate.",
    "idtyp": "Identity type: 'app' for an app-only (client credentials or managed identity) "
             "token, 'user' for a user token.",
    "ver": "Token version: '1.0' or '2.0'. Entra issues the version the resource (aud) accepts, "
           "whatever endpoint the client called: Graph, Key Vault, ARM and Storage take v1.0; an API "
           "registered with accessTokenAcceptedVersion 2 gets v2.0. The version decides the issuer "
           "form, the aud form and appid/appidacr versus azp/azpacr.",
    "uti": "Unique token identifier (Microsoft's internal id, useful in support requests).",
    "rh": "Opaque internal claim Microsoft uses to revalidate tokens; ignore it.",
    "aio": "Opaque internal claim Microsoft uses for token reuse; ignore it.",
    "idp": "Identity provider that authenticated the subject. For an app or managed identity it is the "
           "tenant's own issuer in v1.0 form (https://sts.windows.net/{tenant}/).",
    "xms_tbflags": "Token-binding flags (Microsoft): present on certificate-bound (mtls_pop) tokens; 2 is "
                   "what MSAL's manual tests show for a bound token. The binding itself is in cnf.",
    "app_displayname": "Display name of the client application (optional claim).",
    "roles": "Application permissions (app roles) granted to the caller on this resource; present only "
             "when a role was granted. An API authorizes app-only callers on roles.",
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
                 "that requested the token (Entra writes 'resourcegroups' in lower case).",
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


def version_of(claims: dict) -> str:
    """Which token version the claims are and why, in one sentence (for explain_claims' ``ver`` row)."""
    ver = str(claims.get("ver", ""))
    iss = str(claims.get("iss", ""))
    if ver == "1.0" or (not ver and "sts." in iss):
        client = "appid/appidacr" if "appid" in claims else "no appid (unusual)"
        return (f"This is a v1.0 token: its issuer is the v1 form ({iss or 'missing'}), aud is the resource "
                f"URI and the client is named by {client}. Entra issued v1.0 because this resource accepts it.")
    if ver == "2.0" or iss.endswith("/v2.0"):
        client = "azp/azpacr" if "azp" in claims else "no azp (unusual)"
        return (f"This is a v2.0 token: its issuer ends with /v2.0, aud is the API's application id and "
                f"the client is named by {client}. Entra issued v2.0 because the API accepts v2.0 tokens.")
    return "The token does not say its version (no ver claim, an issuer of neither form)."


def meaning_of(name: str, *, header: bool = False) -> str:
    """The plain-words meaning of a claim (or of a header parameter when ``header``)."""
    table = HEADER_MEANINGS if header else CLAIM_MEANINGS
    if name in table:
        return table[name]
    if not header and name.startswith("xms_"):
        return "Microsoft-specific extension claim (xms_*); informative, not for authorization."
    return ("Not a registered or Microsoft claim the lab knows; the issuer or the "
            "application defines it.")
