"""The authority's trace keeps no credential: sent over real sockets, read back from every trace view.

Issue 16 (3): a short client secret was stored whole, and a secret in a URL
query was not redacted. Every credential field, in form bodies, JSON bodies,
URL queries and the Authorization header, must reach the trace redacted,
whatever its length and whether or not it looks like a JWT.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

import pytest

from mtlspop_lab.authority.trace import MAX_BODY_CHARS
from mtlspop_lab.redact import contains_secret

GRAPH = "https://graph.microsoft.com"
FIELDS = ["client_secret", "client_assertion", "assertion", "password", "code", "refresh_token",
          "attestation_token", "access_token", "id_token", "device_code", "code_verifier"]


def _secret(n: int) -> str:
    """``n`` characters starting with '~', which no token, thumbprint or id holds: no chance match."""
    return ("~" + uuid.uuid4().hex + uuid.uuid4().hex)[:n]


def _trace_text(authority) -> str:
    entries = authority.trace
    assert entries, "nothing was traced"
    texts = [repr(e) for e in entries] + [json.dumps(asdict(e)) for e in entries]
    texts.append(authority.trace_frame().to_string())
    return "\n".join(texts)


def _assert_absent(authority, secrets, *, opaque=True):
    """None of ``secrets`` in any view of the trace; of an opaque secret, not even its first characters."""
    text = _trace_text(authority)
    for secret in secrets:
        assert secret not in text, f"{secret!r} is in the trace"
        assert not opaque or secret[:5] not in text, f"the start of {secret!r} is in the trace"
    assert not contains_secret(text)


@pytest.mark.parametrize("length", [3, 8, 12, 40])
def test_a_client_secret_of_any_length_is_not_kept(authority, app, session_for, form, length):
    secret = _secret(length)
    answer = session_for().post(authority.token_endpoint("login"), data=form(app.client_id, client_secret=secret))
    assert answer.status_code == 401 and answer.json()["error_codes"] == [7000215]
    _assert_absent(authority, [secret])


@pytest.mark.parametrize("field", FIELDS)
def test_credentials_in_a_url_query_are_not_kept(authority, app, session_for, form, field):
    secret = _secret(10)
    session_for().post(f"{authority.token_endpoint('login')}?{field}={secret}&x=1",
                       data=form(app.client_id, client_secret="x"))
    session_for().get(f"{authority.resource_url}/v1.0/me?{field}={secret}")
    _assert_absent(authority, [secret])
    assert all("x=1" in e.path for e in authority.trace if "/token" in e.path)


def test_every_credential_field_of_a_form_body_is_redacted(authority, app, session_for, form):
    secrets = {field: _secret(10 + i) for i, field in enumerate(FIELDS)}
    stray = authority.issue_token(GRAPH)                   # a JWT under a field that is not a credential
    answer = session_for().post(authority.token_endpoint("login"),
                                data=form(app.client_id, note="café", state=stray, **secrets))
    assert answer.status_code >= 400
    _assert_absent(authority, list(secrets.values()) + [stray.split(".")[2]])
    body = authority.trace[-1].request_body
    assert app.client_id in body and "client_credentials" in body and "café" in body   # the rest stays readable


def test_an_exchange_without_a_body_or_client_records_none(authority, session_for):
    session_for().get(f"{authority.login_url}/{authority.tenant_id}/v2.0/.well-known/openid-configuration")
    entry = authority.trace[-1]
    assert entry.status == 200 and entry.request_body is None and entry.client_id is None


def test_a_long_client_id_is_clipped_in_the_trace(authority, session_for, form):
    session_for().post(authority.token_endpoint("login"), data=form("c" * 500, client_secret="x"))
    entry = authority.trace[-1]
    assert entry.client_id.startswith("ccc") and len(entry.client_id) <= 120


def test_an_opaque_client_assertion_is_redacted(authority, app, session_for, form):
    opaque = _secret(48)
    answer = session_for().post(authority.token_endpoint("login"), data=form(
        app.client_id, client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=opaque))
    assert answer.status_code == 400
    _assert_absent(authority, [opaque])


@pytest.mark.parametrize("scheme", ["Bearer", "mtls_pop", "Basic"])
def test_an_opaque_token_in_the_authorization_header_is_redacted(authority, session_for, scheme):
    for secret in (_secret(6), _secret(40)):
        answer = session_for().get(f"{authority.resource_url}/v1.0/me",
                                   headers={"Authorization": f"{scheme} {secret}"})
        assert answer.status_code == 401
        _assert_absent(authority, [secret])


def test_an_issued_token_and_its_assertion_are_redacted(authority, app, session_for):
    session = session_for(app.certificate)
    answer = session.post(authority.token_endpoint("mtls"), data={
        "client_id": app.client_id, "grant_type": "client_credentials", "scope": f"{GRAPH}/.default",
        "token_type": "mtls_pop"})
    token = answer.json()["access_token"]
    assert session.get(f"{authority.resource_url}/v1.0/me", headers={"Authorization": f"mtls_pop {token}"}).ok
    _assert_absent(authority, [token, token.split(".")[2]], opaque=False)   # a JWT keeps its header's start


def test_json_bodies_are_redacted_at_any_depth(authority, session_for):
    secrets = [_secret(7), _secret(9), _secret(33)]
    body = {"csr": "x", "attestation_token": secrets[0],
            "nested": {"client_secret": secrets[1], "list": [{"password": secrets[2]}]}}
    session_for().post(f"{authority.imds_url}/metadata/identity/issuecredential?cred-api-version=2.0",
                       headers={"Metadata": "true"}, json=body)
    _assert_absent(authority, secrets)
    assert "<CSR, 1 base64 chars>" in authority.trace[-1].request_body        # the CSR: its size, not its text


def test_a_long_body_is_kept_to_exactly_the_cap(authority, app, session_for, form):
    """The stored body is cut at MAX_BODY_CHARS, not one character more or less (a long, harmless field)."""
    data = form(app.client_id, client_secret="x")
    data["note"] = "a" * (MAX_BODY_CHARS * 3)          # unknown parameters are ignored, as Entra does
    session_for().post(authority.token_endpoint("login"), data=data)
    stored = [e.request_body for e in authority.trace if e.method == "POST" and e.request_body]
    assert stored and len(stored[-1]) == MAX_BODY_CHARS


def _traced_json_body(authority, session_for, body) -> object:
    """Send ``body`` as JSON to IMDS's issuecredential and read back the trace's copy of it, parsed."""
    session_for().post(f"{authority.imds_url}/metadata/identity/issuecredential?cred-api-version=2.0",
                       headers={"Metadata": "true"}, json=body)
    return json.loads(authority.trace[-1].request_body)


def _nested(levels: int, make):
    value = "leaf"
    for _ in range(levels):
        value = make(value)
    return value


def test_a_deep_json_body_keeps_eight_levels_then_says_what_it_dropped(authority, session_for):
    """Objects and arrays nested past MAX_DEPTH (8) become a placeholder naming their size."""
    kept = _traced_json_body(authority, session_for, {"o": _nested(12, lambda v: {"k": v}),
                                                      "a": _nested(12, lambda v: [v, 1])})
    obj, arr = kept["o"], kept["a"]
    for _ in range(7):                       # the body is level 0; its members' values start at level 1
        assert isinstance(obj, dict) and isinstance(arr, list) and arr[1] == 1
        obj, arr = obj["k"], arr[0]
    assert obj == "<object, 1 members>"
    assert arr == "<array, 2 items>"


def test_a_wide_json_body_keeps_sixty_four_members_and_cuts_long_names(authority, session_for):
    body = {f"m{i:03d}": i for i in range(100)}
    body["n" * 300] = "long name"
    body_list = list(range(100))
    kept = _traced_json_body(authority, session_for, {"wide": body, "list": body_list})
    assert list(kept["wide"]) == [f"m{i:03d}" for i in range(64)]
    assert kept["list"] == list(range(64))
    long_name = _traced_json_body(authority, session_for, {"n" * 300: "long name"})
    assert list(long_name) == ["n" * 200]


def test_numbers_booleans_and_null_keep_their_json_types(authority, session_for):
    body = {"n": 3, "f": 1.5, "t": True, "no": False, "z": None, "s": "3", "list": [1, None, True]}
    assert _traced_json_body(authority, session_for, body) == body
