"""Cloud.from_discovery against a small local HTTPS server that serves chosen documents.

Runs without node: the documents here are written to probe each rule
(issuer match, https endpoints, mtls_endpoint_aliases shape, trust).
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mtlspop_lab.certs import CertificateAuthority
from mtlspop_lab.cloud import Cloud
from mtlspop_lab.errors import ConfigurationError, LabError, TransportError


class _DocumentServer:
    """HTTPS on 127.0.0.1 answering ``routes[path] = (status, body)``; 404 otherwise."""

    def __init__(self, tmp_path):  # one per module: a CA and a listener cost ~0.3 s
        self.ca = CertificateAuthority("discovery-test CA")
        self.ca_bundle = str(tmp_path / "ca.pem")
        (tmp_path / "ca.pem").write_text(self.ca.pem)
        self.routes: dict[str, tuple[int, str]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_GET(self):  # noqa: N802 - http.server's naming
                status, body = routes.get(self.path, (404, "{}"))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ca.issue_server_certificate("127.0.0.1").load_into(context)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def publish(self, document, path="/.well-known/openid-configuration", status=200):
        self.routes[path] = (status, document if isinstance(document, str) else json.dumps(document))

    def document(self, **changes):
        doc = {"issuer": self.base, "token_endpoint": f"{self.base}/oauth/token",
               "jwks_uri": f"{self.base}/jwks",
               "mtls_endpoint_aliases": {"token_endpoint": "https://mtls.127.0.0.1.example:8443/oauth/token"},
               "tls_client_certificate_bound_access_tokens": True}
        doc.update(changes)
        return {k: v for k, v in doc.items() if v is not None}

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def _server(tmp_path_factory):
    server = _DocumentServer(tmp_path_factory.mktemp("discovery"))
    yield server
    server.close()


@pytest.fixture
def docs(_server):
    _server.routes.clear()
    return _server


def test_reads_endpoints_and_mtls_alias(docs):
    docs.publish(docs.document())
    cloud = Cloud.from_discovery(docs.base, ca_bundle=docs.ca_bundle, name="generic")
    assert cloud.name == "generic"
    assert cloud.login_url == docs.base
    assert cloud.token_endpoint("t") == f"{docs.base}/oauth/token"
    assert cloud.mtls_token_endpoint("t") == "https://mtls.127.0.0.1.example:8443/oauth/token"
    assert cloud.mtls_base_url() == "https://mtls.127.0.0.1.example:8443"
    assert cloud.metadata["tls_client_certificate_bound_access_tokens"] is True
    with pytest.raises(TypeError):
        cloud.metadata["issuer"] = "https://evil.example"  # read-only view


def test_without_aliases_the_ordinary_token_endpoint_takes_mtls(docs):
    docs.publish(docs.document(mtls_endpoint_aliases=None))
    cloud = Cloud.from_discovery(docs.base + "/", ca_bundle=docs.ca_bundle)
    assert cloud.mtls_token_endpoint("t") == cloud.token_endpoint("t") == f"{docs.base}/oauth/token"
    assert cloud.name == docs.base.split("//")[1]


def test_issuer_with_a_path_and_oauth_metadata_url(docs):
    issuer = f"{docs.base}/tenant-a"
    docs.publish(docs.document(issuer=issuer), path="/tenant-a/.well-known/oauth-authorization-server")
    cloud = Cloud.from_discovery(f"{issuer}/.well-known/oauth-authorization-server", ca_bundle=docs.ca_bundle)
    assert cloud.issuer == issuer == cloud.login_url


def test_local_clouds_are_not_discovered():
    cloud = Cloud(name="local", login_url="https://127.0.0.1:1", mtls_url="https://127.0.0.1:2", is_local=True)
    assert not cloud.is_discovered and cloud.issuer is None and cloud.jwks_uri is None
    assert cloud.mtls_token_endpoint("tenant1") == "https://127.0.0.1:2/tenant1/oauth2/v2.0/token"


@pytest.mark.parametrize("changes, code", [
    ({"issuer": "https://other.example"}, "issuer_mismatch"),
    ({"token_endpoint": None}, "discovery_malformed"),
    ({"token_endpoint": "http://127.0.0.1/token"}, "discovery_malformed"),
    ({"jwks_uri": 42}, "discovery_malformed"),
    ({"mtls_endpoint_aliases": ["https://x.example/token"]}, "discovery_malformed"),
    ({"mtls_endpoint_aliases": {"token_endpoint": "http://127.0.0.1/token"}}, "discovery_malformed"),
])
def test_bad_documents_are_refused_with_a_code(docs, changes, code):
    docs.publish(docs.document(**changes))
    with pytest.raises(ConfigurationError) as info:
        Cloud.from_discovery(docs.base, ca_bundle=docs.ca_bundle)
    assert info.value.code == code
    assert info.value.fix


@pytest.mark.parametrize("body", ["<html>not json</html>", "[1, 2]"])
def test_non_json_documents_are_refused(docs, body):
    docs.publish(body)
    with pytest.raises(ConfigurationError) as info:
        Cloud.from_discovery(docs.base, ca_bundle=docs.ca_bundle)
    assert info.value.code == "discovery_malformed"


def test_missing_document_is_a_configuration_error(docs):
    with pytest.raises(ConfigurationError) as info:
        Cloud.from_discovery(docs.base + "/nowhere", ca_bundle=docs.ca_bundle)
    assert info.value.code == "discovery_not_found"
    assert "404" in info.value.message


def test_untrusted_server_fails_tls_even_with_requests_ca_bundle_set(docs, monkeypatch):
    """Without ca_bundle the system trust applies; REQUESTS_CA_BUNDLE is not read."""
    docs.publish(docs.document())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", docs.ca_bundle)
    with pytest.raises(TransportError) as info:
        Cloud.from_discovery(docs.base)
    assert info.value.code == "tls_failure"
    assert "ca_bundle" in info.value.fix


@pytest.mark.parametrize("url", ["", "http://127.0.0.1:1", "127.0.0.1:1", "https://"])
def test_non_https_urls_are_refused(url):
    with pytest.raises(ConfigurationError) as info:
        Cloud.from_discovery(url)
    assert info.value.code == "invalid_discovery_url"


def test_nothing_listening_is_a_transport_error(tmp_path):
    server = _DocumentServer(tmp_path)
    port = server.httpd.server_address[1]
    server.close()
    with pytest.raises(TransportError) as info:
        Cloud.from_discovery(f"https://127.0.0.1:{port}", ca_bundle=server.ca_bundle, timeout=2)
    assert isinstance(info.value, LabError) and "running" in info.value.fix
