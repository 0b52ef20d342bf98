"""The contract surface: URLs, discovery, knobs (delay, faults, lifetime), trace, lifecycle."""

from __future__ import annotations

import os
import socket
import threading
import time
from urllib.parse import urlsplit

import jwt
import pandas as pd
import pytest
import requests

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.errors import ConfigurationError
from mtlspop_lab.redact import contains_secret

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def _pop(session, authority, app, listener="mtls", **kwargs):
    return session.post(authority.token_endpoint(listener), data={
        "client_id": app.client_id, "grant_type": "client_credentials", "scope": GRAPH_SCOPE,
        "token_type": "mtls_pop"}, **kwargs)


def test_urls_cloud_and_discovery_on_every_https_listener(authority, session_for):
    https = [authority.login_url, authority.mtls_url, authority.resource_url, *authority.regional_urls.values()]
    # every HTTPS host shares one TLS port (routed by SNI); IMDS has its own plain-HTTP port
    assert {urlsplit(u).port for u in https} == {authority.tls_port}
    assert urlsplit(authority.imds_url).port != authority.tls_port
    assert urlsplit(authority.imds_url).hostname == "127.0.0.1"
    assert urlsplit(authority.login_url).hostname == "login.mtlspop.localhost"
    assert urlsplit(authority.mtls_url).hostname == "mtlsauth.mtlspop.localhost"
    assert {r: urlsplit(u).hostname for r, u in authority.regional_urls.items()} == \
        {r: f"{r}.mtlsauth.mtlspop.localhost" for r in authority.regions}
    cloud = authority.cloud
    assert cloud.is_local and cloud.ca_bundle == authority.ca_bundle and cloud.regions == authority.regions
    # the flows derive the mTLS hosts by MSAL's rule (login. -> [region.]mtlsauth., port kept)
    assert cloud.mtls_base_url() == authority.mtls_url
    assert {r: cloud.mtls_base_url(r) for r in authority.regions} == authority.regional_urls
    assert authority.issuer == f"{authority.login_url}/{authority.tenant_id}/v2.0"
    assert authority.authority_url() == f"{authority.login_url}/{authority.tenant_id}"
    session = session_for()
    for base in [authority.login_url, authority.mtls_url, *authority.regional_urls.values()]:
        doc = session.get(f"{base}/{authority.tenant_id}/v2.0/.well-known/openid-configuration").json()
        # asked on the login host, the token endpoint is the login host's; on an mTLS host, its own
        assert doc["token_endpoint"] == f"{base}/{authority.tenant_id}/oauth2/v2.0/token"
        assert doc["issuer"] == authority.issuer
        assert doc["jwks_uri"] == f"{authority.login_url}/{authority.tenant_id}/discovery/v2.0/keys"
        assert "mtls_endpoint_aliases" not in doc and "tls_client_certificate_bound_access_tokens" not in doc
        assert session.get(doc["jwks_uri"]).json() == authority.jwks
    assert session.get(f"{authority.login_url}/other-tenant/v2.0/.well-known/openid-configuration").status_code == 400


def test_directory_defaults(authority):
    d = authority.directory
    assert len(d.user_assigned) == 3 and d.system_assigned.is_system_assigned
    ids = {mi.client_id for mi in d.managed_identities} | {mi.object_id for mi in d.managed_identities}
    assert len(ids) == 8
    assert not d.resources["https://legacy.contoso.example"].accepts_bound_tokens
    assert {"https://graph.microsoft.com", "https://vault.azure.net", "https://storage.azure.com",
            "api://mtlspop-lab-api", "api://AzureADTokenExchange"} <= set(d.resources)
    app = d.register_app("defaults-app")
    assert d.app(app.client_id) is app and app.tenant_id == authority.tenant_id and app.certificate.has_private_key
    with pytest.raises(ConfigurationError):
        d.app("no-such-app")
    with pytest.raises(ConfigurationError):
        d.add_federated_credential(app, trusted=42)


