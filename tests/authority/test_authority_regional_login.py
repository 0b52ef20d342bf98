"""ESTS-R's regional login host and the HTTPS default port, as msal's ``azure_region=`` reaches them.

msal (1.39, and msal-python PR #938's mTLS PoP code built on it) builds its regional authority from
the authority's host name alone: ``https://{region}.login.microsoft.com/{tenant}`` for the public
hosts, ``https://{region}.{instance}/{tenant}`` for any other, with no port. It reads that host's
discovery document when the application is created, before any token request, Bearer or mTLS PoP.
Written here with plain requests from what PR #938 sends (its msal/mtls.py and application.py), so
the lab, not the fetched code, is what is tested.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
from urllib.parse import urlsplit, urlunsplit

import jwt
import msal
import pytest
import requests

from mtlspop_lab.authority import LocalAuthority, names

GRAPH = "https://graph.microsoft.com"


def _claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def _session(lab, cert_files=None):
    session = requests.Session()
    session.trust_env = False            # this machine sets REQUESTS_CA_BUNDLE
    session.verify = lab.ca_bundle
    if cert_files:
        session.cert = cert_files
    return session


def _msal_regional_authority(authority_url: str, region: str) -> str:
    """msal's ESTS-R authority for a host outside the four public ones: the port is dropped."""
    parts = urlsplit(authority_url)
    return f"https://{region}.{parts.hostname}{parts.path}"


def _pr938_mtls_endpoint(token_endpoint: str, region: str | None) -> str:
    """PR #938's rule for a non-public host: login.X -> [region.]mtlsauth.X, port kept."""
    parts = urlsplit(token_endpoint)
    host = "mtlsauth" + parts.hostname[len("login"):]
    host = f"{region}.{host}" if region else host
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


# -- the HTTPS default port -----------------------------------------------------------------------
def test_lab_names_on_port_443_reach_the_authority_tls_port(fresh_authority):
    lab = fresh_authority
    for host in lab.hosts.values():
        assert socket.getaddrinfo(host, 443)[0][4] == ("127.0.0.1", lab.tls_port)
        assert socket.getaddrinfo(host, "https")[0][4] == ("127.0.0.1", lab.tls_port)
        assert socket.getaddrinfo(host, 8443)[0][4] == ("127.0.0.1", 8443)        # other ports as asked
    with _session(lab) as session:
        answer = session.get(f"https://login.{lab.domain}/{lab.tenant_id}/v2.0/.well-known/openid-configuration")
    assert answer.status_code == 200
    assert answer.json()["token_endpoint"] == lab.token_endpoint()     # the document still names the real port


def test_port_443_goes_to_the_latest_open_authority_and_back():
    first = LocalAuthority(regions=("westus3",))
    host = urlsplit(first.login_url).hostname
    try:
        second = LocalAuthority(regions=("westus3",))
        try:
            assert socket.getaddrinfo(host, 443)[0][4][1] == second.tls_port != first.tls_port
        finally:
            second.close()
        assert socket.getaddrinfo(host, 443)[0][4][1] == first.tls_port
        assert names.https_port(host) == first.tls_port
    finally:
        first.close()
    assert names.https_port(host) != first.tls_port        # its port is gone with it


# -- the regional login host ----------------------------------------------------------------------
@pytest.mark.parametrize("region", ["westus3", "eastus2"])
def test_regional_login_host_serves_discovery_at_the_url_msal_builds(fresh_authority, region):
    lab = fresh_authority
    regional = _msal_regional_authority(lab.authority_url(), region)
    assert urlsplit(regional).hostname == f"{region}.login.{lab.domain}"
    with _session(lab) as session:
        answer = session.get(f"{regional}/v2.0/.well-known/openid-configuration")
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    # the regional document names the regional token endpoint (msal posts where the document says)
    assert doc["token_endpoint"] == f"{lab.regional_login_urls[region]}/{lab.tenant_id}/oauth2/v2.0/token"
    assert doc["issuer"] == lab.issuer
    entry = [e for e in lab.trace if e.method == "GET"][-1]
    assert entry.listener == f"login:{region}" and entry.status == 200


