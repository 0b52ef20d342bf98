"""No input makes a service answer 500 or raise: every refusal is a well-formed error.

The services are called directly with the Request objects the listener would
build (the HTTP layer is covered by the other tests), so hundreds of cases
run in a second.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtlspop_lab.authority.server import Request

FIELDS = ["client_id", "grant_type", "scope", "token_type", "client_assertion", "client_assertion_type",
          "client_secret", "key_id"]
VALUES = st.one_of(st.text(max_size=40), st.sampled_from([
    "client_credentials", "mtls_pop", "bearer", "https://graph.microsoft.com/.default",
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    "urn:ietf:params:oauth:client-assertion-type:jwt-pop", "eyJhbGciOiJub25lIn0.e30.", "a.b.c"]))
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _is_entra_error(response):
    payload = json.loads(response.body)
    return (response.status in (400, 401, 405) and payload["error"]
            and payload["error_description"].startswith("AADSTS") and payload["error_codes"])


@FUZZ
@given(pairs=st.lists(st.tuples(st.sampled_from(FIELDS), VALUES), max_size=8), with_cert=st.booleans())
def test_token_endpoint_answers_any_form_with_a_token_or_an_entra_error(authority, pairs, with_cert):
    cert = authority.ca.certificate.der if with_cert else None
    request = Request("mtls", "POST", f"/{authority.tenant_id}/oauth2/v2.0/token", {},
                      urlencode(pairs).encode(), cert, True)
    response = authority.token_service.handle(request)
    assert response.status == 200 or _is_entra_error(response)


@FUZZ
@given(body=st.binary(max_size=300))
def test_token_endpoint_answers_any_bytes(authority, body):
    request = Request("login", "POST", f"/{authority.tenant_id}/oauth2/v2.0/token", {}, body, None, True)
    assert _is_entra_error(authority.token_service.handle(request))


@FUZZ
@given(header=st.text(max_size=80), path=st.text(max_size=30))
def test_resource_api_answers_any_authorization_header(authority, header, path):
    headers = {"authorization": header} if header else {}
    request = Request("resource", "GET", "/" + path, headers, b"", None, True)
    response = authority.resource_api.handle(request)
    assert response.status == 401 and "WWW-Authenticate" in response.headers


@FUZZ
@given(claims=st.dictionaries(st.sampled_from(["aud", "exp", "nbf", "iss", "cnf", "sub"]),
                              st.one_of(st.integers(), st.text(max_size=10), st.none(),
                                        st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2)),
                              max_size=6))
def test_resource_api_survives_any_claims_signed_by_the_authority(authority, claims):
    token = authority.signer.sign_payload(json.dumps(claims).encode())
    request = Request("resource", "GET", "/", {"authorization": f"mtls_pop {token}"}, b"", None, True)
    response = authority.resource_api.handle(request)
    assert response.status == 401
    assert token not in response.body.decode()


@FUZZ
@given(query=st.lists(st.tuples(st.sampled_from(["api-version", "resource", "client_id", "object_id",
                                                 "msi_res_id", "mi_res_id", "cred-api-version"]),
                                st.text(max_size=30)), max_size=5),
       path=st.sampled_from(["/metadata/identity/oauth2/token", "/metadata/identity/getplatformmetadata",
                             "/metadata/identity/issuecredential", "/metadata/instance/compute", "/x"]),
       method=st.sampled_from(["GET", "POST"]), body=st.binary(max_size=200))
def test_imds_answers_anything_with_json_and_its_server_header(authority, query, path, method, body):
    request = Request("imds", method, f"{path}?{urlencode(query)}", {"metadata": "true"}, body, None, True)
    response = authority.imds.handle(request)
    assert response.headers["Server"].startswith("IMDS/")
    payload = json.loads(response.body)
    assert response.status in (200, 400, 404, 405)
    if response.status != 200:
        assert payload["error"] and payload["error_description"]
    elif "access_token" in payload:
        assert jwt.get_unverified_header(payload["access_token"])["alg"] == "RS256"
