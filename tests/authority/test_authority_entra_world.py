"""The Entra-shaped world: host names, one TLS port routed by SNI, names resolved in-process,
tenants, and discovery as Entra serves it, checked with clients written from Microsoft's docs."""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
import subprocess
from urllib.parse import urlsplit, urlunsplit

import jwt
import msal
import pytest
import requests
import urllib3
from cryptography import x509

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.authority import names
from mtlspop_lab.errors import ConfigurationError

GRAPH = "https://graph.microsoft.com"
PUBLIC_LOGIN_HOSTS = {"login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"}


def _claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def msal_pop_token_endpoint(token_endpoint: str, region: str | None = None) -> str:
    """MSAL's PoP host rule, written here from msal-python PR #938 (msal/mtls.py) independently of
    the lab's Cloud: login.X -> [region.]mtlsauth.X (public hosts -> mtlsauth.microsoft.com), port kept."""
    parts = urlsplit(token_endpoint)
    host = parts.hostname
    assert host.startswith("login.") or host in PUBLIC_LOGIN_HOSTS
    base = "mtlsauth.microsoft.com" if host in PUBLIC_LOGIN_HOSTS else "mtlsauth" + host[len("login"):]
    host = f"{region}.{base}" if region else base
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


# -- host names and the one TLS port -----------------------------------------------------------
# hosts that never ask for a client certificate (the rest always do): login, its regional hosts, attest
SERVER_TLS_ONLY = {"login", "attest"}


def _server_tls_only(name: str) -> bool:
    return name.split(":")[0] in SERVER_TLS_ONLY


def test_every_https_host_on_one_port_and_named_in_the_certificate(authority):
    hosts = {urlsplit(u).hostname for u in
             [authority.login_url, authority.mtls_url, authority.resource_url, authority.attestation_url,
              *authority.regional_urls.values(), *authority.regional_login_urls.values()]}
    assert hosts == set(authority.hosts.values())
    assert all(h.endswith(".mtlspop.localhost") for h in hosts)
    pem = ssl.get_server_certificate(("127.0.0.1", authority.tls_port))
    cert = x509.load_pem_x509_certificate(pem.encode())
    sans = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
               .get_values_for_type(x509.DNSName))
    assert hosts <= sans
    ca = x509.load_pem_x509_certificate(open(authority.ca_bundle, "rb").read())
    assert cert.issuer == ca.subject


def _s_client(authority, host, *extra):
    done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{authority.tls_port}",
                           "-servername", host, "-CAfile", authority.ca_bundle, *extra],
                          input=b"", capture_output=True, timeout=30)
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_openssl_sees_a_certificate_request_on_mtls_hosts_only(authority, version):
    for name, host in authority.hosts.items():
        out = _s_client(authority, host, version)
        assert "Verify return code: 0 (ok)" in out, (host, out[-400:])
        asked = "Requested Signature Algorithms" in out
        assert asked == (not _server_tls_only(name)), (name, version)


def test_unknown_server_name_is_refused_at_tls(authority):
    authority.clear_trace()
    out = _s_client(authority, "evil.mtlspop.localhost")
    assert "no peer certificate available" in out and "unrecognized name" in out
    tls = [e for e in authority.trace if e.method == "TLS"]
    assert tls and "unrecognized_name" in tls[-1].error


