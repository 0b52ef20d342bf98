"""Property-based tests (hypothesis) for every parser a learner's input or a server's answer reaches.

The property is always the same shape: for *any* input, the parser either
returns a value that satisfies its contract, or raises the documented
``LabError`` subclass (with a cause and a fix); never another exception, never
a hang. The inspector's own properties (arbitrary text/bytes/segments into
decode_token) live in tests/inspect; these cover the rest.
"""

from __future__ import annotations

import base64
import json
import re
import string
import uuid
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mtlspop_lab.certs import Certificate
from mtlspop_lab.cloud import Cloud, check_region, check_tenant
from mtlspop_lab.errors import AuthorityError, CertificateError, ConfigurationError, LabError, ManagedIdentityError
from mtlspop_lab.errors import TokenFormatError
from mtlspop_lab.flows import ManagedIdentityId
from mtlspop_lab.flows.diagnose import authority_error, imds_error
from mtlspop_lab.transport.retry import RetryPolicy, parse_retry_after
from mtlspop_lab.inspector import decode_token
from mtlspop_lab.redact import contains_secret, redact_text, redact_token

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
anything = json_values | st.binary(max_size=40) | st.just(object())


def _useful(error: LabError) -> None:
    assert error.message and error.cause and error.fix


# -- managed identity ids ------------------------------------------------------------------------
@FAST
@given(st.one_of(st.text(max_size=60), anything))
@example("{6325CD32-9911-41F3-819C-416CDF9104E7}")
@example(" 6325cd32-9911-41f3-819c-416cdf9104e7\n")
@example("6325cd32991141f3819c416cdf9104e7")
def test_guid_ids_parse_or_refuse(value):
    for build, kind in ((ManagedIdentityId.user_assigned_client_id, "client_id"),
                        (ManagedIdentityId.user_assigned_object_id, "object_id")):
        try:
            mi = build(value)
        except ConfigurationError as error:
            _useful(error)
            assert error.code == "invalid_managed_identity_id"
            continue
        assert mi.kind == kind and mi.value == str(uuid.UUID(str(value).strip()))   # canonical form
        assert mi.imds_v1_params() == {kind: mi.value}


@FAST
@given(st.uuids())
def test_every_guid_is_accepted_in_canonical_form(guid):
    for text in (str(guid), str(guid).upper(), "{" + str(guid) + "}", guid.hex):
        assert ManagedIdentityId.user_assigned_client_id(text).value == str(guid)


arm_part = st.text(alphabet=st.characters(blacklist_characters="/", blacklist_categories=("Cs",)),
                   min_size=1, max_size=12)


@FAST
@given(st.one_of(st.text(max_size=120), anything,
                 st.builds(lambda sub, rg, name: f"/subscriptions/{sub}/resourcegroups/{rg}/providers/"
                           f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
                           st.uuids().map(str) | arm_part, arm_part, arm_part)))
def test_resource_ids_parse_or_refuse(value):
    try:
        mi = ManagedIdentityId.user_assigned_resource_id(value)
    except ConfigurationError as error:
        _useful(error)
        return
    parts = mi.value.split("/")
    assert parts[1].lower() == "subscriptions" and len(parts) == 9 and all(parts[1:])
    assert mi.imds_v1_params() == {"msi_res_id": mi.value} and mi.imds_v2_params() == {"mi_res_id": mi.value}


@FAST
@given(st.text(max_size=20), st.one_of(st.none(), st.text(max_size=20)))
def test_identity_kind_and_value_are_checked(kind, value):
    try:
        mi = ManagedIdentityId(kind, value)
    except ConfigurationError as error:
        _useful(error)
        return
    assert mi.kind in ("system_assigned", "client_id", "resource_id", "object_id")
    assert not (mi.kind == "system_assigned" and value is not None)


# -- tenants, regions, login hosts ----------------------------------------------------------------
@FAST
@given(st.one_of(st.text(max_size=80), anything))
@example("common")
@example("../../x")
@example("a/b")
@example("tenant?x=1")
def test_tenants_are_safe_in_urls_or_refused(tenant):
    cloud = Cloud.public()
    try:
        url = cloud.mtls_token_endpoint(tenant)
    except ConfigurationError as error:
        _useful(error)
        return
    parts = urlsplit(url)
    # the tenant cannot change the host, add a query or walk the path
    assert parts.netloc == "mtlsauth.microsoft.com" and not parts.query and not parts.fragment
    assert parts.path == f"/{tenant.strip()}/oauth2/v2.0/token"
    assert ".." not in parts.path.split("/") and tenant.strip().lower() not in ("common", "organizations")
    assert check_tenant(tenant) == tenant.strip()


