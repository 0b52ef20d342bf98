"""Malformed requests get Entra-style errors (or a closed connection) and the authority keeps serving."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlencode, urlsplit

import pytest


@pytest.fixture
def good_request(authority, app, session_for, form):
    """Asserts that a normal PoP request still succeeds (run after each bad one)."""
    def check():
        answer = session_for(app.certificate).post(authority.token_endpoint("mtls"),
                                                   data=form(app.client_id, token_type="mtls_pop"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["token_type"] == "mtls_pop"
    return check


def _assert_entra_error(answer, status, error, code):
    assert answer.status_code == status, answer.text
    payload = answer.json()
    assert payload["error"] == error
    assert payload["error_codes"] == [code]
    assert payload["error_description"].startswith(f"AADSTS{code}:")
    assert payload["trace_id"] and payload["correlation_id"] and payload["timestamp"]
    return payload


@pytest.mark.parametrize("missing", ["grant_type", "client_id", "scope"])
def test_missing_parameter(authority, app, session_for, form, good_request, missing):
    data = form(app.client_id, token_type="mtls_pop")
    del data[missing]
    answer = session_for(app.certificate).post(authority.token_endpoint("mtls"), data=data)
    payload = _assert_entra_error(answer, 400, "invalid_request", 900144)
    assert f"'{missing}'" in payload["error_description"]
    good_request()


def test_duplicated_parameter(authority, app, session_for, form, good_request):
    body = urlencode(form(app.client_id, token_type="mtls_pop")) + "&client_id=" + app.client_id
    answer = session_for(app.certificate).post(authority.token_endpoint("mtls"), data=body,
                                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    payload = _assert_entra_error(answer, 400, "invalid_request", 9002313)
    assert "'client_id' is duplicated" in payload["error_description"]
    good_request()


def test_unknown_grant_type(authority, app, session_for, form, good_request):
    answer = session_for(app.certificate).post(authority.token_endpoint("mtls"),
                                               data=form(app.client_id, grant_type="password"))
    _assert_entra_error(answer, 400, "unsupported_grant_type", 70003)
    good_request()


def test_unknown_parameters_are_ignored(authority, app, session_for, form):
    answer = session_for(app.certificate).post(
        authority.token_endpoint("mtls"),
        data=form(app.client_id, token_type="mtls_pop", key_id="abc", client_info="2", x_custom="y"))
    assert answer.status_code == 200 and answer.json()["token_type"] == "mtls_pop"


def test_body_over_one_megabyte(authority, app, session_for, good_request):
    big = b"client_id=" + b"a" * (1024 * 1024 + 1)
    answer = session_for(app.certificate).post(authority.token_endpoint("mtls"), data=big,
                                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413
    assert answer.json()["error"] == "invalid_request"
    assert answer.headers.get("Connection") == "close"
    good_request()


def test_non_utf8_body(authority, app, session_for, good_request):
    answer = session_for(app.certificate).post(
        authority.token_endpoint("mtls"), data=b"client_id=\xff\xfe&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    payload = _assert_entra_error(answer, 400, "invalid_request", 9002313)
    assert "UTF-8" in payload["error_description"]
    good_request()


def test_percent_escape_that_is_not_utf8(authority, app, session_for, good_request):
    answer = session_for(app.certificate).post(
        authority.token_endpoint("mtls"), data="client_id=%FF%FE&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    _assert_entra_error(answer, 400, "invalid_request", 9002313)
    good_request()


@pytest.mark.parametrize("scope, code", [("https://graph.microsoft.com/User.Read", 1002012),
                                         ("https://unknown.example/.default", 500011)])
def test_bad_scope(authority, app, session_for, form, scope, code):
    answer = session_for(app.certificate).post(authority.token_endpoint("mtls"),
                                               data=form(app.client_id, scope=scope))
    assert answer.status_code == 400 and answer.json()["error_codes"] == [code]


def test_unknown_tenant_and_unknown_app(authority, app, session_for, form):
    session = session_for(app.certificate)
    answer = session.post(f"{authority.mtls_url}/not-my-tenant/oauth2/v2.0/token", data=form(app.client_id))
    assert answer.status_code == 400 and answer.json()["error_codes"] == [90002]
    answer = session.post(authority.token_endpoint("mtls"), data=form("11111111-2222-3333-4444-555555555555"))
    assert answer.status_code == 400 and answer.json()["error"] == "unauthorized_client"
    assert answer.json()["error_codes"] == [700016]


def test_get_on_token_endpoint_and_unknown_path(authority, app, session_for):
    session = session_for(app.certificate)
    assert session.get(authority.token_endpoint("mtls")).status_code == 405
    assert session.get(f"{authority.mtls_url}/nothing/here").status_code == 404


def test_unknown_token_type_and_client_secret(authority, app, session_for, form):
    session = session_for(app.certificate)
    answer = session.post(authority.token_endpoint("mtls"), data=form(app.client_id, token_type="pop"))
    assert answer.status_code == 400 and "token_type" in answer.json()["error_description"]
    answer = session.post(authority.token_endpoint("login"), data=form(app.client_id, client_secret="s3cret"))
    assert answer.status_code == 401 and answer.json()["error_codes"] == [7000215]


def test_garbage_http_inside_tls(authority, good_request):
    ctx = ssl.create_default_context(cafile=authority.ca_bundle)
    with socket.create_connection(("127.0.0.1", urlsplit(authority.mtls_url).port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"\x01\x02 NOT HTTP AT ALL\r\n\r\n")
            data = tls.recv(4096)
    assert data.startswith(b"HTTP/1.1 400")
    good_request()


def test_bad_content_length_and_chunked(authority, good_request):
    ctx = ssl.create_default_context(cafile=authority.ca_bundle)
    port = urlsplit(authority.login_url).port
    for head in (b"Content-Length: nope\r\n", b"Transfer-Encoding: chunked\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"POST /x/oauth2/v2.0/token HTTP/1.1\r\nHost: a\r\n" + head + b"\r\n0\r\n\r\n")
                data = tls.recv(4096)
        assert data.split(b" ")[1] in (b"400", b"411")
    good_request()
