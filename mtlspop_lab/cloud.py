"""Cloud: where a flow sends its requests, and which trust it uses.

Two kinds of target exist. The **live** ones (``Cloud.public()``,
``Cloud.for_login_host("login.microsoftonline.us")``) apply MSAL's host rule
for mTLS PoP: the authority host ``login.X`` becomes ``mtlsauth.X``
(``{region}.mtlsauth.X`` with a region), the four public login hosts map to
``mtlsauth.microsoft.com``, and some clouds are refused. The **local** one is
built by :class:`~mtlspop_lab.authority.LocalAuthority`: Entra-shaped host
names under a loopback domain (``https://login.mtlspop.localhost:<port>``),
the same rule (the port is kept, as MSAL keeps it), and the authority's own
CA as trust. A hand-built target may still name explicit ``mtls_url`` /
``regional_mtls_urls`` (a server on bare ports). A **discovered**
one (``Cloud.from_discovery(url)``) is any RFC 8705 server described by its
discovery document: its endpoints are read, not derived.

Flows ask the cloud for URLs, never build them, so the same flow code runs
against both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigurationError, TransportError

PUBLIC_LOGIN_HOSTS = frozenset({"login.microsoftonline.com", "login.windows.net",
                                "login.microsoft.com", "sts.windows.net"})
MTLS_UNSUPPORTED_HOSTS = frozenset({"login.usgovcloudapi.net", "login.chinacloudapi.cn"})
UNTENANTED = frozenset({"common", "organizations", "consumers"})
LIVE_IMDS_URL = "http://169.254.169.254"
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
# the resource every demo, panel and notebook asks for unless told otherwise
GRAPH = "https://graph.microsoft.com"

_REGION_RE = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
_HOST_RE = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


@dataclass(frozen=True)
class Cloud:
    """The endpoints and trust of one target (live Entra ID or a local authority).

    ``login_url``: base of the server-TLS authority (``https://login.microsoftonline.com``).
    ``mtls_url``: base of the global mTLS token host; None (the usual case) means
    it is derived from ``login_url`` by MSAL's rule.
    ``regional_mtls_urls``: explicit region -> base URL, for a server on bare ports.
    ``regions``: the regions a target serves (the local authority's); empty
    means any region (live clouds).
    ``imds_url``: managed identity endpoint base.
    ``ca_bundle``: PEM file that verifies the servers; None means the system trust.
    ``metadata``: the discovery document of a discovered cloud (empty otherwise);
    its ``token_endpoint`` and ``mtls_endpoint_aliases`` replace MSAL's URL rule.
    """

    name: str
    login_url: str
    imds_url: str = LIVE_IMDS_URL
    mtls_url: str | None = None
    regional_mtls_urls: Mapping[str, str] = field(default_factory=dict)
    resource_url: str | None = None
    ca_bundle: str | None = None
    is_local: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    regions: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "login_url", self.login_url.rstrip("/"))
        object.__setattr__(self, "regional_mtls_urls",
                           MappingProxyType({k: v.rstrip("/") for k, v in self.regional_mtls_urls.items()}))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        object.__setattr__(self, "regions", tuple(check_region(r) for r in self.regions))

    # -- constructors ---------------------------------------------------------------
    @classmethod
    def public(cls) -> "Cloud":
        """Live Microsoft Entra ID (public cloud) and Azure IMDS at its link-local address."""
        return cls(name="AzurePublic", login_url="https://login.microsoftonline.com")

    @classmethod
    def for_login_host(cls, host: str, *, imds_url: str = LIVE_IMDS_URL) -> "Cloud":
        """A live sovereign or custom cloud, named by its ``login.`` host."""
        text = host.strip().lower() if isinstance(host, str) else ""
        try:
            host = (urlsplit(text).hostname or "") if "//" in text else text.rstrip("/")
        except ValueError:  # urlsplit: "Invalid IPv6 URL"
            host = ""
        if not _HOST_RE.fullmatch(host):
            raise ConfigurationError(f"{str(text)[:80]!r} is not a login host name.",
                                     cause="A host is dot-separated letters, digits and dashes, "
                                           "without spaces, brackets or paths.",
                                     fix='Pass a host like "login.microsoftonline.us".',
                                     code="invalid_authority_host")
        return cls(name=host, login_url=f"https://{host}", imds_url=imds_url)

    @classmethod
    def from_discovery(cls, url: str, *, ca_bundle: str | None = None, name: str | None = None,
                       timeout: float = 10.0) -> "Cloud":
        """Any RFC 8705 authorization server, read from its discovery document.

        ``url`` is the issuer (``https://as.example``) or the document itself
        (``.../.well-known/openid-configuration`` or
        ``.../.well-known/oauth-authorization-server``). The token endpoint
        comes from the document, the mTLS one from ``mtls_endpoint_aliases``
        (RFC 8705 section 5; without aliases the ordinary endpoint takes
        mTLS too). No tenant appears in these URLs: tenant arguments are
        ignored for such a cloud. ``ca_bundle`` is the PEM that verifies the
        server (None: the system trust; ``REQUESTS_CA_BUNDLE`` is not read).

        The document's ``issuer`` must be the URL it was fetched under
        (OpenID Connect Discovery 1.0 section 4.3, RFC 8414 section 3.3), so
        a document cannot claim to speak for another server.
        """
        import requests  # the lab's one HTTP client; imported here so `cloud` stays light

        url = (url or "").strip()
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.netloc:
            raise ConfigurationError(f"{url[:80]!r} is not an https URL.",
                                     cause="Discovery documents are served over https only.",
                                     fix="Pass the issuer, like 'https://as.example', or its "
                                         "'.well-known/openid-configuration' URL.",
                                     code="invalid_discovery_url")
        if "/.well-known/" in parts.path:
            doc_url = url
            well_known = parts.path[parts.path.index("/.well-known/"):]
            expected_issuer = url[:url.index(well_known)]
        else:
            expected_issuer = url.rstrip("/")
            doc_url = expected_issuer + "/.well-known/openid-configuration"

        with requests.Session() as session:
            session.trust_env = False  # REQUESTS_CA_BUNDLE must not replace the given trust
            try:
                response = session.get(doc_url, timeout=timeout, verify=ca_bundle or True,
                                       headers={"Accept": "application/json"})
            except requests.exceptions.SSLError:
                raise TransportError(f"TLS to {parts.netloc} failed while reading its discovery document.",
                                     cause="The server's certificate is not trusted by the given bundle.",
                                     fix="Pass ca_bundle= the PEM file of the CA that issued the "
                                         "server's certificate.", code="tls_failure") from None
            except requests.exceptions.RequestException as exc:
                raise TransportError(f"Cannot read the discovery document at {doc_url}.",
                                     cause=type(exc).__name__ + ": the server did not answer.",
                                     fix="Check the URL and that the server is running.") from None
        if response.status_code != 200:
            raise ConfigurationError(f"No discovery document at {doc_url} (HTTP {response.status_code}).",
                                     cause="The URL is not an issuer, or the server publishes its "
                                           "metadata elsewhere.",
                                     fix="Pass the issuer URL, or the full '.well-known/...' URL.",
                                     code="discovery_not_found")
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ConfigurationError(f"The answer at {doc_url} is not a JSON discovery document.",
                                     cause="The body is not a JSON object.",
                                     fix="Check that the URL is the authorization server's metadata.",
                                     code="discovery_malformed")
        for key in ("issuer", "token_endpoint", "jwks_uri"):
            value = document.get(key)
            if not isinstance(value, str) or urlsplit(value).scheme != "https":
                raise ConfigurationError(f"The discovery document at {doc_url} has no https {key!r}.",
                                         cause="An RFC 8414 / OIDC discovery document names its issuer, "
                                               "token endpoint and JWKS by https URLs.",
                                         fix="Check the server's configuration.",
                                         code="discovery_malformed")
        if document["issuer"].rstrip("/") != expected_issuer:
            raise ConfigurationError(
                f"The discovery document at {doc_url} names the issuer {document['issuer']!r}.",
                cause="The issuer in the document must be the URL it was fetched under; another "
                      "value means the document describes (or impersonates) another server.",
                fix="Fetch the discovery document under the issuer URL it names.",
                code="issuer_mismatch")
        aliases = document.get("mtls_endpoint_aliases")
        if aliases is not None and not isinstance(aliases, dict):
            raise ConfigurationError(f"mtls_endpoint_aliases at {doc_url} is not an object.",
                                     cause="RFC 8705 section 5 defines it as a JSON object of endpoint URLs.",
                                     fix="Check the server's configuration.", code="discovery_malformed")
        mtls_token = (aliases or {}).get("token_endpoint") or document["token_endpoint"]
        if not isinstance(mtls_token, str) or urlsplit(mtls_token).scheme != "https":
            raise ConfigurationError(f"The mTLS token endpoint alias at {doc_url} is not an https URL.",
                                     cause="RFC 8705 endpoints are https URLs.",
                                     fix="Check the server's configuration.", code="discovery_malformed")
        mtls_parts = urlsplit(mtls_token)
        return cls(name=name or urlsplit(document["issuer"]).netloc,
                   login_url=document["issuer"],
                   mtls_url=f"{mtls_parts.scheme}://{mtls_parts.netloc}",
                   ca_bundle=ca_bundle, metadata=document)

    @property
    def is_discovered(self) -> bool:
        """True when the endpoints come from a discovery document (:meth:`from_discovery`)."""
        return bool(self.metadata)

    @property
    def issuer(self) -> str | None:
        """The ``iss`` a discovered server puts in its tokens (None unless discovered)."""
        return self.metadata.get("issuer")

    @property
    def jwks_uri(self) -> str | None:
        """Where a discovered server publishes its signing keys (None unless discovered)."""
        return self.metadata.get("jwks_uri")

    # -- URL rules ------------------------------------------------------------------
    @property
    def login_host(self) -> str:
        return urlsplit(self.login_url).netloc

    def authority_url(self, tenant: str) -> str:
        """The authority msal is given: ``{login_url}/{tenant}``."""
        return f"{self.login_url}/{check_tenant(tenant, allow_untenanted=True)}"

    def token_endpoint(self, tenant: str) -> str:
        """The server-TLS token endpoint (Bearer, private_key_jwt)."""
        if self.is_discovered:
            return self.metadata["token_endpoint"]
        return f"{self.authority_url(tenant)}/oauth2/v2.0/token"

    def mtls_base_url(self, region: str | None = None) -> str:
        """Base URL of the mTLS token host, global or regional, by MSAL's rule."""
        if region is not None:
            region = check_region(region)
        if self.is_discovered or self.mtls_url is not None or self.regional_mtls_urls:
            if region is None:
                if self.mtls_url is None:
                    raise ConfigurationError(f"Cloud {self.name!r} has no mTLS endpoint.")
                return self.mtls_url
            if region not in self.regional_mtls_urls:
                known = ", ".join(sorted(self.regional_mtls_urls)) or "none"
                raise ConfigurationError(
                    f"Region {region!r} is not served by {self.name}.",
                    cause=f"This target knows the regions: {known}.",
                    fix="Pass one of those regions, or region=None for the global endpoint.",
                    code="unknown_region")
            return self.regional_mtls_urls[region]
        if region is not None and self.regions and region not in self.regions:
            raise ConfigurationError(
                f"Region {region!r} is not served by {self.name}.",
                cause=f"This target knows the regions: {', '.join(self.regions)}.",
                fix="Pass one of those regions, or region=None for the global endpoint.",
                code="unknown_region")
        return mtls_pop_url(self.login_url, region)

    def mtls_token_endpoint(self, tenant: str, region: str | None = None) -> str:
        """``{mtls host}/{tenant}/oauth2/v2.0/token``; refuses ``/common`` and ``/organizations``.

        A discovered cloud answers its ``mtls_endpoint_aliases.token_endpoint``
        (or its ``token_endpoint``) and has no regions.
        """
        if self.is_discovered:
            if region is not None:
                self.mtls_base_url(region)  # raises unknown_region: a discovered server has none
            aliases = self.metadata.get("mtls_endpoint_aliases") or {}
            return aliases.get("token_endpoint") or self.metadata["token_endpoint"]
        return f"{self.mtls_base_url(region)}/{check_tenant(tenant)}/oauth2/v2.0/token"

    def imds_token_url(self) -> str:
        return f"{self.imds_url.rstrip('/')}/metadata/identity/oauth2/token"

    def describe(self) -> str:
        if self.is_discovered:
            return f"{self.name} (RFC 8705 server, discovered from {self.issuer})"
        return f"{self.name} ({'embedded local authority' if self.is_local else 'live'})"


def mtls_pop_host(login_host: str, region: str | None = None) -> str:
    """MSAL's host rule for mTLS PoP: the ``mtlsauth`` host for a ``login.`` host (no port).

    The four public login hosts map to ``mtlsauth.microsoft.com``; any other
    ``login.X`` to ``mtlsauth.X``; a region prefixes ``{region}.``. Refused:
    hosts not starting with ``login.`` and the legacy US Gov / China hosts
    (msal-python PR #938 ``msal/mtls.py``; MSAL.NET behaves the same).
    """
    host = (login_host or "").lower()
    if host in MTLS_UNSUPPORTED_HOSTS or not host.startswith("login.") and host not in PUBLIC_LOGIN_HOSTS:
        raise ConfigurationError(
            f"mTLS PoP is not supported for the authority host {host!r}.",
            cause="MSAL maps only 'login.*' hosts to 'mtlsauth.*'; US Gov (usgovcloudapi) and "
                  "China (chinacloudapi) legacy hosts have no mTLS endpoint.",
            fix="Use the public cloud, a supported sovereign 'login.' host, or Bearer tokens.",
            code="mtls_pop_not_supported_for_environment")
    base = "mtlsauth.microsoft.com" if host in PUBLIC_LOGIN_HOSTS else "mtlsauth." + host[len("login."):]
    return f"{check_region(region)}.{base}" if region else base


def mtls_pop_url(url: str, region: str | None = None) -> str:
    """``url`` (an authority or discovered token endpoint on a ``login.`` host) with MSAL's mTLS host.

    Only the host changes: scheme, port, path and query are kept, as MSAL
    keeps them (``https://login.X:8443/t/oauth2/v2.0/token`` ->
    ``https://mtlsauth.X:8443/t/oauth2/v2.0/token``).
    """
    parts = urlsplit(url)
    host = mtls_pop_host(parts.hostname or "", region)
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)).rstrip("/")


def check_tenant(tenant: str, *, allow_untenanted: bool = False) -> str:
    """A tenant id or domain; ``common``/``organizations`` refused where a tenant is required."""
    if not isinstance(tenant, str) or not tenant.strip():
        raise ConfigurationError("A tenant id is required.", cause=f"Got {tenant!r}.",
                                 fix="Pass the directory (tenant) id of the app registration.")
    tenant = tenant.strip()
    if not re.fullmatch(r"[A-Za-z0-9.\-_]{1,256}", tenant):
        raise ConfigurationError(f"{tenant[:60]!r} is not a tenant id or domain.",
                                 cause="Tenant ids are GUIDs or domain names.",
                                 fix="Copy the 'Directory (tenant) ID' of the app registration.",
                                 code="invalid_tenant")
    if not allow_untenanted and tenant.lower() in UNTENANTED:
        raise ConfigurationError(
            f"mTLS PoP needs a tenanted authority, not /{tenant}.",
            cause="The token for a client credential is issued by one tenant; /common and "
                  "/organizations cannot bind it.",
            fix="Use the tenant id of the app registration.", code="missing_tenanted_authority")
    return tenant


def check_region(region: str) -> str:
    """An Azure region name such as ``westus3`` (lower-case letters, digits, dashes)."""
    if not isinstance(region, str) or not _REGION_RE.fullmatch(region.strip().lower()):
        raise ConfigurationError(f"{str(region)[:40]!r} is not an Azure region name.",
                                 cause="Regions are short names like 'westus3' or 'eastus2'.",
                                 fix="Pass the region where the app runs, or None for the global endpoint.",
                                 code="invalid_region")
    return region.strip().lower()
