"""TLS 1.2 is the floor on both sides, and the key files the lab writes are 0600.

To make the TLS test meaningful, an "old" peer is built that *can* speak TLS 1.0
and 1.1 (OpenSSL 3 refuses them at its default security level, so the old side
uses ``@SECLEVEL=0``), and that ability is proven first, old client against old
server. Then:

* the old client against every HTTPS listener of the authority: refused, and the
  authority's trace records the failed handshake (the *server* said no);
* every client path of the lab (flows through msal, discovery, the resource
  call, the inspector's JWKS fetch) against the old server: a clear error, and
  the old server saw a handshake it could not complete.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import socket
import ssl
import stat
import tempfile
import threading
import time
import uuid
import warnings
from urllib.parse import urlsplit

import pytest

from mtlspop_lab.certs import Certificate, CertificateAuthority
from mtlspop_lab.cloud import Cloud
from mtlspop_lab.errors import LabError, TokenValidationError, TransportError
from mtlspop_lab.flows import MtlsPopTokenAcquirer, RetryPolicy, TokenResult, call_resource
from mtlspop_lab.inspector import verify_token
from mtlspop_lab.transport import build_ssl_context

from reliability_support import GRAPH

OLD = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1}


def _old_context(side: int, maximum: ssl.TLSVersion) -> ssl.SSLContext:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(side)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = maximum
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


class OldServer:
    """A TLS server that speaks only TLS 1.0/1.1 and answers 200 to whoever completes a handshake."""

    def __init__(self, folder, maximum=ssl.TLSVersion.TLSv1_1):
        ca = CertificateAuthority("old server CA")
        self.ca_bundle = str(folder / "old-ca.pem")
        with open(self.ca_bundle, "w") as handle:
            handle.write(ca.pem)
        self.ctx = _old_context(ssl.PROTOCOL_TLS_SERVER, maximum)
        ca.issue_server_certificate("127.0.0.1").load_into(self.ctx)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"https://127.0.0.1:{self.sock.getsockname()[1]}"
        self.outcomes: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="old-tls-server", daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            raw.settimeout(3)
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as tls:
                    self.outcomes.append(tls.version())
                    tls.recv(65536)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            except (ssl.SSLError, OSError) as exc:
                self.outcomes.append(f"refused: {getattr(exc, 'reason', None) or type(exc).__name__}")
                raw.close()

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def old_server(tmp_path):
    server = OldServer(tmp_path)
    yield server
    server.close()


def _handshake(ctx, url, server_hostname="127.0.0.1"):
    port = urlsplit(url).port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            return tls.version()


def _eventually(predicate, within_s=5.0):
    deadline = time.monotonic() + within_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


@pytest.mark.parametrize("version", list(OLD))
def test_the_old_client_really_speaks_old_tls(old_server, version):
    client = _old_context(ssl.PROTOCOL_TLS_CLIENT, OLD[version])
    client.load_verify_locations(old_server.ca_bundle)
    assert _handshake(client, old_server.url) == version


@pytest.mark.parametrize("version", list(OLD))
def test_authority_refuses_tls_below_1_2_on_every_listener(lab, version):
    client = _old_context(ssl.PROTOCOL_TLS_CLIENT, OLD[version])
    client.load_verify_locations(lab.ca_bundle)
    listeners = ["login", "mtls", "resource"] + [f"mtls:{r}" for r in lab.regions]
    for name in listeners:
        url = lab.resource_url if name == "resource" else (
            lab.login_url if name == "login" else lab.mtls_url if name == "mtls" else lab.regional_urls[name[5:]])
        lab.clear_trace()
        with pytest.raises(ssl.SSLError):
            _handshake(client, url, server_hostname=urlsplit(url).hostname)   # SNI picks the host
        # the authority saw the attempt and refused it (not a client that could not offer)
        assert _eventually(lambda: any(e.method == "TLS" and e.listener == name for e in lab.trace)), name
        reason = next(e.error for e in lab.trace if e.method == "TLS" and e.listener == name)
        assert "PROTOCOL" in reason.upper() or "VERSION" in reason.upper(), reason
    # and the floor is exactly 1.2: TLS 1.2 and 1.3 are served
    for maximum, expected in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        modern = ssl.create_default_context(cafile=lab.ca_bundle)
        modern.maximum_version = maximum
        assert _handshake(modern, lab.login_url, urlsplit(lab.login_url).hostname) == expected


def test_lab_client_context_has_the_floor(world):
    for ctx in (build_ssl_context(), build_ssl_context(None, world.app.certificate)):
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def _old_cloud(server) -> Cloud:
    return Cloud(name="old", login_url=server.url, mtls_url=server.url, regional_mtls_urls={},
                 imds_url="http://127.0.0.1:1", ca_bundle=server.ca_bundle, is_local=True)


def test_every_lab_client_path_refuses_an_old_server(old_server, world):
    app = world.app
    retry = RetryPolicy.fast(2)
    paths = {
        "confidential client PoP (msal)": lambda: MtlsPopTokenAcquirer.for_confidential_client(
            app.client_id, str(uuid.uuid4()), app.certificate, cloud=_old_cloud(old_server),
            retry=retry).acquire_token(GRAPH),
        "confidential client Bearer (msal)": lambda: MtlsPopTokenAcquirer.for_confidential_client(
            app.client_id, str(uuid.uuid4()), app.certificate, cloud=_old_cloud(old_server),
            retry=retry).acquire_token(GRAPH, use_pop=False),
        "discovery": lambda: Cloud.from_discovery(old_server.url, ca_bundle=old_server.ca_bundle, timeout=3),
        "protected API": lambda: call_resource(old_server.url, TokenResult(
            access_token="x.y.z", token_type="Bearer", expires_on=dt.datetime.now(dt.timezone.utc),
            cloud=_old_cloud(old_server))),
        "inspector JWKS": lambda: verify_token("eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJhIjoxfQ.c2ln",
                                               jwks_url=old_server.url + "/keys", ca_bundle=old_server.ca_bundle,
                                               timeout=3),
    }
    for name, call in paths.items():
        seen = len(old_server.outcomes)
        with pytest.raises(LabError) as info:
            call()
        assert isinstance(info.value, (TransportError, TokenValidationError)), (name, info.value)
        assert info.value.cause and info.value.fix
        assert _eventually(lambda: len(old_server.outcomes) > seen), name
        assert all(o.startswith("refused") for o in old_server.outcomes[seen:]), (name, old_server.outcomes)


# -- files ---------------------------------------------------------------------------------------
def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_key_files_are_0600_whatever_the_umask(tmp_path, world):
    cert = world.app.certificate
    previous = os.umask(0)                       # the most permissive umask a learner could have
    try:
        cert.write_pem(tmp_path / "c.pem", tmp_path / "k.pem")
        cert.write_pem(tmp_path / "c2.pem", tmp_path / "k2.pem", password="pw")
        cert.write_pfx(tmp_path / "a.pfx", "pw")
        cert.write_pfx(tmp_path / "b.pfx")
        existing = tmp_path / "existing.pfx"
        existing.write_bytes(b"old")
        os.chmod(existing, 0o666)                 # overwriting a world-readable file tightens it
        cert.write_pfx(existing, "pw")
    finally:
        os.umask(previous)
    for name in ("k.pem", "k2.pem", "a.pfx", "b.pfx", "existing.pfx"):
        assert _mode(tmp_path / name) == 0o600, name
    assert "PRIVATE KEY" not in (tmp_path / "c.pem").read_text()          # the certificate file holds no key
    assert Certificate.load_pem(tmp_path / "c.pem", tmp_path / "k.pem").has_private_key
    assert Certificate.load_pfx(existing, "pw") == cert


def test_no_key_file_outlives_loading_into_tls(world, lab):
    pattern = os.path.join(tempfile.gettempdir(), "mtlspop-*")
    before = set(glob.glob(pattern))
    for _ in range(3):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        world.app.certificate.load_into(ctx)
    with pytest.raises(LabError):
        world.app.certificate.public_only().load_into(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    assert set(glob.glob(pattern)) == before
    # the authority keeps only its public CA bundle on disk, in a private folder
    folder = os.path.dirname(lab.ca_bundle)
    assert _mode(folder) == 0o700
    for path in glob.glob(os.path.join(folder, "*")):
        with open(path, encoding="utf-8", errors="replace") as handle:
            assert "PRIVATE KEY" not in handle.read(), path


def test_every_listener_binds_loopback_only(lab):
    """127.0.0.1 only: the same port on another loopback address (or any other address) refuses."""
    urls = [lab.login_url, lab.mtls_url, lab.imds_url, lab.resource_url, *lab.regional_urls.values()]
    assert {address[0] for address in lab.listener_addresses().values()} == {"127.0.0.1"}
    for url in urls:
        parts = urlsplit(url)
        # the host names are lab names that resolve to 127.0.0.1 in this process only
        assert socket.gethostbyname(parts.hostname) == "127.0.0.1"
        with socket.create_connection(("127.0.0.1", parts.port), timeout=3):
            pass
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.2", parts.port), timeout=3).close()
