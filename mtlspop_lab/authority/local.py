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

=================  ==================================  ==================================
listener           host                                TLS
=================  ==================================  ==================================
``login``          ``login.mtlspop.localhost``         server TLS only: discovery, JWKS,
                                                       instance discovery, token (Bearer)
``mtls``           ``mtlsauth.mtlspop.localhost``      asks for a client certificate
``mtls:<region>``  ``<region>.mtlsauth.mtlspop...``    the same, one per region
``resource``       ``api.mtlspop.localhost``           asks for a client certificate
``imds``           ``127.0.0.1:<own port>``            plain HTTP: IMDS v1 + v2
=================  ==================================  ==================================

The names resolve to 127.0.0.1 inside this process while the authority is
open (:mod:`.names`); MSAL's rule ``login.X`` -> ``[region.]mtlsauth.X`` (port
kept) therefore lands on the right host, as against Entra. Each listener
keeps its own delay, faults and trace name.

Tenants: :attr:`directory` is the home tenant (the VM and its managed
identities live there); :meth:`add_tenant` adds more, each with its own
tenant id, issuer and apps.

Python's ``ssl`` has no verify callback: a client certificate that does not
chain to the listener's trust store aborts the handshake before any OAuth
error can be sent. So every certificate the directory registers, and the CA
that issues IMDS v2 certificates, is added to the trust store of the
certificate-requesting listeners as it appears. An unknown certificate fails
at TLS (the trace shows a ``TLS`` entry); :meth:`trust_client_certificate`
lets one through on purpose, e.g. an attacker's, so the OAuth layer can be
seen refusing it.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import threading
import uuid
from pathlib import Path

from ..certs import Certificate, CertificateAuthority
from ..cloud import Cloud, check_region, mtls_pop_url
from ..errors import ConfigurationError
from . import names
from .directory import Directory
from .faults import Fault, FaultPlan, check_listener_selector, fault_response, listener_matches
from .imds import SERVER_HEADER as IMDS_SERVER_HEADER
from .imds import Imds
from .resource_api import ResourceApi
from .server import Listener, Port, Request, Response
from .signing import Signer
from .token_claims import app_token_claims, lifetime_for, sts_issuer
from .tenants import Tenants
from .token_service import TokenService
from .trace import Trace

IMDS_MODES = ("v2", "v1_only", "absent")


