"""The TLS layer: curl interop, client-certificate trust, TLS 1.2 floor, keep-alive, bad bytes."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from mtlspop_lab.certs import Certificate

CURL = "/usr/bin/curl"


def _eventually(predicate, within_s=5.0):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _curl(url, *args):
    cmd = [CURL, "-sS", "--max-time", "20", "-w", "\n%{http_code}", *args, url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    body, _, status = done.stdout.rpartition("\n")
    return done.returncode, int(status or 0), body, done.stderr


def test_curl_with_client_certificate_gets_mtls_pop(authority, app, pem_files):
    certfile, keyfile = pem_files(app.certificate)
    rc, status, body, err = _curl(
        authority.token_endpoint("mtls"), "--cacert", authority.ca_bundle, "--cert", certfile, "--key", keyfile,
        "-d", f"client_id={app.client_id}", "-d", "grant_type=client_credentials",
        "--data-urlencode", "scope=https://graph.microsoft.com/.default", "-d", "token_type=mtls_pop")
    assert rc == 0, err
    assert status == 200, body
    payload = json.loads(body)
    assert payload["token_type"] == "mtls_pop"
    claims = jwt.decode(payload["access_token"], options={"verify_signature": False})
    assert claims["cnf"]["x5t#S256"] == app.certificate.x5t_s256


def test_curl_without_client_certificate_is_refused_at_token_endpoint(authority, app):
    rc, status, body, err = _curl(
        authority.token_endpoint("mtls"), "--cacert", authority.ca_bundle,
        "-d", f"client_id={app.client_id}", "-d", "grant_type=client_credentials",
        "--data-urlencode", "scope=https://graph.microsoft.com/.default", "-d", "token_type=mtls_pop")
    assert rc == 0, err                       # TLS completed: the refusal is an OAuth answer
    assert status == 401
    payload = json.loads(body)
    assert payload["error"] == "invalid_client" and payload["error_codes"] == [7000216]
    assert payload["error_description"].startswith("AADSTS7000216:")
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert payload[key]


def test_unknown_certificate_fails_at_tls_then_trust_lets_oauth_refuse_it(authority, app, session_for, form):
    stranger = Certificate.create_self_signed("CN=attacker")
    session = session_for(stranger)
    with pytest.raises(requests.exceptions.SSLError):
        session.post(authority.token_endpoint("mtls"), data=form(app.client_id, token_type="mtls_pop"))
    # the server records the failed handshake just after sending its alert
    assert _eventually(lambda: any(e.method == "TLS" and e.listener == "mtls" for e in authority.trace))
    # trusting it on the live context affects the next handshakes: now the OAuth layer answers
    authority.trust_client_certificate(stranger)
    session = session_for(stranger)
    answer = session.post(authority.token_endpoint("mtls"), data=form(app.client_id, token_type="mtls_pop"))
    assert answer.status_code == 401
    assert answer.json()["error_codes"] == [700027]
    assert stranger.x5t_s256 in answer.json()["error_description"]


def test_registered_certificate_is_trusted_without_restart(authority, session_for, form):
    late = authority.directory.register_app("registered-after-start")
    rotated = Certificate.create_self_signed("CN=rotated")
    authority.directory.add_certificate(late, rotated)
    for cert in (late.certificate, rotated):
        answer = session_for(cert).post(authority.token_endpoint("mtls"), data=form(late.client_id, token_type="mtls_pop"))
        assert answer.status_code == 200, answer.text
        assert jwt.decode(answer.json()["access_token"], options={"verify_signature": False})["cnf"]["x5t#S256"] == cert.x5t_s256


def test_certificate_of_another_app_is_refused(authority, app, session_for, form):
    other = authority.directory.register_app("other-app")
    answer = session_for(other.certificate).post(authority.token_endpoint("mtls"),
                                                 data=form(app.client_id, token_type="mtls_pop"))
    assert answer.status_code == 401 and answer.json()["error_codes"] == [700027]


def test_login_listener_does_not_ask_for_a_certificate(authority, app, session_for, form):
    answer = session_for(app.certificate).post(authority.token_endpoint("login"),
                                               data=form(app.client_id, token_type="mtls_pop"))
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    assert "mTLS endpoint" in answer.json()["error_description"]


def test_tls_below_1_2_is_refused(authority):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(authority.ca_bundle)
    with pytest.warns(DeprecationWarning):
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    with pytest.warns(DeprecationWarning):
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    for url in (authority.login_url, authority.mtls_url, authority.resource_url):
        port = urlsplit(url).port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with pytest.raises(ssl.SSLError):
                ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    # and TLS 1.2 exactly is accepted
    ctx12 = ssl.create_default_context(cafile=authority.ca_bundle)
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", urlsplit(authority.login_url).port), timeout=5) as raw:
        with ctx12.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() == "TLSv1.2"


def test_keep_alive_reuses_the_connection(authority, app, session_for, form):
    session = session_for(app.certificate)
    for _ in range(3):
        assert session.post(authority.token_endpoint("mtls"), data=form(app.client_id, token_type="mtls_pop")).ok
    posts = [e for e in authority.trace if e.method == "POST"]
    assert [e.new_connection for e in posts] == [True, False, False]


def test_garbage_instead_of_tls_closes_and_service_continues(authority, app, session_for, form):
    for url in (authority.login_url, authority.mtls_url, authority.resource_url):
        with socket.create_connection(("127.0.0.1", urlsplit(url).port), timeout=5) as raw:
            raw.sendall(b"\x00\xffGARBAGE NOT TLS\r\n\r\n" * 20)
            raw.settimeout(5)
            try:
                data = raw.recv(4096)
            except ConnectionResetError:
                data = b""
            assert b"HTTP/1.1 200" not in data   # an alert or nothing, never an answer
    assert _eventually(lambda: any(e.method == "TLS" for e in authority.trace))
    answer = session_for(app.certificate).post(authority.token_endpoint("mtls"), data=form(app.client_id, token_type="mtls_pop"))
    assert answer.status_code == 200


def test_silent_client_does_not_block_others(authority, app, session_for, form):
    """A client that connects and never speaks TLS must not hold up accept()."""
    port = urlsplit(authority.mtls_url).port
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        answer = session_for(app.certificate).post(authority.token_endpoint("mtls"),
                                                   data=form(app.client_id, token_type="mtls_pop"), timeout=5)
        assert answer.status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_plain_http_to_tls_listener_gets_no_token(authority):
    port = urlsplit(authority.mtls_url).port
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)
