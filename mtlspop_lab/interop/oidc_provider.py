"""A local oidc-provider: a third-party RFC 8705 server to compare the lab with.

The lab's own authority speaks Entra's dialect. To see what RFC 8705 looks
like elsewhere, this module starts the npm package ``oidc-provider`` (an
OpenID Certified server, pinned with a lock file in the package data folder
``oidc_provider_server/``) with node, on 127.0.0.1, with two HTTPS
listeners: a server-auth one (the issuer) and an mTLS one published as
``mtls_endpoint_aliases``. Every certificate is made at start: the CA that
issues the server's TLS certificate and the ``tls_client_auth`` client's
certificate, and self-signed certificates for the
``self_signed_tls_client_auth`` clients (registered through their JWKS
``x5c``)::

    with OidcProvider.start() as op:
        cloud = Cloud.from_discovery(op.issuer, ca_bundle=op.ca_bundle)
        client = CertificateBoundClient(op.self_signed_client_id, op.self_signed_certificate, cloud=cloud)

``npm ci`` runs only when the pinned version is not installed yet: into the
package folder, or into a user cache folder when the package folder is
read-only. Without node/npm, or when ``npm ci`` fails, a
:class:`~mtlspop_lab.errors.ConfigurationError` says what to install.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt

from ..certs import Certificate, CertificateAuthority
from ..errors import ConfigurationError

__all__ = ["OidcProvider", "find_node", "ensure_installed", "pinned_version", "installed_version"]

SOURCE_DIR = Path(__file__).parent / "oidc_provider_server"
PROJECT_FILES = ("package.json", "package-lock.json", "server.mjs")
RESOURCE = "https://api.interop.example"
RESOURCE_SCOPE = "api:read"
LAB_API = "api://mtlspop-lab-api"  # a resource of the lab's directory: tokens its protected API accepts
SELF_SIGNED_CLIENT_ID = "interop-self-signed"
PKI_CLIENT_ID = "interop-pki"
UNBOUND_CLIENT_ID = "interop-unbound"  # mTLS client auth, but registered without bound tokens
PKI_SUBJECT = "CN=interop-pki-client,O=mtlspop-lab interop"
START_TIMEOUT_S = 30
NPM_CI_TIMEOUT_S = 300


def find_node() -> tuple[str, str]:
    """The paths of ``node`` and ``npm``, or a ConfigurationError naming what to install."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        raise ConfigurationError(
            "node and npm are needed to run oidc-provider (install Node.js >= 20).",
            cause=f"{missing} not found on PATH.",
            fix="Install Node.js 20 or later with npm (apt-get install nodejs npm, or nodejs.org), "
                "then start again.", code="node_not_found")
    return node, npm


def pinned_version() -> str:
    """The oidc-provider version ``package.json`` pins."""
    return json.loads((SOURCE_DIR / "package.json").read_text())["dependencies"]["oidc-provider"]


def installed_version(folder: Path) -> str | None:
    """The oidc-provider version installed in ``folder``'s node_modules, if any."""
    manifest = Path(folder) / "node_modules" / "oidc-provider" / "package.json"
    try:
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mtlspop-lab" / f"oidc-provider-{pinned_version()}"


def project_dir() -> Path:
    """Where the node project runs: the package folder when writable, else a user cache copy."""
    if installed_version(SOURCE_DIR) == pinned_version() or os.access(SOURCE_DIR, os.W_OK):
        return SOURCE_DIR
    folder = _cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:  # the package's copy wins: a new lab version brings its own files
        source = (SOURCE_DIR / name).read_bytes()
        target = folder / name
        if not target.exists() or target.read_bytes() != source:
            target.write_bytes(source)
    return folder