class LocalAuthority:
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
        self._lock = threading.Lock()
        self.regions = regions
        self.ca = CertificateAuthority("mtlspop-lab local authority CA")
        self.signer = Signer(self.ca)
        self._faults = FaultPlan()
        self._trace = Trace()
        self._folder = Path(tempfile.mkdtemp(prefix="mtlspop-authority-"))
        self._ca_bundle = self._folder / "ca.pem"
        self._ca_bundle.write_text(self.ca.pem)

        self.domain = names.LAB_DOMAIN
        self.hosts = {"login": f"login.{self.domain}", "mtls": f"mtlsauth.{self.domain}",
                      **{f"mtls:{r}": f"{r}.mtlsauth.{self.domain}" for r in regions},
                      "resource": f"api.{self.domain}"}
        # one certificate names every host of the TLS port (and the address, for clients without SNI)
        self._server_cert = self.ca.issue_server_certificate(*self.hosts.values(), "127.0.0.1", "localhost")
        server_ctx = self._server_context(client_certs=False)
        self._client_cert_ctx = self._server_context(client_certs=True)
        self._client_cert_ctx.load_verify_locations(cadata=self.ca.pem)   # IMDS v2 certificates
        self._trusted: set[str] = set()

        self._listeners: dict[str, Listener] = {}
        common = {"on_exchange": self._trace.record, "on_tls_failure": self._trace.record_tls_failure,
                  "stop_event": self._stop}
        for name, host in self.hosts.items():
            handler = self._route_resource if name == "resource" else self._route_token
            tls = server_ctx if name == "login" else self._client_cert_ctx
            self._add_listener(Listener(name, handler, tls=tls, host=host, **common))
        self._add_listener(Listener("imds", self._route_imds, server_header=IMDS_SERVER_HEADER, **common))
        self._ports = {"tls": Port("tls", [l for n, l in self._listeners.items() if n != "imds"],
                                   stop_event=self._stop),
                       "imds": Port("imds", [self._listeners["imds"]], stop_event=self._stop)}
        self._names = names.register(self.hosts.values())
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
        urls = lambda: {name: l.url for name, l in self._listeners.items() if name != "imds"}  # noqa: E731
        self.token_service = TokenService(self.tenants, self.signer, base_urls=urls,
                                          lifetime_s=lambda: self._lifetime, domain=self.domain)
        self.imds = Imds(self.directory, self.signer, self.ca, issuer=self.issuer, region=regions[0],
                         regional_url=lambda: self.regional_urls[regions[0]],
                         lifetime_s=lambda: self._lifetime, mode=lambda: self._imds_mode, domain=self.domain)
        self.resource_api = ResourceApi(self.tenants, self.signer, domain=self.domain)

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

    @staticmethod
    def _check_lifetime(seconds) -> int:
        if not isinstance(seconds, (int, float)) or seconds < 1 or seconds > 86400 * 2:
            raise ConfigurationError(f"Token lifetime {seconds!r} is out of range.",
                                     cause="Lifetimes are whole seconds between 1 and 172800.",
                                     fix="set_token_lifetime(None) for Entra's lifetimes, or a few seconds to show expiry.")
        return int(seconds)

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> "LocalAuthority":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every listener, join every thread, delete the CA bundle folder. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        for port in getattr(self, "_ports", {}).values():
            port.stop()
        names.unregister(getattr(self, "_names", ()))
        self._names = ()
        shutil.rmtree(self._folder, ignore_errors=True)

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
    def imds_url(self) -> str:
        return self._listeners["imds"].url

    @property
    def resource_url(self) -> str:
        return self._listeners["resource"].url

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
        """The lab as a target: its login host, regions, IMDS, API and CA; the mTLS hosts follow by rule."""
        return Cloud(name="LocalAuthority", login_url=self.login_url, regions=self.regions,
                     imds_url=self.imds_url, resource_url=self.resource_url, ca_bundle=self.ca_bundle,
                     is_local=True)

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
    def connect_to_args(self) -> list[str]:
        """curl arguments that send each lab host to 127.0.0.1 (``--connect-to host:port:127.0.0.1:port``)."""
        port = self.tls_port
        return [arg for host in self.hosts.values() for arg in ("--connect-to", f"{host}:{port}:127.0.0.1:{port}")]

    def resolve_args(self) -> list[str]:
        """curl arguments ``--resolve host:port:127.0.0.1`` for each lab host."""
        port = self.tls_port
        return [arg for host in self.hosts.values() for arg in ("--resolve", f"{host}:{port}:127.0.0.1")]

    def hosts_file_lines(self) -> str:
        """An ``/etc/hosts`` snippet for the lab's host names (for processes without their own rule)."""
        return "\n".join(f"127.0.0.1\t{host}" for host in self.hosts.values())

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

    # -- knobs -----------------------------------------------------------------------------
    def _selected(self, listener: str) -> list[Listener]:
        check_listener_selector(listener, list(self._listeners))
        return [l for name, l in self._listeners.items() if listener_matches(listener, name)]

    def set_delay(self, ms: float, listener: str = "all", *, handshake: bool = False) -> None:
        """Add ``ms`` of server-side delay to every round trip on ``listener`` (0 removes it).

        The delay is paid once per HTTP exchange. With ``handshake=True`` a new
        TLS connection pays it once more before its first answer, as the
        handshake's round trip would on a real network (TLS 1.3: one round
        trip; the TCP connect's own round trip cannot be delayed server-side).
        """
        if not isinstance(ms, (int, float)) or ms < 0 or ms > 120_000:
            raise ConfigurationError(f"Delay {ms!r} ms is out of range.", fix="Use 0 to 120000 ms, e.g. set_delay(20).")
        for l in self._selected(listener):
            l.delay_ms = float(ms)
            l.handshake_delay_ms = float(ms) if handshake else 0.0

    def delays(self) -> dict:
        """listener name -> injected delay in ms."""
        return {name: l.delay_ms for name, l in self._listeners.items()}

    def inject_fault(self, kind: str, count: int = 1, listener: str = "all", *, status: int = 503,
                     retry_after: float | None = None, delay_ms: float = 3000.0,
                     path_contains: str | None = None) -> None:
        """Make the next ``count`` eligible requests on ``listener`` fail in the way ``kind`` says.

        See :mod:`mtlspop_lab.authority.faults` for the kinds. Discovery and
        JWKS requests are skipped unless ``path_contains`` selects them.
        """
        check_listener_selector(listener, list(self._listeners))
        self._faults.add(Fault(kind, int(count), listener, int(status), retry_after, float(delay_ms), path_contains))

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def pending_faults(self) -> list:
        return self._faults.pending

    def set_imds_mode(self, mode: str) -> None:
        """``"v2"`` (default), ``"v1_only"`` (v2 endpoints 404), ``"absent"`` (connection refused)."""
        if mode not in IMDS_MODES:
            raise ConfigurationError(f"Unknown IMDS mode {mode!r}.", fix=f"Use one of {', '.join(IMDS_MODES)}.")
        self._imds_mode = mode
        port = self._ports["imds"]
        if mode == "absent":
            port.stop()
        elif not self._closed:
            port.start()

    @property
    def imds_mode(self) -> str:
        return self._imds_mode

    def set_token_lifetime(self, seconds: int | None) -> None:
        """Fix every new token's lifetime to ``seconds`` (e.g. a few seconds to show expiry);
        None restores Entra's: a random 60-90 minutes for apps, 24 hours for managed identities."""
        self._lifetime = None if seconds is None else self._check_lifetime(seconds)

    @property
    def token_lifetime_s(self) -> int | None:
        """The fixed lifetime knob, or None for Entra's lifetimes."""
        return self._lifetime

    def reset_knobs(self) -> None:
        """No delay, no faults, IMDS v2, the constructor's token lifetime (the trace is kept)."""
        self.set_delay(0, "all")
        self.clear_faults()
        self.set_imds_mode("v2")
        self._lifetime = self._default_lifetime

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
