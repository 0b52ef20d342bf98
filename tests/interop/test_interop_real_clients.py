"""Clients nobody here wrote, against the lab's authority: curl and ``openssl s_client``.

curl proves the token endpoint and the protected API speak plain HTTP over
mTLS (no lab or msal code on the client side). ``openssl s_client`` shows
the TLS layer itself: which listeners send a CertificateRequest, and that
TLS 1.0/1.1 are refused by the server while 1.2 and 1.3 work.

Tokens never appear on a command line: the Authorization header goes through
a 0600 file (``curl -H @file``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mtlspop_lab.certs import Certificate
from mtlspop_lab.inspector import check_binding, verify_token

GRAPH = "https://graph.microsoft.com"
CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")


def _require(tool: str | None, name: str) -> str:
    if tool:
        return tool
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{name} is required in CI for the interop tests", pytrace=False)
    pytest.skip(f"{name} is not installed")


class Curl:
    """curl with nothing from the environment: no .curlrc (-q), no proxy, only the given CA."""

    def __init__(self, folder: Path, ca_bundle: str):
        self.folder = folder
        self.ca_bundle = ca_bundle
        self.binary = _require(CURL, "curl")
        self._n = 0

    def _file(self, name: str, text: str = "") -> str:
        self._n += 1
        path = self.folder / f"{self._n}-{name}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return str(path)

    def __call__(self, url: str, *, certificate: Certificate | None = None, data: dict | None = None,
                 authorization: str | None = None, tls: str | None = None):
        body, headers = self._file("body"), self._file("headers")
        args = [self.binary, "-q", "-sS", "--noproxy", "*", "--cacert", self.ca_bundle,
                "-o", body, "-D", headers, "-w", "%{http_code}", "--max-time", "20"]
        if tls:
            args += [tls]
        if certificate is not None:
            cert, key = self._file("cert.pem"), self._file("key.pem")
            certificate.write_pem(cert, key)
            args += ["--cert", cert, "--key", key]
        if authorization is not None:
            args += ["-H", "@" + self._file("auth-header", f"Authorization: {authorization}\n")]
        for name, value in (data or {}).items():
            args += ["--data-urlencode", f"{name}={value}"]
        env = {k: v for k, v in os.environ.items()
               if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "curl_ca_bundle")}
        proc = subprocess.run(args + [url], capture_output=True, text=True, timeout=30, env=env)
        return CurlResult(proc.returncode, proc.stdout.strip(), Path(body).read_text(),
                          Path(headers).read_text(), proc.stderr)


class CurlResult:
    def __init__(self, exit_code, status, body, headers, stderr):
        self.exit_code, self.body, self.headers, self.stderr = exit_code, body, headers, stderr
        self.status = int(status) if status.isdigit() else 0

    def json(self):
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for line in self.headers.splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


@pytest.fixture
def curl(tmp_path, authority):
    return Curl(tmp_path, authority.ca_bundle)


@pytest.fixture(scope="module")
def curl_app(authority):
    return authority.directory.register_app("interop-curl-app")


def _pop_form(app):
    return {"client_id": app.client_id, "grant_type": "client_credentials",
            "scope": f"{GRAPH}/.default", "token_type": "mtls_pop"}


# -- curl: the token endpoint ---------------------------------------------------------------
def test_curl_with_client_certificate_gets_a_bound_token(authority, curl, curl_app):
    result = curl(authority.token_endpoint("mtls"), certificate=curl_app.certificate, data=_pop_form(curl_app))
    assert result.status == 200, result.body
    body = result.json()
    assert body["token_type"] == "mtls_pop"
    token = body["access_token"]
    assert check_binding(token, curl_app.certificate).bound
    verified = verify_token(token, authority=authority, audience=GRAPH)
    assert verified.claims["appid"] == curl_app.client_id
    other = Certificate.create_self_signed("CN=someone else")
    assert not check_binding(token, other).bound


def test_curl_without_client_certificate_gets_an_oauth_error(authority, curl, curl_app):
    result = curl(authority.token_endpoint("mtls"), data=_pop_form(curl_app))
    assert result.exit_code == 0  # the TLS handshake succeeds: the certificate is optional at TLS
    assert result.status in (400, 401), result.body
    body = result.json()
    assert "access_token" not in body
    assert body["error"] in ("invalid_client", "invalid_request")
    assert body["error_description"].startswith("AADSTS")


def test_curl_with_an_unregistered_certificate_gets_no_token(authority, curl, curl_app):
    stranger = Certificate.create_self_signed("CN=stranger")
    result = curl(authority.token_endpoint("mtls"), certificate=stranger, data=_pop_form(curl_app))
    # Either the TLS layer refuses a certificate it cannot chain (curl exits non-zero with no HTTP
    # status), or the token service answers an OAuth error; never a token.
    assert result.status != 200, result.body
    assert "access_token" not in result.body
    if result.status == 0:
        assert result.exit_code != 0, result.stderr


# -- curl: the protected API ------------------------------------------------------------------
@pytest.fixture(scope="module")
def curl_token(authority, curl_app, tmp_path_factory):
    curl = Curl(tmp_path_factory.mktemp("curl"), authority.ca_bundle)
    result = curl(authority.token_endpoint("mtls"), certificate=curl_app.certificate, data=_pop_form(curl_app))
    assert result.status == 200, result.body
    return result.json()["access_token"]


def test_curl_calls_the_protected_api_with_the_binding_certificate(authority, curl, curl_app, curl_token):
    result = curl(f"{authority.resource_url}/v1.0/me", certificate=curl_app.certificate,
                  authorization=f"mtls_pop {curl_token}")
    assert result.status == 200, result.body
    body = result.json()
    assert body["ok"] is True and body["scheme"] == "mtls_pop"
    assert body["x5t#S256"] == curl_app.certificate.x5t_s256
    assert body["aud"] == GRAPH


def test_curl_protected_api_refuses_another_certificate(authority, curl, curl_token):
    thief = authority.directory.register_app("interop-curl-thief").certificate  # passes TLS, wrong cnf
    result = curl(f"{authority.resource_url}/v1.0/me", certificate=thief, authorization=f"mtls_pop {curl_token}")
    assert result.status == 401
    challenge = result.header("WWW-Authenticate")
    assert challenge.startswith("mtls_pop") and 'error="invalid_token"' in challenge
    assert "another certificate" in challenge


def test_curl_protected_api_refuses_no_certificate_and_bearer_scheme(authority, curl, curl_app, curl_token):
    no_cert = curl(f"{authority.resource_url}/v1.0/me", authorization=f"mtls_pop {curl_token}")
    assert no_cert.status == 401 and "no client certificate" in no_cert.header("WWW-Authenticate")
    bearer = curl(f"{authority.resource_url}/v1.0/me", certificate=curl_app.certificate,
                  authorization=f"Bearer {curl_token}")
    assert bearer.status == 401 and "Bearer scheme" in bearer.header("WWW-Authenticate")


# -- openssl s_client: the TLS layer ------------------------------------------------------------
def s_client(url: str, ca_bundle: str, *flags: str, legacy: bool = False) -> str:
    """Run ``openssl s_client -msg`` once against ``url``; its stdout and stderr together.

    ``legacy``: make the *client* able to offer TLS 1.0/1.1 (no system policy file,
    security level 0), so that a refusal can only come from the server.
    """
    binary = _require(OPENSSL, "openssl")
    parts = urlsplit(url)
    env = dict(os.environ)
    # the lab's host names resolve inside the Python process only: dial the address, name the host by SNI
    args = [binary, "s_client", "-connect", f"127.0.0.1:{parts.port}", "-servername", parts.hostname,
            "-CAfile", ca_bundle, "-msg", *flags]
    if legacy:
        env["OPENSSL_CONF"] = os.devnull
        args += ["-cipher", "DEFAULT@SECLEVEL=0"]
    proc = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, env=env)
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
@pytest.mark.parametrize("listener", ["mtls", "resource"])
def test_mtls_listeners_send_a_certificate_request(authority, listener, version):
    url = authority.mtls_url if listener == "mtls" else authority.resource_url
    out = s_client(url, authority.ca_bundle, version)
    assert "CertificateRequest" in out
    assert "Requested Signature Algorithms" in out
    # the CA-name list (RFC 8446 4.2.4 / RFC 5246 7.4.4) is sent or said to be empty
    assert "Acceptable client certificate CA names" in out or "No client certificate CA names sent" in out
    assert "Verify return code: 0 (ok)" in out
    assert f"New, TLSv1.{version[-1]}, Cipher is" in out


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_login_listener_does_not_ask_for_a_certificate(authority, version):
    out = s_client(authority.login_url, authority.ca_bundle, version)
    assert "Verify return code: 0 (ok)" in out
    assert "CertificateRequest" not in out and "Requested Signature Algorithms" not in out


@pytest.mark.parametrize("listener", ["login", "mtls", "resource"])
def test_tls_1_0_and_1_1_are_refused_by_the_server(authority, listener):
    url = {"login": authority.login_url, "mtls": authority.mtls_url, "resource": authority.resource_url}[listener]
    for old in ("-tls1", "-tls1_1"):
        out = s_client(url, authority.ca_bundle, old, legacy=True)
        # the client offered the old version; the server answered with a protocol_version alert
        assert "alert protocol version" in out, out[-600:]
        assert "New, (NONE), Cipher is (NONE)" in out  # no session was established
    control = s_client(url, authority.ca_bundle, "-tls1_2", legacy=True)  # same client settings
    assert "New, TLSv1.2, Cipher is" in control and "alert protocol version" not in control


def test_oidc_provider_names_its_client_ca_in_the_certificate_request(oidc_provider):
    """A contrast: Node's TLS sends the CA names it trusts; the lab's Python ssl sends none."""
    out = s_client(oidc_provider.mtls_url, oidc_provider.ca_bundle, "-tls1_3")
    assert "CertificateRequest" in out
    assert "Acceptable client certificate CA names" in out
    assert "mtlspop-lab interop CA" in out
    login = s_client(oidc_provider.login_url, oidc_provider.ca_bundle, "-tls1_3")
    assert "CertificateRequest" not in login