def test_delay_is_per_listener_and_server_side(authority, app, session_for):
    authority.set_delay(30, listener="mtls:westus3")
    session = session_for(app.certificate)
    assert _pop(session, authority, app, listener="mtls:westus3").ok
    assert _pop(session, authority, app, listener="mtls").ok
    posts = [e for e in authority.trace if e.method == "POST"]
    regional, global_ = posts
    assert regional.listener == "mtls:westus3" and regional.injected_delay_ms == 30
    assert regional.elapsed_ms >= 30             # the server slept before answering
    assert global_.injected_delay_ms == 0
    authority.set_delay(25, listener="mtls", handshake=True)
    fresh = session_for(app.certificate)
    assert _pop(fresh, authority, app).ok and _pop(fresh, authority, app).ok
    first, second = [e for e in authority.trace if e.method == "POST"][2:]
    assert first.new_connection and first.injected_delay_ms == 50 and first.elapsed_ms >= 50
    assert not second.new_connection and second.injected_delay_ms == 25
    authority.set_delay(5, listener="regional")
    assert {n: d for n, d in authority.delays().items() if n.startswith("mtls")} == \
        {"mtls": 25.0, "mtls:westus3": 5.0, "mtls:eastus2": 5.0}
    with pytest.raises(ConfigurationError):
        authority.set_delay(5, listener="nowhere")
    with pytest.raises(ConfigurationError):
        authority.set_delay(-1)


def test_status_fault_with_retry_after_for_next_n_token_requests(authority, app, session_for):
    authority.inject_fault("status", count=2, listener="mtls", status=503, retry_after=1)
    session = session_for(app.certificate)
    # discovery is not eligible: msal must get to the token request
    assert session.get(f"{authority.authority_url(listener='mtls')}/v2.0/.well-known/openid-configuration").ok
    for _ in range(2):
        answer = _pop(session, authority, app)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert answer.json()["error_description"].startswith("AADSTS")
    assert _pop(session, authority, app).status_code == 200
    assert [e.fault for e in authority.trace if e.method == "POST"] == ["status 503", "status 503", None]


def test_fault_only_on_its_listener(authority, app, session_for):
    authority.inject_fault("status", count=1, listener="regional", status=429)
    session = session_for(app.certificate)
    assert _pop(session, authority, app, listener="mtls").status_code == 200
    assert _pop(session, authority, app, listener="mtls:eastus2").status_code == 429
    assert authority.pending_faults == []


def test_imds_status_fault_is_imds_shaped(authority):
    authority.inject_fault("status", count=1, listener="imds", status=500)
    session = requests.Session()
    session.trust_env = False
    with session:
        answer = session.get(f"{authority.imds_url}/metadata/identity/oauth2/token?api-version=2018-02-01"
                             "&resource=https://graph.microsoft.com", headers={"Metadata": "true"})
    assert answer.status_code == 500 and "IMDS" in answer.headers["Server"] and "error" in answer.json()


def test_reset_and_malformed_json_faults(authority, app, session_for):
    session = session_for(app.certificate)
    authority.inject_fault("reset", count=1, listener="mtls")
    with pytest.raises(requests.exceptions.ConnectionError):
        _pop(session, authority, app)
    authority.inject_fault("malformed_json", count=1, listener="mtls")
    answer = _pop(session, authority, app)
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
    assert _pop(session, authority, app).json()["token_type"] == "mtls_pop"


def test_bearer_downgrade_fault(authority, app, session_for):
    authority.inject_fault("bearer_downgrade", count=1, listener="mtls")
    session = session_for(app.certificate)
    answer = _pop(session, authority, app).json()
    assert answer["token_type"] == "Bearer"
    assert "cnf" not in jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert _pop(session, authority, app).json()["token_type"] == "mtls_pop"
    assert [e.fault for e in authority.trace if e.method == "POST"] == ["bearer_downgrade", None]


def test_slow_fault_exceeds_client_timeout(authority, app, session_for):
    authority.inject_fault("slow", count=1, listener="mtls", delay_ms=1500)
    session = session_for(app.certificate)
    with pytest.raises(requests.exceptions.Timeout):
        _pop(session, authority, app, timeout=0.3)
    assert _pop(session_for(app.certificate), authority, app, timeout=10).status_code == 200


