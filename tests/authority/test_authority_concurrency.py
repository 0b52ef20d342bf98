"""Parallel clients, EC certificates, and loopback-only binding."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import jwt

from mtlspop_lab.certs import Certificate

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def test_parallel_clients_on_every_token_listener(authority, app, session_for):
    listeners = ["mtls", *[f"mtls:{r}" for r in authority.regions]]
    sessions = [session_for(app.certificate) for _ in range(6)]

    def work(i):
        session, listener = sessions[i % len(sessions)], listeners[i % len(listeners)]
        answer = session.post(authority.token_endpoint(listener), data={
            "client_id": app.client_id, "grant_type": "client_credentials", "scope": GRAPH_SCOPE,
            "token_type": "mtls_pop"})
        return answer.status_code, answer.json().get("access_token")

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(work, range(36)))
    assert all(status == 200 for status, _ in results)
    utis = {jwt.decode(token, options={"verify_signature": False})["uti"] for _, token in results}
    assert len(utis) == 36
    assert authority.count_requests(path_contains="/oauth2/v2.0/token") == 36


def test_ec_certificate_app_tls_auth_and_es256_assertion(authority, session_for):
    ec_cert = Certificate.create_self_signed("CN=ec-app", key_type="ec")
    app = authority.directory.register_app("ec-app", certificate=ec_cert)
    answer = session_for(ec_cert).post(authority.token_endpoint("mtls"), data={
        "client_id": app.client_id, "grant_type": "client_credentials", "scope": GRAPH_SCOPE,
        "token_type": "mtls_pop"})
    assert answer.status_code == 200, answer.text
    claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
    assert claims["cnf"]["x5t#S256"] == ec_cert.x5t_s256
    now = int(time.time())
    assertion = jwt.encode({"aud": authority.token_endpoint("login"), "iss": app.client_id, "sub": app.client_id,
                            "exp": now + 300, "nbf": now}, ec_cert.private_key, algorithm="ES256",
                           headers={"x5t#S256": ec_cert.x5t_s256})
    answer = session_for().post(authority.token_endpoint("login"), data={
        "client_id": app.client_id, "grant_type": "client_credentials", "scope": GRAPH_SCOPE,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})
    assert answer.status_code == 200 and answer.json()["token_type"] == "Bearer"
    # an RS256 assertion claiming the EC certificate cannot verify
    rs = Certificate.create_self_signed("CN=rsa-impostor")
    forged = jwt.encode({"aud": authority.token_endpoint("login"), "iss": app.client_id, "sub": app.client_id,
                         "exp": now + 300}, rs.private_key, algorithm="RS256", headers={"x5t#S256": ec_cert.x5t_s256})
    answer = session_for().post(authority.token_endpoint("login"), data={
        "client_id": app.client_id, "grant_type": "client_credentials", "scope": GRAPH_SCOPE,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": forged})
    assert answer.status_code == 401 and answer.json()["error_codes"] == [700027]


def test_every_listener_binds_loopback_only(authority):
    addresses = authority.listener_addresses()
    assert set(addresses) == set(authority.listener_names)
    assert all(host == "127.0.0.1" for host, _port in addresses.values())