@FAST
@given(st.one_of(st.text(max_size=50), anything))
@example("westus3")
@example("WestUS3 ")
@example("west us")
@example("westus3.evil.com")
def test_regions_are_host_labels_or_refused(region):
    try:
        name = check_region(region)
    except ConfigurationError as error:
        _useful(error)
        assert error.code == "invalid_region"
        return
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,40}", name)
    url = Cloud.public().mtls_base_url(name)
    assert urlsplit(url).netloc == f"{name}.mtlsauth.microsoft.com"


@FAST
@given(st.text(max_size=60) | st.text(alphabet=string.ascii_letters + string.digits + ".-:/_[]", max_size=60))
@example("login.microsoftonline.us")
@example("[")
@example("login.a\nb")
@example("https://login.partner.microsoftonline.cn/path")
@example("login.usgovcloudapi.net")
def test_login_hosts_map_to_mtls_hosts_or_refuse(host):
    try:
        cloud = Cloud.for_login_host(host)
        url = cloud.mtls_base_url()
    except ConfigurationError as error:
        _useful(error)
        return
    netloc = urlsplit(url).netloc
    assert url.startswith("https://") and netloc.startswith("mtlsauth.")
    assert netloc == "mtlsauth.microsoft.com" or netloc == "mtlsauth." + cloud.login_host.lower()[len("login."):]


# -- server answers -------------------------------------------------------------------------------
@FAST
@given(st.dictionaries(st.sampled_from(["error", "error_description", "error_codes", "correlation_id",
                                        "trace_id", "suberror"]) | st.text(max_size=8), json_values, max_size=6),
       st.one_of(st.none(), st.integers(100, 599)))
@example({"error_codes": ["x"]}, 400)
@example({"error_description": "AADSTS99999999999: big"}, 400)
@example({"error": None, "error_codes": [None]}, None)
def test_any_error_answer_becomes_an_authority_error(payload, status):
    error = authority_error(payload, status=status, endpoint="https://login.example/t")
    assert isinstance(error, AuthorityError)
    _useful(error)
    assert error.status == status
    assert error.aadsts is None or isinstance(error.aadsts, int)
    imds = imds_error(payload, status=status, identity="system-assigned")
    assert isinstance(imds, ManagedIdentityError)
    _useful(imds)


