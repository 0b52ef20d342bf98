"""A tiny hostile authority for the bad-input tests: it answers whatever the test scripts.

Two loopback servers: HTTPS (asks for a client certificate, trusts whatever it
is told) standing in for the token service, and plain HTTP standing in for
IMDS. OIDC discovery is answered correctly by default (so msal reaches the
token request); every other answer comes from ``server.answer``, a function
``(kind, method, path, body) -> (status, headers, body bytes)`` that the test
sets, where ``kind`` is ``discovery``, ``token``, ``imds_v1``,
``getplatformmetadata`` or ``issuecredential``.

This is a real server on real sockets: the lab's clients (msal underneath)
parse real bytes, which is the point of the exercise.
"""

from __future__ import annotations

import http.server
import json
import socketserver
import ssl
import threading
from pathlib import Path

from mtlspop_lab.certs import CertificateAuthority
from mtlspop_lab.cloud import Cloud

TENANT = "6f3d6e4c-0000-4000-8000-00000000feed"


def kind_of(path: str) -> str:
    if "/.well-known/openid-configuration" in path:
        return "discovery"
    if "/metadata/identity/oauth2/token" in path:
        return "imds_v1"
    if "getplatformmetadata" in path:
        return "getplatformmetadata"
    if "issuecredential" in path:
        return "issuecredential"
    if path.split("?")[0].endswith("/oauth2/v2.0/token"):
        return "token"
    return "other"


def as_answer(status: int = 200, body=b"", headers: dict | None = None):
    if not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    return status, dict(headers or {}), bytes(body)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 1           # idle keep-alive: a client holding a response (and so its socket) costs 1 s

    def log_message(self, *args):
        pass

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        owner: HostileServer = self.server.owner
        kind = kind_of(self.path)
        owner.requests.append((kind, self.command, self.path))
        if kind == "discovery" and owner.discovery_answer is None:
            status, headers, payload = owner.discovery(self.path)
        elif kind == "discovery":
            status, headers, payload = owner.discovery_answer(self.path)
        else:
            status, headers, payload = owner.answer(kind, self.command, self.path, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = False
    block_on_close = True


class HostileServer:
    """Start with ``with HostileServer(tmp_dir) as hostile:``; ``hostile.cloud`` points the lab at it."""

    def __init__(self, folder: Path):
        self.ca = CertificateAuthority("hostile CA")
        self.ca_bundle = Path(folder) / "hostile-ca.pem"
        self.ca_bundle.write_text(self.ca.pem)
        self.requests: list = []
        self.answer = lambda kind, method, path, body: as_answer(500, {"error": "not scripted"})
        self.discovery_answer = None       # None: a correct discovery document
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ca.issue_server_certificate("127.0.0.1", "localhost").load_into(self._ctx)
        self._ctx.verify_mode = ssl.CERT_OPTIONAL
        self._ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        self._ctx.load_verify_locations(cadata=self.ca.pem)
        self._https = self._start(tls=True)
        self._http = self._start(tls=False)

    def trust(self, certificate) -> None:
        """Accept this client certificate at the TLS layer."""
        self._ctx.load_verify_locations(cadata=certificate.pem)

    def _start(self, tls: bool):
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        if tls:
            server.socket = self._ctx.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="hostile-" + ("https" if tls else "http"), daemon=True)
        thread.start()
        return server, thread

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self._https[0].server_address[1]}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self._http[0].server_address[1]}"

    @property
    def cloud(self) -> Cloud:
        return Cloud(name="hostile", login_url=self.https_url, mtls_url=self.https_url,
                     regional_mtls_urls={"westus3": self.https_url}, imds_url=self.http_url,
                     ca_bundle=str(self.ca_bundle), is_local=True)

    def discovery(self, path: str):
        base = f"{self.https_url}/{TENANT}"
        return as_answer(200, {"issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
                               "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                               "jwks_uri": f"{base}/discovery/v2.0/keys",
                               "tls_client_certificate_bound_access_tokens": True})

    def count(self, kind: str) -> int:
        return sum(1 for k, _m, _p in self.requests if k == kind)

    def close(self) -> None:
        for server, thread in (self._https, self._http):
            server.shutdown()
            server.server_close()
            thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