def test_curl_login_host_never_asks_for_a_certificate_mtls_hosts_always_do(authority):
    for name, host in authority.hosts.items():
        url = f"https://{host}:{authority.tls_port}/{authority.tenant_id}/v2.0/.well-known/openid-configuration"
        done = subprocess.run(["curl", "-v", "-sS", "--max-time", "20", "--cacert", authority.ca_bundle,
                               "--resolve", f"{host}:{authority.tls_port}:127.0.0.1", "-o", "/dev/null", url],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr[-300:]
        assert ("Request CERT" in done.stderr) == (not _server_tls_only(name)), name


# -- name resolution inside this process --------------------------------------------------------
def test_lab_names_resolve_for_every_python_client(authority):
    login = urlsplit(authority.login_url).hostname
    port = authority.tls_port
    assert socket.getaddrinfo(login, port)[0][4][0] == "127.0.0.1"
    assert socket.gethostbyname(login) == "127.0.0.1"
    ctx = ssl.create_default_context(cafile=authority.ca_bundle)
    # plain ssl socket, with the host name checked against the certificate
    with socket.create_connection((login, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=login) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    path = f"/{authority.tenant_id}/v2.0/.well-known/openid-configuration"
    conn = http.client.HTTPSConnection(login, port, context=ctx, timeout=10)
    conn.request("GET", path)
    assert conn.getresponse().status == 200
    conn.close()
    with urllib3.PoolManager(ssl_context=ctx) as pool:
        assert pool.request("GET", f"{authority.login_url}{path}").status == 200
    with requests.Session() as session:
        session.trust_env = False
        assert session.get(f"{authority.login_url}{path}", verify=authority.ca_bundle, timeout=10).ok

    async def fetch():
        reader, writer = await asyncio.open_connection(login, port, ssl=ctx)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {login}\r\n\r\n".encode())   # kept alive: we close
        status = await reader.readline()
        writer.close()
        await writer.wait_closed()
        return status
    assert b" 200 " in asyncio.run(fetch())


def test_other_names_are_untouched(authority):
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("nothing-here.invalid", 443)
    with pytest.raises(socket.gaierror):        # a name under the lab domain that no authority serves
        socket.getaddrinfo("unserved.mtlspop.localhost", 443)
    assert names.hook_installed()
    assert names.registered() == sorted(set(names.registered()) & set(authority.hosts.values())) or \
        set(authority.hosts.values()) <= set(names.registered())


def test_closing_the_last_authority_removes_the_names():
    original = socket.getaddrinfo
    already = names.registered()
    first = LocalAuthority(regions=("westus3",))
    second = LocalAuthority(regions=("westus3", "northeurope"))
    login = urlsplit(first.login_url).hostname
    first.close()
    assert socket.getaddrinfo(login, 1)[0][4][0] == "127.0.0.1"      # the second one still serves it
    second.close()
    assert names.registered() == already
    if not already:                                                  # run alone: nothing is left behind
        assert not names.hook_installed() and socket.getaddrinfo is original
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("northeurope.mtlsauth.mtlspop.localhost", 1)


# -- Microsoft's clients, unmodified --------------------------------------------------------------
@pytest.fixture
def no_env_bundle(monkeypatch):
    """msal's own requests session honours REQUESTS_CA_BUNDLE (set on this machine) over verify=."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.mark.parametrize("discovery", ["lab", False])
def test_unmodified_msal_with_a_certificate_gets_tokens(authority, app, no_env_bundle, discovery):
    cert = app.certificate
    authority.clear_trace()
    cca = msal.ConfidentialClientApplication(
        app.client_id, authority=authority.authority_url(),
        client_credential={"private_key": cert.private_key_pem().decode(), "thumbprint": cert.thumbprint,
                           "public_certificate": cert.pem},
        verify=authority.ca_bundle,
        instance_discovery=authority.instance_discovery_url if discovery == "lab" else False)
    result = cca.acquire_token_for_client([f"{GRAPH}/.default"])
    assert result.get("token_type") == "Bearer", result.get("error_description")
    claims = _claims(result["access_token"])
    # Graph accepts v1.0 tokens: the v1 issuer of the tenant
    assert claims["iss"] == f"https://sts.mtlspop.localhost/{authority.tenant_id}/"
    assert claims["tid"] == authority.tenant_id
    asked = [e.path for e in authority.trace if "/common/discovery/instance" in e.path]
    assert bool(asked) == (discovery == "lab")


def test_msal_error_answers_come_through(authority, no_env_bundle):
    """The OAuth error reaches the caller. (msal 1.39 looks up host aliases after an error at
    login.microsoftonline.com whatever instance_discovery names, so this runs as msal documents for
    a cloud it does not know: instance_discovery=False.)"""
    stranger = authority.directory.register_app("stranger").certificate
    cca = msal.ConfidentialClientApplication(
        "11111111-2222-3333-4444-555555555555", authority=authority.authority_url(),
        client_credential={"private_key": stranger.private_key_pem().decode(), "thumbprint": stranger.thumbprint},
        verify=authority.ca_bundle, instance_discovery=False)
    result = cca.acquire_token_for_client([f"{GRAPH}/.default"])
    assert result["error"] == "unauthorized_client" and 700016 in result["error_codes"]


def test_unmodified_managed_identity_client_via_pod_identity_host(authority, monkeypatch):
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", authority.imds_url)
    for var in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    with requests.Session() as session:
        client = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=session)
        result = client.acquire_token_for_client(resource=GRAPH)
    assert result.get("token_type") == "Bearer", result
    assert _claims(result["access_token"])["tid"] == authority.tenant_id


@pytest.mark.parametrize("region", [None, "westus3", "eastus2"])
def test_requests_client_with_msal_host_rule_gets_mtls_pop(authority, app, pem_files, region):
    with requests.Session() as session:
        session.trust_env = False
        session.verify, session.cert = authority.ca_bundle, pem_files(app.certificate)
        doc = session.get(f"{authority.authority_url()}/v2.0/.well-known/openid-configuration").json()
        assert urlsplit(doc["token_endpoint"]).hostname == "login.mtlspop.localhost"
        endpoint = msal_pop_token_endpoint(doc["token_endpoint"], region)
        answer = session.post(endpoint, data={"client_id": app.client_id, "grant_type": "client_credentials",
                                              "scope": f"{GRAPH}/.default", "token_type": "mtls_pop"})
    assert answer.ok, answer.text
    body = answer.json()
    assert body["token_type"] == "mtls_pop"
    assert _claims(body["access_token"])["cnf"]["x5t#S256"] == app.certificate.x5t_s256
    entry = [e for e in authority.trace if e.method == "POST"][-1]
    assert entry.listener == (f"mtls:{region}" if region else "mtls")


# -- discovery as Entra serves it --------------------------------------------------------------------
def test_tenant_discovery_in_entra_shape(authority, session_for):
    session = session_for()
    doc = session.get(f"{authority.authority_url()}/v2.0/.well-known/openid-configuration").json()
    tid = authority.tenant_id
    assert doc["issuer"] == f"https://login.mtlspop.localhost:{authority.tls_port}/{tid}/v2.0"
    assert doc["token_endpoint"] == f"{authority.login_url}/{tid}/oauth2/v2.0/token"
    assert doc["token_endpoint_auth_methods_supported"] == ["client_secret_post", "private_key_jwt",
                                                            "client_secret_basic"]
    assert "mtls_endpoint_aliases" not in doc and "tls_client_certificate_bound_access_tokens" not in doc
    for tenant in ("common", "organizations"):
        generic = session.get(f"{authority.login_url}/{tenant}/v2.0/.well-known/openid-configuration")
        assert generic.status_code == 200
        assert generic.json()["issuer"] == f"{authority.login_url}/{{tenantid}}/v2.0"
        assert generic.json()["token_endpoint"] == f"{authority.login_url}/{tenant}/oauth2/v2.0/token"
    v1 = session.get(f"{authority.authority_url()}/.well-known/openid-configuration").json()
    assert v1["issuer"] == f"https://sts.mtlspop.localhost/{tid}/"
    assert v1["token_endpoint"] == f"{authority.login_url}/{tid}/oauth2/token"
    rfc8414 = session.get(f"{authority.issuer}/.well-known/oauth-authorization-server").json()
    assert rfc8414["mtls_endpoint_aliases"]["token_endpoint"] == authority.token_endpoint("mtls")
    assert rfc8414["tls_client_certificate_bound_access_tokens"] is True


@pytest.mark.parametrize("query", ["api-version=1.1&authority_url={url}/{tid}/oauth2/v2.0/authorize",
                                   "api-version=1.0&authorization_endpoint={url}/{tid}/oauth2/v2.0/authorize"])
def test_instance_discovery(authority, session_for, query):
    url = authority.instance_discovery_url + "?" + query.format(url=authority.login_url, tid=authority.tenant_id)
    answer = session_for().get(url)
    assert answer.status_code == 200
    body = answer.json()
    assert body["tenant_discovery_endpoint"] == \
        f"{authority.authority_url()}/v2.0/.well-known/openid-configuration"
    assert body["metadata"] == [{"preferred_network": "login.mtlspop.localhost",
                                 "preferred_cache": "login.mtlspop.localhost",
                                 "aliases": ["login.mtlspop.localhost"]}]


def test_instance_discovery_refuses_an_unknown_instance(authority, session_for):
    answer = session_for().get(authority.instance_discovery_url,
                               params={"api-version": "1.1",
                                       "authority_url": "https://login.elsewhere.test/x/oauth2/v2.0/authorize"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_instance" and answer.json()["error_codes"] == [50049]


def test_token_endpoint_refuses_common(authority, app, session_for, form):
    answer = session_for(app.certificate).post(f"{authority.mtls_url}/common/oauth2/v2.0/token",
                                               data=form(app.client_id, token_type="mtls_pop"))
    assert answer.status_code == 400 and answer.json()["error_codes"] == [50059]


# -- tenants --------------------------------------------------------------------------------------
def test_tenants_have_their_own_ids_issuers_and_apps(fresh_authority, pem_files):
    lab = fresh_authority
    fabrikam = lab.add_tenant("fabrikam")
    assert fabrikam.tenant_id != lab.tenant_id and lab.directory.tenant_id == lab.tenant_id
    assert lab.tenant("fabrikam") is fabrikam and lab.tenant(fabrikam.tenant_id.upper()) is fabrikam
    assert lab.tenant("lab") is lab.directory
    assert lab.authority_url(fabrikam.tenant_id) == lab.authority_url("fabrikam") == \
        f"{lab.login_url}/{fabrikam.tenant_id}"
    assert fabrikam.issuer == f"{lab.login_url}/{fabrikam.tenant_id}/v2.0"
    assert fabrikam.managed_identities == []                        # the VM lives in the home tenant
    home_app = lab.directory.register_app("home-app")
    other_app = fabrikam.register_app("fabrikam-app")
    assert other_app.tenant_id == fabrikam.tenant_id

    def pop(app, tenant_id):
        with requests.Session() as session:
            session.trust_env = False
            session.verify, session.cert = lab.ca_bundle, pem_files(app.certificate)
            return session.post(lab.token_endpoint("mtls", tenant_id), data={
                "client_id": app.client_id, "grant_type": "client_credentials",
                "scope": f"{GRAPH}/.default", "token_type": "mtls_pop"})

    good = pop(other_app, fabrikam.tenant_id)
    assert good.ok, good.text
    claims = _claims(good.json()["access_token"])
    assert claims["iss"] == f"https://sts.mtlspop.localhost/{fabrikam.tenant_id}/"
    assert claims["tid"] == fabrikam.tenant_id
    wrong = pop(home_app, fabrikam.tenant_id)                       # tenant A's app at tenant B
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "unauthorized_client" and wrong.json()["error_codes"] == [700016]
    with requests.Session() as session:
        session.trust_env = False
        session.verify = lab.ca_bundle
        unknown = session.post(f"{lab.login_url}/00000000-0000-4000-8000-000000000000/oauth2/v2.0/token",
                               data={"client_id": home_app.client_id, "grant_type": "client_credentials",
                                     "scope": f"{GRAPH}/.default"})
    assert unknown.json()["error_codes"] == [90002]
    doc = requests.get(f"{lab.authority_url('fabrikam')}/v2.0/.well-known/openid-configuration",
                       verify=lab.ca_bundle).json()
    assert doc["issuer"] == fabrikam.issuer


def test_tenant_names_are_checked(fresh_authority):
    fresh_authority.add_tenant("contoso")
    for bad, code in [("contoso", "tenant_exists"), ("common", "invalid_tenant"), ("", "invalid_tenant"),
                      ("Has Space", "invalid_tenant"), (42, "invalid_tenant")]:
        with pytest.raises(ConfigurationError) as info:
            fresh_authority.add_tenant(bad)
        assert info.value.code == code
    with pytest.raises(ConfigurationError) as info:
        fresh_authority.tenant("nowhere")
    assert info.value.code == "tenant_not_found"


def test_cross_tenant_federated_credential(fresh_authority, pem_files):
    """An identity of tenant A reaches tenant B through a multi-tenant app registered in A, trusting the
    identity, provisioned in B; leg 2 at B's endpoint gets B's token. B's own app trusting A's issuer is
    refused (AADSTS700236), as Entra does (sources in authority/federation.py)."""
    lab = fresh_authority
    b = lab.add_tenant("resource-tenant")
    identity = lab.directory.register_app("identity-in-a")
    bridge = lab.directory.register_app("bridge-app", multi_tenant=True)
    fic = lab.directory.add_federated_credential(bridge, trusted=identity)
    assert fic.issuer == lab.issuer and fic.subject == identity.object_id
    in_b = b.provision(bridge)
    naive = b.register_app("app-in-b")
    b.add_federated_credential(naive, trusted=identity)

    def leg2(session, client_id, assertion, tenant=None, pop=True):
        data = {"client_id": client_id, "grant_type": "client_credentials", "scope": f"{GRAPH}/.default",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-pop",
                "client_assertion": assertion}
        if pop:
            data["token_type"] = "mtls_pop"
        return session.post(lab.token_endpoint("mtls", tenant), data=data)

    with requests.Session() as session:
        session.trust_env = False
        session.verify, session.cert = lab.ca_bundle, pem_files(identity.certificate)
        leg1 = session.post(lab.token_endpoint("mtls"), data={
            "client_id": identity.client_id, "grant_type": "client_credentials",
            "scope": "api://AzureADTokenExchange/.default", "token_type": "mtls_pop"}).json()
        answer = leg2(session, bridge.client_id, leg1["access_token"], b.tenant_id)
        assert answer.ok, answer.text
        claims = _claims(answer.json()["access_token"])
        assert claims["iss"] == f"https://sts.mtlspop.localhost/{b.tenant_id}/" and claims["tid"] == b.tenant_id   # Graph: v1
        assert claims["oid"] == in_b.object_id != bridge.object_id
        assert claims["cnf"]["x5t#S256"] == identity.certificate.x5t_s256
        # B's own registration trusting A's issuer: Entra refuses Entra tokens of another tenant
        assert leg2(session, naive.client_id, leg1["access_token"], b.tenant_id).json()["error_codes"] == [700236]
        # the same leg 2 at the home tenant: B's app is not there
        elsewhere = leg2(session, naive.client_id, leg1["access_token"], pop=False)
        assert elsewhere.json()["error_codes"] == [700016]