@FAST
@given(st.one_of(st.none(), st.text(max_size=40), st.integers().map(str), st.floats().map(str),
                 st.datetimes(timezones=st.just(__import__("datetime").timezone.utc)).map(
                     lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT"))))
@example("-5")
@example("1e400")
@example("nan")
@example("Fri, 31 Dec 9999 23:59:59 GMT")
def test_retry_after_is_a_non_negative_delay_or_nothing(value):
    seconds = parse_retry_after(value)
    assert seconds is None or (isinstance(seconds, float) and seconds >= 0)
    if seconds is not None and seconds == seconds:                   # not NaN
        delay = RetryPolicy(jitter=False).delay_s(1, seconds)
        assert delay >= seconds


# -- tokens ----------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=8)


@FAST
@given(json_objects, json_objects, st.binary(max_size=300))
def test_decode_token_returns_exactly_what_was_encoded(header, claims, signature):
    header = dict(header, alg="RS256")
    token = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(signature)}"
    try:
        decoded = decode_token(token)
    except TokenFormatError as error:
        _useful(error)
        assert token not in str(error) and token not in repr(error)
        return
    assert decoded.header == header and decoded.claims == claims
    shown = repr(decoded) + decoded.to_text() + decoded._repr_html_()
    assert token not in shown


_KEY = "PRIVATE" + " KEY"          # built here: no committed line looks like a key block
_PEM_PIECES = st.sampled_from([f"-----BEGIN {_KEY}-----", f"-----END {_KEY}-----", f"{_KEY}-----",
                                f"-----BEGIN EC {_KEY}-----\nMHcCAQEEI", f"\n-----END RSA {_KEY}-----"])


# The explicit examples are the texts that once failed (a Hypothesis example database may still hold
# them): each runs on every run, so a stale database can only replay what already passes here.
@FAST
@given(st.text(max_size=40) | _PEM_PIECES, st.text(max_size=40) | _PEM_PIECES, json_objects)
@example(before="", after="PRIVATE KEY-----", claims={})
@example(before=f"-----BEGIN {_KEY}-----", after=f"-----END {_KEY}-----", claims={})
@example(before="eyJ", after=".eyJ.", claims={})
def test_redaction_removes_any_embedded_token(before, after, claims):
    token = "eyJ" + _b64(b'"alg":"RS256"}')[:20] + "." + _b64(json.dumps(claims or {"a": 1}).encode()) \
            + "." + _b64(b"s" * 64)
    assert contains_secret(token) and contains_secret(f"{before} {token} {after}")
    text = redact_text(f"{before} {token} {after}")
    assert token not in text and not contains_secret(text)
    assert token not in redact_token(token) and not contains_secret(redact_token(token))
    assert redact_text(text) == text                      # redaction is idempotent


# -- certificates from arbitrary bytes --------------------------------------------------------------
@pytest.fixture(scope="module")
def material():
    cert = Certificate.create_self_signed("CN=property")
    return cert, cert.der, cert.to_pfx("pw"), cert.pem.encode()


def _certificate_or_error(load, data):
    try:
        result = load(data)
    except CertificateError as error:
        _useful(error)
        assert "PRIVATE KEY-----" not in str(error)
        return None
    assert isinstance(result, Certificate)
    return result


@SLOW
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_a_certificate_error(data):
    for load in (Certificate.from_der, Certificate.from_pem, lambda d: Certificate.from_pfx(d, "pw"),
                 Certificate.from_pfx):
        _certificate_or_error(load, data)


@SLOW
@given(st.data())
def test_damaged_certificate_files_load_or_fail_cleanly(material, data):
    """One flipped byte anywhere in a real DER, PEM or PFX: a CertificateError, or a certificate."""
    cert, der, pfx, pem = material
    for blob, load in ((der, Certificate.from_der), (pem, Certificate.from_pem),
                       (pfx, lambda d: Certificate.from_pfx(d, "pw"))):
        index = data.draw(st.integers(0, len(blob) - 1))
        flip = data.draw(st.integers(1, 255))
        damaged = blob[:index] + bytes([blob[index] ^ flip]) + blob[index + 1:]
        assume(damaged != blob)
        loaded = _certificate_or_error(load, damaged)
        if loaded is not None and loaded.has_private_key:
            loaded.check_usable()                       # a key that loaded matches its certificate


@SLOW
@given(st.binary(max_size=64) | st.text(max_size=30))
def test_any_wrong_pfx_password_is_a_certificate_error(password):
    assume(password not in ("pw", b"pw"))
    assume(not (isinstance(password, str) and "\x00" in password))   # see test_exposed_bugs (panic)
    assume(not (isinstance(password, bytes) and b"\x00" in password))
    with pytest.raises(CertificateError) as info:
        Certificate.from_pfx(_PFX, password)
    _useful(info.value)
    if isinstance(password, str) and len(password) > 3:
        assert password not in str(info.value)


_PFX = Certificate.create_self_signed("CN=pfx-property").to_pfx("pw")


# -- the authority itself, fed garbage ----------------------------------------------------------------
form_keys = st.sampled_from(["client_id", "grant_type", "scope", "token_type", "client_assertion",
                             "client_assertion_type", "resource", "api-version", "cred-api-version",
                             "object_id", "msi_res_id", "mi_res_id", "csr", "x"])
form_values = st.text(max_size=40) | st.sampled_from(["", "mtls_pop", "client_credentials",
                                                      "https://graph.microsoft.com/.default",
                                                      "urn:ietf:params:oauth:client-assertion-type:jwt-pop"])


@pytest.fixture(scope="module")
def garbage_session(lab):
    import requests
    session = requests.Session()
    session.trust_env = False
    session.verify = lab.ca_bundle
    yield session
    session.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["token:login", "token:mtls", "imds_v1", "getplatformmetadata", "issuecredential",
                        "resource"]),
       st.dictionaries(form_keys, form_values, max_size=6), st.one_of(json_values, st.text(max_size=30)))
def test_the_authority_answers_garbage_with_a_4xx_error_object(lab, garbage_session, target, form, body):
    """Whatever a client sends, the authority answers an error object (4xx), never a 5xx or a token."""
    imds = {"Metadata": "true"}
    if target.startswith("token:"):
        answer = garbage_session.post(lab.token_endpoint(target[6:]), data=form, timeout=10)
    elif target == "imds_v1":
        answer = garbage_session.get(f"{lab.imds_url}/metadata/identity/oauth2/token", params=form, headers=imds,
                                     timeout=10)
    elif target == "getplatformmetadata":
        answer = garbage_session.get(f"{lab.imds_url}/metadata/identity/getplatformmetadata", params=form,
                                     headers=imds, timeout=10)
    elif target == "issuecredential":
        answer = garbage_session.post(f"{lab.imds_url}/metadata/identity/issuecredential",
                                      params={"cred-api-version": "2.0"}, json=body, headers=imds, timeout=10)
    else:
        value = json.dumps(body)[:200].encode("ascii", "replace").decode("ascii")
        answer = garbage_session.get(f"{lab.resource_url}/x", headers={"Authorization": f"mtls_pop {value}"},
                                     timeout=10)
    if answer.status_code == 200:
        # only the IMDS v1 endpoint may accept a garbage *form*: it needs nothing but a known resource
        assert target == "imds_v1" and form.get("resource") and "access_token" in answer.json()
        return
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:200])
    payload = answer.json()
    assert isinstance(payload, dict) and payload.get("error") and "access_token" not in payload
