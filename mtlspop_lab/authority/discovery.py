"""Discovery documents as Entra ID serves them, plus one RFC 8414 document for generic clients.

* ``/{tenant}/v2.0/.well-known/openid-configuration``: the v2 document MSAL
  reads (issuer ``https://login.<domain>/{tid}/v2.0``; token and JWKS
  endpoints on the login host). Like Entra's, it does **not** publish RFC
  8705's ``mtls_endpoint_aliases`` or
  ``tls_client_certificate_bound_access_tokens``: MSAL derives the mTLS host by
  rule (``login.X`` -> ``[region.]mtlsauth.X``, port kept).
* ``/common`` and ``/organizations``: the same document with ``{tenantid}``
  templates in the issuer, as Entra answers.
* ``/{tenant}/.well-known/openid-configuration``: the v1 document (issuer
  ``https://sts.<domain>/{tid}/``, v1 endpoints).
* ``/common/discovery/instance``: instance discovery, which MSAL calls for a
  host it does not know (and, in its PoP code, after an error): the tenant
  discovery endpoint and the alias group of the login host.
* ``/{tenant}/v2.0/.well-known/oauth-authorization-server``: RFC 8414 metadata
  with the RFC 8705 fields, for the generic-server path only
  (``Cloud.from_discovery`` and RFC 8705 clients that are not Entra-aware).
  Entra has no such document; the lab serves it so the same generic client
  can be compared against the lab and against oidc-provider.
"""

from __future__ import annotations

from urllib.parse import urlsplit

AUTH_METHODS = ["client_secret_post", "private_key_jwt", "client_secret_basic"]
V2_CLAIMS = ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
             "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name",
             "tid", "ver", "at_hash", "c_hash", "email"]
V1_CLAIMS = ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
             "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name",
             "family_name", "nickname"]
TENANT_TEMPLATE = "{tenantid}"


def v2_document(*, login_base: str, tenant: str, issuer: str, domain: str, api_base: str,
                token_base: str | None = None, region_scope: str | None = "NA") -> dict:
    """Entra's v2.0 OpenID configuration for ``tenant`` (a tenant id, ``common`` or ``organizations``).

    ``token_base``: the host whose token endpoint is named (the login host,
    except when the document is asked on an mTLS host, see TokenService).
    """
    base = f"{login_base}/{tenant}"
    token = f"{token_base or login_base}/{tenant}"
    return {
        "token_endpoint": f"{token}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{api_base}/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": list(V2_CLAIMS),
        "kerberos_endpoint": f"{base}/kerberos",
        "tenant_region_scope": region_scope,
        "cloud_instance_name": domain,
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def v1_document(*, login_base: str, tenant: str, issuer: str, domain: str) -> dict:
    """Entra's v1 OpenID configuration (``/{tenant}/.well-known/openid-configuration``)."""
    base = f"{login_base}/{tenant}"
    return {
        "token_endpoint": f"{base}/oauth2/token",
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "jwks_uri": f"{login_base}/common/discovery/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": issuer,
        "microsoft_multi_refresh_token": True,
        "authorization_endpoint": f"{base}/oauth2/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/logout",
        "claims_supported": list(V1_CLAIMS),
        "check_session_iframe": f"{base}/oauth2/checksession",
        "userinfo_endpoint": f"{base}/openid/userinfo",
        "kerberos_endpoint": f"{base}/kerberos",
        "tenant_region_scope": "NA",
        "cloud_instance_name": domain,
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def rfc8414_document(*, login_base: str, mtls_base: str, tenant: str, issuer: str) -> dict:
    """RFC 8414 metadata with RFC 8705's fields: the generic-server view of one tenant."""
    return {
        "issuer": issuer,
        "token_endpoint": f"{login_base}/{tenant}/oauth2/v2.0/token",
        "jwks_uri": f"{login_base}/{tenant}/discovery/v2.0/keys",
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "tls_client_auth",
                                                  "self_signed_tls_client_auth"],
        "grant_types_supported": ["client_credentials"],
        "mtls_endpoint_aliases": {"token_endpoint": f"{mtls_base}/{tenant}/oauth2/v2.0/token"},
        "tls_client_certificate_bound_access_tokens": True,
    }


def instance_metadata(login_host: str, aliases: list[str]) -> list[dict]:
    """The alias group of the lab's login host (host names without port, as MSAL compares them)."""
    return [{"preferred_network": login_host, "preferred_cache": login_host, "aliases": list(aliases)}]


def tenant_discovery_endpoint(login_base: str, authority_url: str) -> tuple[str, str] | None:
    """``(tenant, endpoint)`` for the authority (or authorize) URL a client sent, or None if unusable.

    The v2 document for a ``/v2.0/`` authorize URL or a bare authority, the
    v1 document for a v1 authorize URL (``/oauth2/authorize``).
    """
    try:
        parts = urlsplit(authority_url)
    except ValueError:
        return None
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme != "https" or not segments:
        return None
    tenant = segments[0]
    v1 = len(segments) >= 2 and segments[1] == "oauth2" and "v2.0" not in segments
    well_known = "/.well-known/openid-configuration" if v1 else "/v2.0/.well-known/openid-configuration"
    return tenant, f"{login_base}/{tenant}{well_known}"
