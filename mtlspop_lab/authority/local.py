"""LocalAuthority: Entra ID's token service, Azure IMDS and a protected API, on loopback.

The lab's default world. Everything is real where it matters to mTLS PoP:
TLS 1.2+ with client certificates, RS256 tokens with a published JWKS, a
CA that issues IMDS v2 certificates, a resource that checks ``cnf``. So real
clients (msal, curl, requests) work against it unchanged, and a notebook can
turn knobs no real service offers: a delay per round trip, faults on demand,
an IMDS that is v1-only or absent.

Listeners: named hosts under the lab domain (``mtlspop.localhost``, reserved
for loopback), all HTTPS hosts on **one** TLS port of 127.0.0.1 routed by the
server name the client asks for (SNI), IMDS on its own plain-HTTP port:

=================  ==================================  ===========================
Python's ``ssl`` has no verify callback: a client certificate that does not
chain to the listener's trust store aborts the handshake before any OAuth
error can be sent. So every certificate the directory registers, and the CA
that issues IMDS v2 certificates, is added to the trust store of the
certificate-requesting listeners as it appears. An unknown certificate fails
at TLS (the trace shows a ``TLS`` entry); :meth:`trust_client_certificate`
lets one through on purpose, e.g. an attacker's, so the OAuth layer can be
seen refusing it.

Each region also has ESTS-R's regional login host, ``{region}.login.<domain>``
(no client certificate, like ``login``): msal's ``azure_region=`` builds it
from the authority's host and reads its discovery document when the
application is created, before any mTLS PoP request.
"""

from __future__ import annotations

import ssl
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from ..certs import Certificate, CertificateAuthority
from ..cloud import Cloud, TargetScope, check_region
from ..errors import ConfigurationError
from . import cleanup, names
from .attestation import AttestationService
from .certificate_trust import CertificateTrust, SubjectNameTrust
from .directory import Directory
from .external_issuers import ExternalIssuer, check_kind
from .faults import FaultPlan, fault_response
from .federation import FederatedAssertionCheck, IssuerKeys
from .http_limits import ConnectionTable
from .imds import SERVER_HEADER as IMDS_SERVER_HEADER, Imds
from .knobs import Knobs
from .resource_api import ResourceApi
from .server import Listener, Port, Request, Response
from .signing import Signer
from .tenants import Tenants
from .token_claims import app_token_claims, lifetime_for, sts_issuer
from .token_service import TokenService
from .trace import Trace