def test_clear_trace_forgets_exchanges_already_under_way(authority, app, session_for):
    """A slow answer to an earlier experiment must not land in the next experiment's record."""
    authority.inject_fault("slow", count=1, listener="mtls", delay_ms=600)
    answers = []
    slow = threading.Thread(target=lambda: answers.append(_pop(session_for(app.certificate), authority, app,
                                                              timeout=10).status_code))
    slow.start()
    deadline = time.monotonic() + 5
    while authority.pending_faults and time.monotonic() < deadline:
        time.sleep(0.01)     # once the slow request has taken its fault, it is under way
    authority.clear_trace()
    slow.join(10)
    assert answers == [200]
    assert authority.count_requests("mtls") == 0
    assert _pop(session_for(app.certificate), authority, app, timeout=10).status_code == 200
    assert authority.count_requests("mtls", client_id=app.client_id) == 1


def test_unknown_fault_kind_and_bad_count(authority):
    with pytest.raises(ConfigurationError):
        authority.inject_fault("explode")
    with pytest.raises(ConfigurationError):
        authority.inject_fault("status", count=0)
    with pytest.raises(ConfigurationError):
        authority.set_imds_mode("v3")


def test_token_lifetime_knob(authority, app, session_for):
    authority.set_token_lifetime(120)
    answer = _pop(session_for(app.certificate), authority, app).json()
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120 and answer["expires_in"] == 119
    with pytest.raises(ConfigurationError):
        authority.set_token_lifetime(0)


def test_trace_is_redacted_everywhere(authority, app, session_for):
    session = session_for(app.certificate)
    token = _pop(session, authority, app).json()["access_token"]
    session.get(f"{authority.resource_url}/me", headers={"Authorization": f"mtls_pop {token}"})
    entries = authority.trace
    assert len(entries) == 2 and authority.count_requests("mtls") == 1 and authority.count_requests("resource") == 1
    frame = authority.trace_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2
    assert {"listener", "method", "path", "status", "elapsed_ms", "injected_delay_ms", "new_connection",
            "client_cert_x5t", "grant_type", "client_id", "token_type", "error", "fault", "timestamp"} <= set(frame.columns)
    for text in (repr(entries), frame.to_csv(), frame.to_string(), frame.to_html()):
        assert token not in text and token.split(".")[2] not in text
        assert not contains_secret(text)
    assert "…[jwt" in entries[0].response_body and "…[jwt" in entries[1].request_body
    authority.clear_trace()
    assert authority.trace == [] and authority.trace_frame().empty


def test_close_stops_listeners_and_joins_every_thread(pem_files):
    before = set(threading.enumerate())
    lab = LocalAuthority(regions=("westus3",))
    app = lab.directory.register_app("close-me")
    session = requests.Session()
    session.trust_env = False
    session.verify, session.cert = lab.ca_bundle, pem_files(app.certificate)
    assert _pop(session, lab, app).ok                       # leaves a kept-alive connection open
    idle = socket.create_connection(("127.0.0.1", urlsplit(lab.login_url).port))   # and a silent one
    ports = [urlsplit(u).port for u in (lab.login_url, lab.mtls_url, lab.imds_url, lab.resource_url,
                                        *lab.regional_urls.values())]
    bundle = lab.ca_bundle
    spawned = set(threading.enumerate()) - before
    assert spawned
    lab.close()
    lab.close()                                              # idempotent
    assert not [t for t in spawned if t.is_alive()]
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("mtlspop-")]
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert not os.path.exists(bundle)
    idle.close()
    session.close()


def test_fresh_authority_fixture_is_independent(fresh_authority, authority):
    assert fresh_authority.tenant_id != authority.tenant_id
    assert fresh_authority.jwks["keys"][0]["kid"] != authority.jwks["keys"][0]["kid"]
    assert fresh_authority.directory.apps == []


def test_shared_fixture_left_dirty_here(authority, app, session_for):
    """Turns every knob and leaves it; the next test checks the shared fixture reset them."""
    authority.set_delay(7, "all")
    authority.inject_fault("status", count=5, listener="login")
    authority.set_imds_mode("v1_only")
    authority.set_token_lifetime(99)
    assert _pop(session_for(app.certificate), authority, app).ok
    assert authority.trace


def test_shared_fixture_was_reset_before_this_test(authority):
    assert authority.trace == []
    assert set(authority.delays().values()) == {0.0}
    assert authority.pending_faults == [] and authority.imds_mode == "v2"
    assert authority.token_lifetime_s is None          # Entra's lifetimes