def ensure_installed(npm: str | None = None) -> Path:
    """``npm ci`` from the lock file unless the pinned version is installed; the project folder."""
    folder = project_dir()
    if installed_version(folder) == pinned_version():
        return folder
    npm = npm or find_node()[1]
    try:
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
                              cwd=folder, capture_output=True, text=True, timeout=NPM_CI_TIMEOUT_S)
        code, detail = proc.returncode, proc.stderr.strip()[-800:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        code, detail = None, f"{type(exc).__name__}: {exc}"
    if code != 0 or installed_version(folder) != pinned_version():
        raise ConfigurationError(
            f"`npm ci` in {folder} failed (exit {code}): {detail}",
            cause="npm could not install the pinned oidc-provider: no access to the npm registry, "
                  "or a Node.js too old for the lock file.",
            fix=f"Run `npm ci` in {folder} by hand with network access to registry.npmjs.org "
                "(Node.js >= 20), then start again.", code="npm_ci_failed")
    return folder


def _client_jwk(certificate: Certificate) -> dict:
    """The public JWK of ``certificate`` with ``x5c``: how a self-signed mTLS client registers."""
    jwk_dict = jwt.algorithms.RSAAlgorithm.to_jwk(certificate.x509.public_key(), as_dict=True)  # type: ignore[call-overload]
    return {**jwk_dict, "x5c": [certificate.x5c]}


def _write_config(folder: Path, ca: CertificateAuthority, server_cert: Certificate,
                  self_signed: Certificate, pki: Certificate, unbound: Certificate) -> Path:
    server_cert.write_pem(folder / "server.pem", folder / "server.key")
    (folder / "ca.pem").write_text(ca.pem)
    common = {"grant_types": ["client_credentials"], "response_types": [], "redirect_uris": [],
              "tls_client_certificate_bound_access_tokens": True}
    config = {
        "host": "127.0.0.1",
        "server_cert": str(folder / "server.pem"),
        "server_key": str(folder / "server.key"),
        "client_ca": str(folder / "ca.pem"),
        "access_token_ttl": 600,
        "resources": {RESOURCE: {"scope": RESOURCE_SCOPE}, LAB_API: {"scope": RESOURCE_SCOPE}},
        "clients": [
            {"client_id": SELF_SIGNED_CLIENT_ID, "token_endpoint_auth_method": "self_signed_tls_client_auth",
             "jwks": {"keys": [_client_jwk(self_signed)]}, **common},
            {"client_id": PKI_CLIENT_ID, "token_endpoint_auth_method": "tls_client_auth",
             "tls_client_auth_subject_dn": pki.subject, **common},
            {"client_id": UNBOUND_CLIENT_ID, "token_endpoint_auth_method": "self_signed_tls_client_auth",
             "jwks": {"keys": [_client_jwk(unbound)]},
             **common, "tls_client_certificate_bound_access_tokens": False},
        ],
    }
    path = folder / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _read_ready_line(proc: subprocess.Popen, log: Path) -> dict:
    """server.mjs prints one JSON line once both listeners are up."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                line = proc.stdout.readline()
                if line:
                    return json.loads(line)
            if proc.poll() is not None:
                break
    finally:
        sel.close()
    raise ConfigurationError(f"oidc-provider did not start (exit {proc.poll()}).",
                             cause=log.read_text(errors="replace")[-1500:] or "No output within "
                                   f"{START_TIMEOUT_S} s.",
                             fix="Check the Node.js version (>= 20) and the message above.",
                             code="oidc_provider_did_not_start")


@dataclass(repr=False, eq=False)
class OidcProvider:
    """A running oidc-provider: where it listens and the clients registered with it.

    Start it with :meth:`start`; stop it with :meth:`close` or a ``with``
    block. ``ca_bundle`` (a PEM file) verifies its TLS certificate.
    Clients: ``self_signed_client_id`` (``self_signed_tls_client_auth``) and
    ``pki_client_id`` (``tls_client_auth``, its certificate issued by
    ``ca``) get certificate-bound tokens; ``unbound_client_id`` authenticates
    with mTLS too but is registered without bound tokens. Resources:
    ``resource`` and the lab's ``lab_api``, both with ``resource_scope``.
    """

    issuer: str
    login_url: str
    mtls_url: str
    token_endpoint: str
    mtls_token_endpoint: str
    jwks_uri: str
    ca: CertificateAuthority
    ca_bundle: str
    self_signed_certificate: Certificate
    pki_certificate: Certificate
    unbound_certificate: Certificate
    resource: str = RESOURCE
    resource_scope: str = RESOURCE_SCOPE
    lab_api: str = LAB_API
    self_signed_client_id: str = SELF_SIGNED_CLIENT_ID
    pki_client_id: str = PKI_CLIENT_ID
    unbound_client_id: str = UNBOUND_CLIENT_ID
    _proc: subprocess.Popen | None = field(default=None)
    _tmp: tempfile.TemporaryDirectory | None = field(default=None)

    @classmethod
    def start(cls) -> "OidcProvider":
        """Install if needed (``npm ci``), make the certificates, start node; ready when it returns."""
        node, npm = find_node()
        project = ensure_installed(npm)
        tmp = tempfile.TemporaryDirectory(prefix="mtlspop-oidc-provider-")
        folder = Path(tmp.name)
        ca = CertificateAuthority("mtlspop-lab interop CA")
        server_cert = ca.issue_server_certificate("127.0.0.1", "localhost")
        self_signed = Certificate.create_self_signed("CN=interop-self-signed-client")
        pki = ca.issue_client_certificate(PKI_SUBJECT)
        unbound = Certificate.create_self_signed("CN=interop-unbound-client")
        config = _write_config(folder, ca, server_cert, self_signed, pki, unbound)
        log = folder / "server.log"
        with open(log, "w") as err:
            proc = subprocess.Popen([node, "server.mjs", str(config)], cwd=project, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            ready = _read_ready_line(proc, log)
        except BaseException:
            _stop(proc)
            tmp.cleanup()
            raise
        return cls(issuer=ready["issuer"], login_url=ready["login_url"], mtls_url=ready["mtls_url"],
                   token_endpoint=ready["token_endpoint"], mtls_token_endpoint=ready["mtls_token_endpoint"],
                   jwks_uri=ready["jwks_uri"], ca=ca, ca_bundle=str(folder / "ca.pem"),
                   self_signed_certificate=self_signed, pki_certificate=pki, unbound_certificate=unbound,
                   _proc=proc, _tmp=tmp)

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def closed(self) -> bool:
        return self._proc is None or self._proc.poll() is not None

    def session(self, certificate: Certificate | None = None):
        """A requests session that trusts this server (and only it), with an optional client certificate."""
        import requests

        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE must not override the server's CA
        s.verify = self.ca_bundle
        if certificate is not None:
            folder = Path(self._tmp.name) / f"client-{certificate.x5t_s256[:12]}"
            folder.mkdir(exist_ok=True)
            certificate.write_pem(folder / "cert.pem", folder / "key.pem")
            s.cert = (str(folder / "cert.pem"), str(folder / "key.pem"))
        return s

    def jwks(self) -> dict:
        """The server's signing keys, for verify_token or the lab's trust_issuer."""
        with self.session() as s:
            return s.get(self.jwks_uri, timeout=10).json()

    def close(self) -> None:
        """Stop node and delete the certificates' folder. Idempotent."""
        if self._proc is not None:
            _stop(self._proc)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "OidcProvider":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "running"
        return f"<OidcProvider {state} issuer={self.issuer} mtls={self.mtls_url}>"


def _stop(proc: subprocess.Popen) -> None:
    if proc.stdin and not proc.stdin.closed:
        proc.stdin.close()  # server.mjs exits when stdin closes
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    if proc.stdout and not proc.stdout.closed:
        proc.stdout.close()
