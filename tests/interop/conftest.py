"""Fixtures for interop tests: a real third-party RFC 8705 server (oidc-provider).

``oidc_provider`` installs the pinned npm project in ``tests/interop/oidc_provider``
(``npm ci`` once; ``node_modules`` is git-ignored and reused) and starts
``server.mjs`` on 127.0.0.1 with two HTTPS listeners: a server-auth one (the
issuer) and an mTLS one published as ``mtls_endpoint_aliases``. Every
certificate is made here at run time: the server's TLS certificate and the CA
that issues it (the same CA issues the ``tls_client_auth`` client's
certificate), and a self-signed certificate for the
``self_signed_tls_client_auth`` client, registered through its JWKS ``x5c``.

Without node/npm the fixture skips with the reason, except in CI
(``CI`` set), where a missing toolchain fails loudly: the interop tests must
run there.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import requests

from mtlspop_lab.certs import Certificate, CertificateAuthority

PROJECT_DIR = Path(__file__).parent / "oidc_provider"
RESOURCE = "https://api.interop.example"
RESOURCE_SCOPE = "api:read"
LAB_API = "api://mtlspop-lab-api"  # a resource of the lab's directory: for its protected API
SELF_SIGNED_CLIENT_ID = "interop-self-signed"
PKI_CLIENT_ID = "interop-pki"
UNBOUND_CLIENT_ID = "interop-unbound"  # mTLS client auth, but registered without bound tokens
PKI_SUBJECT = "CN=interop-pki-client,O=mtlspop-lab interop"
START_TIMEOUT_S = 30


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str):
    """Skip on a developer machine; fail in CI, where these tests must run."""
    if _in_ci():
        pytest.fail(f"interop tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _pinned_version() -> str:
    return json.loads((PROJECT_DIR / "package.json").read_text())["dependencies"]["oidc-provider"]


def _installed_version() -> str | None:
    manifest = PROJECT_DIR / "node_modules" / "oidc-provider" / "package.json"
    try:
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_installed(npm: str) -> None:
    """``npm ci`` from the lock file unless the pinned version is already installed."""
    if _installed_version() == _pinned_version():
        return
    proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or _installed_version() != _pinned_version():
        _unavailable(f"`npm ci` in {PROJECT_DIR} failed (exit {proc.returncode}): "
                     f"{proc.stderr.strip()[-800:]}")


@dataclass
class OidcProviderServer:
    """Where the running oidc-provider listens, and the identities registered with it."""

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
    self_signed_client_id: str = SELF_SIGNED_CLIENT_ID
    pki_client_id: str = PKI_CLIENT_ID
    unbound_client_id: str = UNBOUND_CLIENT_ID

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def session(self, certificate: Certificate | None = None) -> requests.Session:
        """A requests session that trusts this server (and only it), with an optional client cert."""
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE must not override the server's CA
        s.verify = self.ca_bundle
        if certificate is not None:
            folder = Path(self._tmp) / f"client-{certificate.x5t_s256[:12]}"
            folder.mkdir(exist_ok=True)
            certificate.write_pem(folder / "cert.pem", folder / "key.pem")
            s.cert = (str(folder / "cert.pem"), str(folder / "key.pem"))
        return s

    def jwks(self) -> dict:
        with self.session() as s:
            return s.get(self.jwks_uri, timeout=10).json()

    _tmp: str = ""


def _client_jwk(certificate: Certificate) -> dict:
    """The public JWK of ``certificate`` with ``x5c``: how a self-signed mTLS client registers."""
    jwk_dict = jwt.algorithms.RSAAlgorithm.to_jwk(certificate.x509.public_key(), as_dict=True)
    return {**jwk_dict, "x5c": [certificate.x5c]}


def _write_config(folder: Path, ca: CertificateAuthority, server_cert: Certificate,
                  self_signed: Certificate, pki: Certificate, unbound: Certificate) -> Path:
    server_cert.write_pem(folder / "server.pem", folder / "server.key")
    (folder / "client-ca.pem").write_text(ca.pem)
    common = {"grant_types": ["client_credentials"], "response_types": [], "redirect_uris": [],
              "tls_client_certificate_bound_access_tokens": True}
    config = {
        "host": "127.0.0.1",
        "server_cert": str(folder / "server.pem"),
        "server_key": str(folder / "server.key"),
        "client_ca": str(folder / "client-ca.pem"),
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
    proc.kill()
    raise RuntimeError(f"oidc-provider did not start (exit {proc.poll()}): "
                       f"{log.read_text(errors='replace')[-1500:]}")


def require_node() -> tuple[str, str]:
    """Paths of node and npm, or skip (fail in CI) saying what is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable("node and npm are needed to run oidc-provider (install Node.js >= 20)")
    return node, npm


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory) -> OidcProviderServer:
    node, npm = require_node()
    ensure_installed(npm)

    folder = tmp_path_factory.mktemp("oidc-provider")
    ca = CertificateAuthority("mtlspop-lab interop CA")
    server_cert = ca.issue_server_certificate("127.0.0.1", "localhost")
    self_signed = Certificate.create_self_signed("CN=interop-self-signed-client")
    pki = ca.issue_client_certificate(PKI_SUBJECT)
    unbound = Certificate.create_self_signed("CN=interop-unbound-client")
    config = _write_config(folder, ca, server_cert, self_signed, pki, unbound)

    log = folder / "server.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([node, "server.mjs", str(config)], cwd=PROJECT_DIR,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        ready = _read_ready_line(proc, log)
        server = OidcProviderServer(
            issuer=ready["issuer"], login_url=ready["login_url"], mtls_url=ready["mtls_url"],
            token_endpoint=ready["token_endpoint"], mtls_token_endpoint=ready["mtls_token_endpoint"],
            jwks_uri=ready["jwks_uri"], ca=ca, ca_bundle=str(folder / "client-ca.pem"),
            self_signed_certificate=self_signed, pki_certificate=pki,
            unbound_certificate=unbound, _tmp=str(folder))
        yield server
    finally:
        proc.stdin.close()  # server.mjs exits when stdin closes
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdout.close()