def test_regional_login_host_never_asks_for_a_client_certificate(authority):
    for region, url in authority.regional_login_urls.items():
        host = urlsplit(url).hostname
        assert authority.hosts[f"login:{region}"] == host
        ctx = ssl.create_default_context(cafile=authority.ca_bundle)
        with socket.create_connection(("127.0.0.1", authority.tls_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:      # no client certificate loaded
                tls.sendall(f"GET /{authority.tenant_id}/v2.0/.well-known/openid-configuration HTTP/1.1\r\n"
                            f"Host: {host}\r\nConnection: close\r\n\r\n".encode())
                assert tls.recv(64).startswith(b"HTTP/1.1 200")


def test_pr938_mtls_pop_with_a_region_as_it_goes_on_the_wire(fresh_authority, pem_files):
    """PR #938, ``azure_region="westus3"``, ``mtls_proof_of_possession=True``: the requests it makes, in order."""
    lab = fresh_authority
    app = lab.directory.register_app("pr938-regional")
    region = "westus3"
    with _session(lab) as session:
        # 1. the application: tenant discovery on the authority, then on msal's regional authority (no port)
        doc = session.get(f"{lab.authority_url()}/v2.0/.well-known/openid-configuration").json()
        regional = _msal_regional_authority(lab.authority_url(), region)
        assert session.get(f"{regional}/v2.0/.well-known/openid-configuration").status_code == 200
    # 2. the token request: the login document's endpoint through PR #938's host rule, the app's certificate
    endpoint = _pr938_mtls_endpoint(doc["token_endpoint"], region)
    assert urlsplit(endpoint).hostname == f"{region}.mtlsauth.{lab.domain}"
    headers = {"Accept": "application/json", "x-client-sku": "MSAL.Python", "x-client-ver": "1.39.0",
               "x-client-os": "linux", "x-ms-lib-capability": "retry-after, h429",
               "client-request-id": "00000000-0000-4000-8000-000000000938"}
    with _session(lab, pem_files(app.certificate)) as session:
        answer = session.post(endpoint, headers=headers, data={
            "client_id": app.client_id, "grant_type": "client_credentials", "client_info": "1",
            "token_type": "mtls_pop", "scope": f"{GRAPH}/.default"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["token_type"] == "mtls_pop"           # PR #938 fails closed on anything else
        assert _claims(body["access_token"])["cnf"]["x5t#S256"] == app.certificate.x5t_s256
        assert [e.listener for e in lab.trace if e.method == "POST"][-1] == f"mtls:{region}"
        # 3. the protected API, over mTLS with the same certificate
        api = session.get(lab.resource_url, headers={"Authorization": f"mtls_pop {body['access_token']}"})
    assert api.status_code == 200, api.text


@pytest.mark.parametrize("region", ["westus3", "eastus2"])
def test_unmodified_msal_with_azure_region_gets_a_regional_bearer(fresh_authority, monkeypatch, region):
    """msal 1.39 as documented (``azure_region=``): created against the lab, its token request goes to
    the regional login host named by the regional document."""
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "MSAL_FORCE_REGION"):
        monkeypatch.delenv(var, raising=False)
    lab = fresh_authority
    app = lab.directory.register_app(f"regional-bearer-{region}")
    cert = app.certificate
    cca = msal.ConfidentialClientApplication(
        app.client_id, authority=lab.authority_url(), verify=lab.ca_bundle, azure_region=region,
        client_credential={"private_key": cert.private_key_pem().decode(), "public_certificate": cert.pem},
        instance_discovery=False)
    result = cca.acquire_token_for_client([f"{GRAPH}/.default"])
    assert result.get("token_type") == "Bearer", result.get("error_description")
    assert _claims(result["access_token"])["tid"] == lab.tenant_id
    gets = [e.listener for e in lab.trace if e.method == "GET"]
    posts = [e for e in lab.trace if e.method == "POST"]
    assert f"login:{region}" in gets
    assert posts[-1].listener == f"login:{region}" and posts[-1].status == 200


def test_curl_with_the_printed_connect_to_reaches_a_host_without_a_port(fresh_authority):
    """Another process has no name hook: ``connect_to_args`` maps each TLS host's 443 as the hook does."""
    lab = fresh_authority
    region = lab.regions[0]
    url = f"https://{region}.login.{lab.domain}/{lab.tenant_id}/v2.0/.well-known/openid-configuration"
    assert f"{region}.login.{lab.domain}:443:127.0.0.1:{lab.tls_port}" in lab.connect_to_args()
    done = subprocess.run(["/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                           *lab.connect_to_args(), "--cacert", lab.ca_bundle, url],
                          capture_output=True, text=True, timeout=20, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "200"