class LocalAuthority(Knobs):
    """The embedded authority. Starts at construction; use it as a context manager or call close()."""

    def __init__(self, regions=("westus3", "eastus2"), token_lifetime_s: int | None = None, *,
                 user_assigned_count: int = 3):
        regions = tuple(check_region(r) for r in regions)
        if not regions:
            raise ConfigurationError("LocalAuthority needs at least one region.", fix='regions=("westus3",)')
        self._default_lifetime = None if token_lifetime_s is None else self._check_lifetime(token_lifetime_s)
        self._lifetime = self._default_lifetime
        self._imds_mode = "v2"
        self._closed = False
        self._stop = threading.Event()
        self._scope = TargetScope("LocalAuthority")     # what clients keep for it; closed by close()
        self._lock = threading.Lock()
        self.regions = regions
        self.ca = CertificateAuthority("mtlspop-lab local authority CA")
        self.signer = Signer(self.ca)
        self._faults = FaultPlan()
        self._trace = Trace()
        self._folder = Path(tempfile.mkdtemp(prefix="mtlspop-authority-"))
        cleanup.register(self._folder)      # removed at exit or on SIGTERM/SIGHUP if close() never runs
        self._ca_bundle = self._folder / "ca.pem"
        self._ca_bundle.write_text(self.ca.pem)

        self.domain = names.LAB_DOMAIN
        self.hosts = {"login": f"login.{self.domain}", "mtls": f"mtlsauth.{self.domain}",
                      **{f"mtls:{r}": f"{r}.mtlsauth.{self.domain}" for r in regions},
                      **{f"login:{r}": f"{r}.login.{self.domain}" for r in regions},
                      "resource": f"api.{self.domain}", "attest": f"attest.{self.domain}"}
        # one certificate names every host of the TLS port (and the address, for clients without SNI)
        self._server_cert = self.ca.issue_server_certificate(*self.hosts.values(), "127.0.0.1", "localhost")
        server_ctx = self._server_context(client_certs=False)
        self._client_cert_ctx = self._server_context(client_certs=True)
        self._client_cert_ctx.load_verify_locations(cadata=self.ca.pem)   # IMDS v2 certificates
        self._trusted: set[str] = set()

        self._listeners: dict[str, Listener] = {}
        common: dict[str, Any] = {"on_exchange": self._trace.record, "on_tls_failure": self._trace.record_tls_failure,
                  "stop_event": self._stop, "connections": ConnectionTable()}
        # the attestation service (MAA-like): IMDS names it as attestationEndpoint
        self.attestation = AttestationService(lambda: self._listeners["attest"].url)
        handlers = {"resource": self._route_resource, "attest": self._route_attestation}
        for name, host in self.hosts.items():
            handler = handlers.get(name, self._route_token)
            tls = server_ctx if name.split(":")[0] in ("login", "attest") else self._client_cert_ctx
            self._add_listener(Listener(name, handler, tls=tls, host=host, **common))
        self._add_listener(Listener("imds", self._route_imds, server_header=IMDS_SERVER_HEADER, **common))
        self._ports = {"tls": Port("tls", [l for n, l in self._listeners.items() if n != "imds"],
                                   stop_event=self._stop),
                       "imds": Port("imds", [self._listeners["imds"]], stop_event=self._stop)}
        tls_port = self._ports["tls"]
        self._names = names.register(self.hosts.values(), https_port=lambda: tls_port.port, owner=self)
        try:
            for port in self._ports.values():
                port.start()
        except Exception:
            self.close()
            raise

        self.signer.jwks_issuer = f"{self.login_url}/{{tenantid}}/v2.0"
        self.tenants = Tenants(lambda: self.login_url, user_assigned_count=user_assigned_count,
                               on_certificate=self.trust_client_certificate)
        self.directory = self.tenants.home
        self.tenant_id = self.directory.tenant_id
        self.issuer = self.directory.issuer
        urls = lambda: {name: l.url for name, l in self._listeners.items()  # noqa: E731
                        if name not in ("imds", "attest")}
        self.token_service = TokenService(self.tenants, self.signer, base_urls=urls,
                                          lifetime_s=lambda: self._lifetime, domain=self.domain)
        self.imds = Imds(self.directory, self.signer, self.ca, issuer=self.issuer, region=regions[0],
                         regional_url=lambda: self.regional_urls[regions[0]],
                         lifetime_s=lambda: self._lifetime, mode=lambda: self._imds_mode,
                         attestation=self.attestation, domain=self.domain)
        self.resource_api = ResourceApi(self.tenants, self.signer, domain=self.domain)
        # one Cloud for the authority's life: its clients share its pool, and close() releases it
        self._cloud = Cloud(name="LocalAuthority", login_url=self.login_url, regions=self.regions,
                            imds_url=self.imds_url, resource_url=self.resource_url, ca_bundle=self.ca_bundle,
                            is_local=True, scope=self._scope)
        self.certificate_trust = CertificateTrust()            # subject name + issuer trust
        self.token_service.certificate_trust = self.certificate_trust
        self._external: dict[str, ExternalIssuer] = {}      # name -> issuer
        self.token_service.federation = FederatedAssertionCheck(IssuerKeys(self._issuer_keys))

    # -- construction helpers ----------------------------------------------------------
    def _server_context(self, *, client_certs: bool) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._server_cert.load_into(ctx)
        if client_certs:
            ctx.verify_mode = ssl.CERT_OPTIONAL
            # a registered leaf is its own trust anchor, whoever issued it
            ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return ctx

    def _add_listener(self, listener: Listener) -> None:
        self._listeners[listener.name] = listener

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> "LocalAuthority":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every listener, join every thread, delete the CA bundle folder, and close the
        connections and SSL contexts that clients share through :attr:`cloud`. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._scope.close()
        self._stop.set()
        cloud = getattr(self, "_cloud", None)     # absent when a listener failed to start
        if cloud is not None:
            cloud.close()
        for port in getattr(self, "_ports", {}).values():
            port.stop()
        names.unregister(getattr(self, "_names", ()), owner=self)
        self._names = ()
        cleanup.release(self._folder)

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"login={self.login_url} mtls={self.mtls_url} imds={self.imds_url}"
        return f"<LocalAuthority tenant={self.tenant_id} {state}>"

    # -- where clients connect -------------------------------------------------------------
    @property
    def login_url(self) -> str:
        return self._listeners["login"].url

    @property
    def mtls_url(self) -> str:
        return self._listeners["mtls"].url

    @property
    def regional_urls(self) -> dict:
        return {r: self._listeners[f"mtls:{r}"].url for r in self.regions}

    @property
    def regional_login_urls(self) -> dict:
        """region -> ESTS-R's regional login host (``{region}.login.<domain>``): what msal's
        ``azure_region=`` builds from the authority's host (Bearer, no client certificate)."""
        return {r: self._listeners[f"login:{r}"].url for r in self.regions}

    @property
    def imds_url(self) -> str:
        return self._listeners["imds"].url

    @property
    def resource_url(self) -> str:
        return self._listeners["resource"].url

    @property
    def attestation_url(self) -> str:
        """The attestation service (IMDS's attestationEndpoint); its JWKS is at ``/certs``."""
        return self._listeners["attest"].url

    @property
    def ca_bundle(self) -> str:
        return str(self._ca_bundle)

    @property
    def jwks(self) -> dict:
        return self.signer.jwks

    @property
    def listener_names(self) -> list[str]:
        return list(self._listeners)

    def listener_addresses(self) -> dict:
        """listener name -> (host, port) of its bound socket, for the running listeners."""
        return {name: l.address for name, l in self._listeners.items() if l.running}

    @property
    def tls_port(self) -> int:
        """The one TLS port every HTTPS host of the authority shares."""
        return self._ports["tls"].port

    @property
    def cloud(self) -> Cloud:
        """Where clients reach this authority. The same object each time: the SSL contexts
        and API connections its clients share live in ``cloud.pool`` until :meth:`close`."""
        return self._cloud

    @property
    def instance_discovery_url(self) -> str:
        """Where MSAL's ``instance_discovery=`` may point: Entra's ``/common/discovery/instance`` on the lab."""
        return f"{self.login_url}/common/discovery/instance"

    # -- tenants -----------------------------------------------------------------------------
    def add_tenant(self, name: str) -> Directory:
        """Another tenant of this authority: its own ``tenant_id``, issuer, apps and federated credentials."""
        self._check_open()
        return self.tenants.add(name)

    def tenant(self, tenant_id_or_name: str) -> Directory:
        """A tenant's directory by id or name (``"lab"`` is the home tenant)."""
        return self.tenants.get(tenant_id_or_name)

    def authority_url(self, tenant_id: str | None = None, *, listener: str = "login") -> str:
        """``https://login.<domain>:<port>/<tid>``: what msal's ``authority=`` takes (home tenant by default).

        ``tenant_id`` may also be a tenant name; ``listener`` another token host.
        """
        tid = self.tenant_id if tenant_id is None else self.tenant(tenant_id).tenant_id
        if listener not in self._listeners or listener in ("imds", "resource"):
            raise ConfigurationError(f"{str(listener)[:40]!r} is not a token host of the authority.",
                                     fix='Use "login", "mtls" or "mtls:<region>".')
        return f"{self._listeners[listener].url}/{tid}"

    def token_endpoint(self, listener: str = "login", tenant_id: str | None = None) -> str:
        return f"{self.authority_url(tenant_id, listener=listener)}/oauth2/v2.0/token"

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError("The authority is closed.", fix="Start a new LocalAuthority().")

    # -- for other processes ---------------------------------------------------------------
    def _host_ports(self) -> list[tuple[str, int]]:
        """(host, port) of every HTTPS host: the shared TLS port's, then each external issuer's own."""
        pairs = [(host, self.tls_port) for host in self.hosts.values()]
        pairs += [(p.default.host, p.port) for name, p in self._ports.items() if name.startswith("issuer:")]
        return pairs

    def connect_to_args(self) -> list[str]:
        """curl arguments that send each lab host to 127.0.0.1 (``--connect-to host:port:127.0.0.1:port``).

        The TLS port's hosts are also mapped from 443, as this process's name
        hook does (see :mod:`.names`), so a URL without a port works in curl too.
        """
        pairs = [(host, port, port) for host, port in self._host_ports()]
        pairs += [(host, 443, self.tls_port) for host in self.hosts.values()]
        return [arg for host, asked, port in pairs for arg in ("--connect-to", f"{host}:{asked}:127.0.0.1:{port}")]

    def resolve_args(self) -> list[str]:
        """curl arguments ``--resolve host:port:127.0.0.1`` for each lab host."""
        return [arg for host, port in self._host_ports() for arg in ("--resolve", f"{host}:{port}:127.0.0.1")]

    def hosts_file_lines(self) -> str:
        """An ``/etc/hosts`` snippet for the lab's host names (for processes without their own rule)."""
        return "\n".join(f"127.0.0.1\t{host}" for host, _ in self._host_ports())

    # -- trust ---------------------------------------------------------------------------
    def trust_client_certificate(self, certificate: Certificate) -> None:
        """Let ``certificate`` pass the TLS layer of the mTLS and resource listeners.

        Trust is not authorization: the token service still checks that the
        certificate is registered for the client_id (or issued to the MI).
        Takes effect for the next handshakes.
        """
        if not isinstance(certificate, Certificate):
            raise ConfigurationError("trust_client_certificate() takes a lab Certificate.",
                                     cause=f"Got {type(certificate).__name__}.")
        with self._lock:
            if certificate.x5t_s256 in self._trusted:
                return
            self._trusted.add(certificate.x5t_s256)
            self._client_cert_ctx.load_verify_locations(cadata=certificate.pem)

    def trust_subject_name(self, app, issuer, subject: str) -> SubjectNameTrust:
        """Let ``app`` authenticate with any certificate that ``issuer`` (a CertificateAuthority
        or its CA Certificate) issues for ``subject``, instead of registered thumbprints.

        Bearer client assertions must then carry the chain in ``x5c``; on the mTLS host the
        handshake's certificate is checked. The CA is added to the mTLS listeners' TLS trust.
        See :mod:`.certificate_trust`.
        """
        ca = getattr(issuer, "certificate", issuer)
        if not isinstance(ca, Certificate) or not isinstance(subject, str) or not subject.strip():
            raise ConfigurationError("trust_subject_name() takes an app, a CA and a subject name.",
                                     cause=f"Got issuer {type(issuer).__name__}, subject {subject!r}.",
                                     fix='trust_subject_name(app, lab.CertificateAuthority("my CA"), '
                                         '"CN=contoso-sni.example")')
        if self.directory.find_app(getattr(app, "client_id", "")) is None:
            raise ConfigurationError("The app is not registered in this authority's directory.",
                                     fix="Use an App returned by authority.directory.register_app().")
        trust = SubjectNameTrust(ca.public_only(), subject.strip())
        self.certificate_trust.add(app.client_id, trust)
        self.trust_client_certificate(ca.public_only())
        return trust

    def trust_issuer(self, issuer: str, jwks: dict) -> None:
        """Make the protected API accept tokens of another issuer, verified with its JWKS.

        For interop with other RFC 8705 servers (tests/interop: oidc-provider).
        The API's audience and binding rules are unchanged; their clients'
        certificates must still pass TLS (:meth:`trust_client_certificate`).
        In force until close(); calling again replaces the issuer's keys.
        """
        import jwt

        if not isinstance(issuer, str) or not issuer.startswith("https://") or issuer == self.issuer:
            raise ConfigurationError(f"{str(issuer)[:80]!r} cannot be trusted as another issuer.",
                                     cause="An issuer is the https URL in its tokens' iss claim, and "
                                           "not this authority's own.",
                                     fix="Pass the other server's issuer, e.g. Cloud.from_discovery(url).issuer.")
        try:
            if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
                raise ValueError("no keys")
            keys = jwt.PyJWKSet.from_dict(jwks)
        except Exception:
            raise ConfigurationError("The JWKS to trust has no usable public key.",
                                     cause='A JWK Set is {"keys": [...]} with RSA or EC public keys.',
                                     fix="Pass the JSON served at the issuer's jwks_uri.") from None
        self.resource_api.trust_issuer(issuer, keys)

    # -- external identity providers (workload identity federation) ----------------------------
    def add_external_issuer(self, kind: str, name: str | None = None) -> ExternalIssuer:
        """An OIDC issuer outside Entra, served on its own host and HTTPS port: ``"kubernetes"``,
        ``"github_actions"`` or ``"generic"``. Its tokens (``issuer.issue_token(subject)``) sign in as
        an app whose federated credential trusts ``(issuer, subject)``. Stopped by close()."""
        if self._closed:
            raise ConfigurationError("The authority is closed.", fix="Start a new LocalAuthority().")
        kind, name = check_kind(kind, name)
        host = {"kubernetes": f"{name}.oic.prod-aks.{self.domain}", "github_actions": f"token.actions.{name}.{self.domain}",
                "generic": f"{name}.idp.{self.domain}"}[kind]
        with self._lock:
            if name in self._external:
                raise ConfigurationError(f"The authority already serves an issuer named {name!r}.",
                                         fix="Pick another name, or use authority.external_issuer(name).",
                                         code="issuer_exists")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self.ca.issue_server_certificate(host).load_into(ctx)
            listener = Listener(f"issuer:{name}", lambda r: self._route_issuer(name, r), tls=ctx, host=host,
                                on_exchange=self._trace.record, on_tls_failure=self._trace.record_tls_failure,
                                stop_event=self._stop)
            port = Port(f"issuer:{name}", [listener], stop_event=self._stop)
            issuer = ExternalIssuer(kind, name, lambda: listener.url)
            self._external[name] = issuer
            self._ports[port.name] = port
            self._names = (*self._names, *names.register([host]))
        port.start()
        return issuer

    def external_issuer(self, name: str) -> ExternalIssuer:
        found = self._external.get(name)
        if found is None:
            raise ConfigurationError(f"No external issuer {str(name)[:40]!r}.",
                                     fix=f"Use one of {', '.join(self._external) or 'none yet'}, or "
                                         "add_external_issuer(kind, name).", code="issuer_not_found")
        return found

    @property
    def external_issuers(self) -> list[ExternalIssuer]:
        return list(self._external.values())

    def _issuer_keys(self, iss: str):
        """Keys of an assertion issuer the token service can verify: this authority or an external one."""
        tenant = self.tenants.by_issuer(iss)
        if tenant is not None:
            return {self.signer.kid: self.signer.public_key}, f"tenant {tenant.name}", tenant.tenant_id
        for issuer in list(self._external.values()):
            if issuer.issuer == iss:
                return issuer.public_keys(), issuer.issuer, None
        return None

    def _route_issuer(self, name: str, request: Request) -> Response:
        return self._serve(request, lambda r, _d: self._external[name].handle(r))

    # -- trace -----------------------------------------------------------------------------
    @property
    def trace(self) -> list:
        """Every exchange so far, redacted (a copy)."""
        return self._trace.entries()

    def trace_frame(self):
        """The trace as a pandas DataFrame."""
        return self._trace.frame()

    def clear_trace(self) -> None:
        """Start a fresh record: exchanges already under way (a slow answer) are not recorded either."""
        self._trace.clear()

    def count_requests(self, listener: str | None = None, path_contains: str | None = None,
                       client_id: str | None = None) -> int:
        """How many HTTP exchanges the trace holds, filtered by listener, path and client."""
        return self._trace.count(listener, path_contains, client_id)

    # -- minting for teaching and tests ---------------------------------------------------
    def issue_token(self, audience: str, *, client_id: str | None = None, certificate: Certificate | None = None,
                    lifetime_s: int | None = None, issued_at: float | None = None) -> str:
        """Mint a token directly with the authority's key (no protocol), e.g. an already expired one.

        For demonstrations of what the resource refuses; flows get tokens
        through the token endpoint like any client.
        """
        client_id = client_id or str(uuid.uuid4())
        resource = self.directory.find_resource(audience)
        version = resource.token_version if resource is not None else 2
        lifetime = lifetime_s if lifetime_s is not None else lifetime_for(managed_identity=False,
                                                                          fixed=self._lifetime)
        claims = app_token_claims(version=version, domain=self.domain, issuer_v2=self.issuer,
                                  tenant_id=self.tenant_id,
                                  audience=resource.audience if resource is not None else audience,
                                  object_id=client_id, client_id=client_id, lifetime_s=lifetime,
                                  cnf_x5t_s256=certificate.x5t_s256 if certificate is not None else None,
                                  now=issued_at)
        return self.signer.mint(claims)

    @property
    def issuers(self) -> list[str]:
        """Every issuer this authority's tokens may carry: v2.0 and v1.0, of every tenant."""
        return [i for d in self.tenants.all() for i in (d.issuer, sts_issuer(self.domain, d.tenant_id))]

    # -- routing with faults ---------------------------------------------------------------
    def _serve(self, request: Request, service, *, imds: bool = False) -> Response:
        """Call ``service(request, downgrade)`` unless a pending fault answers instead."""
        fault = self._faults.take(request.listener, request.path)
        if fault is None:
            return service(request, False)
        replaced = fault_response(fault, request, imds=imds)
        if replaced is not None:
            return replaced
        if fault.kind == "slow":
            self._listeners[request.listener].wait(fault.delay_ms / 1000.0)
        response = service(request, fault.kind == "bearer_downgrade")
        response.info["fault"] = fault.label
        if fault.kind == "slow":
            response.info["_injected_delay_ms"] = fault.delay_ms
        return response

    def _route_token(self, request: Request) -> Response:
        return self._serve(request, lambda r, downgrade: self.token_service.handle(r, downgrade=downgrade))

    def _route_imds(self, request: Request) -> Response:
        return self._serve(request, lambda r, _d: self.imds.handle(r), imds=True)

    def _route_resource(self, request: Request) -> Response:
        return self._serve(request, lambda r, _d: self.resource_api.handle(r))

    def _route_attestation(self, request: Request) -> Response:
        return self._serve(request, lambda r, _d: self.attestation.handle(r))
