"""Facts about what Entra ID, IMDS and Microsoft resources send, each with its source, pinned on the lab.

Each test names where the fact comes from (a URL or a repository path) in a comment. Where the lab
cannot be Entra (its own domain, its own error wording for codes Microsoft does not document for the
case), the test says what the lab does instead.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import time

import jwt
import pytest
import requests
from cryptography import x509

import mtlspop_lab as lab
from mtlspop_lab.flows.cache import CacheKey, TokenCache
from mtlspop_lab.flows.result import TokenResult, refresh_on_from

GRAPH = "https://graph.microsoft.com"
LAB_API = "api://mtlspop-lab-api"
COMMON_V1 = {"aud", "iss", "iat", "nbf", "exp", "aio", "appid", "appidacr", "idp", "idtyp", "oid", "rh", "sub",
             "tid", "uti", "ver"}
COMMON_V2 = COMMON_V1 - {"appid", "appidacr"} | {"azp", "azpacr"}


def _claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def _post(authority, session, app, scope, listener="mtls", **extra):
    return session.post(authority.token_endpoint(listener), data={
        "client_id": app.client_id, "grant_type": "client_credentials", "scope": scope, **extra})


@pytest.fixture
def pop_session(session_for, app):
    return session_for(app.certificate)


# -- token versions ---------------------------------------------------------------------------------
def test_graph_gets_a_v1_token(authority, app, pop_session):
    # https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference
    # (v1.0: iss https://sts.windows.net/{tid}/, appid + appidacr; Graph accepts v1.0 tokens)
    body = _post(authority, pop_session, app, f"{GRAPH}/.default", token_type="mtls_pop").json()
    claims = _claims(body["access_token"])
    assert COMMON_V1 <= set(claims) and not {"azp", "azpacr"} & set(claims)
    assert claims["ver"] == "1.0" and claims["aud"] == GRAPH
    assert claims["iss"] == claims["idp"] == f"https://sts.mtlspop.localhost/{authority.tenant_id}/"
    assert claims["appid"] == app.client_id and claims["appidacr"] == "2"        # 2 = certificate
    assert claims["idtyp"] == "app" and claims["oid"] == claims["sub"] == app.object_id


def test_a_v2_api_gets_a_v2_token_with_its_app_id_as_audience(authority, app, pop_session):
    # https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens (v2.0 tokens: aud is the API's
    # client id; iss https://login.microsoftonline.com/{tid}/v2.0), access-token-claims-reference (azp, azpacr)
    api = authority.directory.find_resource(LAB_API)
    body = _post(authority, pop_session, app, f"{LAB_API}/.default", token_type="mtls_pop").json()
    claims = _claims(body["access_token"])
    assert COMMON_V2 <= set(claims) and not {"appid", "appidacr"} & set(claims)
    assert claims["ver"] == "2.0" and claims["iss"] == authority.issuer
    assert claims["aud"] == api.app_id and len(api.app_id) == 36
    assert claims["azp"] == app.client_id and claims["azpacr"] == "2"


def test_a_registered_api_declares_its_version(authority, app, pop_session):
    # https://learn.microsoft.com/en-us/entra/identity-platform/reference-app-manifest (accessTokenAcceptedVersion)
    v1 = authority.directory.add_resource("api://facts-v1-api", token_version=1)
    v2 = authority.directory.add_resource("api://facts-v2-api")
    assert v1.audience == "api://facts-v1-api" and v2.audience == v2.app_id
    for resource, ver in ((v1, "1.0"), (v2, "2.0")):
        claims = _claims(_post(authority, pop_session, app, f"{resource.uri}/.default").json()["access_token"])
        assert claims["ver"] == ver and claims["aud"] == resource.audience
    with pytest.raises(lab.ConfigurationError):
        authority.directory.add_resource("api://facts-v3", token_version=3)


def test_bound_tokens_carry_cnf_and_xms_tbflags(authority, app, pop_session):
    # RFC 8705 section 3.1 (cnf x5t#S256); AzureAD/microsoft-authentication-library-for-java mTLS PoP manual
    # testing guide ("xms_tbflags": 2 next to cnf on a bound token)
    bound = _claims(_post(authority, pop_session, app, f"{GRAPH}/.default", token_type="mtls_pop").json()["access_token"])
    assert bound["cnf"] == {"x5t#S256": app.certificate.x5t_s256} and bound["xms_tbflags"] == 2
    bearer = _claims(_post(authority, pop_session, app, f"{GRAPH}/.default").json()["access_token"])
    assert "cnf" not in bearer and "xms_tbflags" not in bearer


def test_roles_appear_when_granted(authority, pop_session, app):
    # access-token-claims-reference ("roles": app permissions granted to the application)
    before = _claims(_post(authority, pop_session, app, f"{GRAPH}/.default").json()["access_token"])
    assert "roles" not in before
    authority.directory.add_app_role(GRAPH, "Application.Read.All")
    authority.directory.assign_app_role(app, GRAPH, "Application.Read.All")
    after = _claims(_post(authority, pop_session, app, f"{GRAPH}/.default").json()["access_token"])
    assert after["roles"] == ["Application.Read.All"]


def test_managed_identity_token_from_imds(authority):
    # https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token
    # (response fields, strings); recorded IMDS traffic in Azure SDK repositories (expires_in "86399");
    # access-token-claims-reference (xms_mirid, with lower-case "resourcegroups" in real tokens)
    with requests.Session() as s:
        s.trust_env = False
        answer = s.get(f"{authority.imds_url}/metadata/identity/oauth2/token",
                       params={"api-version": "2018-02-01", "resource": GRAPH}, headers={"Metadata": "true"})
    body = answer.json()
    assert set(body) >= {"access_token", "client_id", "expires_in", "expires_on", "ext_expires_in", "not_before",
                         "resource", "token_type"}
    assert body["expires_in"] == body["ext_expires_in"] == "86399" and body["token_type"] == "Bearer"
    claims = _claims(body["access_token"])
    assert claims["ver"] == "1.0" and claims["appid"] == authority.directory.system_assigned.client_id
    assert "/resourcegroups/" in claims["xms_mirid"] and "/resourceGroups/" not in claims["xms_mirid"]


# -- signing keys -------------------------------------------------------------------------------------
def test_header_kid_and_x5t_are_the_signing_certificates_sha1(authority, app, pop_session):
    # https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens ("Validate the signature":
    # kid and x5t name the key; x5c carries the certificate); keys at
    # https://login.microsoftonline.com/common/discovery/v2.0/keys (kty, use, kid, x5t, n, e, x5c, issuer)
    token = _post(authority, pop_session, app, f"{GRAPH}/.default").json()["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "JWT" and header["alg"] == "RS256" and header["kid"] == header["x5t"]
    key = authority.jwks["keys"][0]
    assert set(key) == {"kty", "use", "kid", "x5t", "n", "e", "x5c", "issuer"}
    der = base64.b64decode(key["x5c"][0])
    thumb = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()
    assert key["kid"] == key["x5t"] == header["kid"] == thumb
    assert key["issuer"] == f"{authority.login_url}/{{tenantid}}/v2.0"
    cert = x509.load_der_x509_certificate(der)
    ca = x509.load_pem_x509_certificate(open(authority.ca_bundle, "rb").read())
    assert cert.issuer == ca.subject                      # issued by the lab's CA
    jwks_doc = requests.get(f"{authority.authority_url()}/discovery/v2.0/keys", verify=authority.ca_bundle).json()
    assert jwks_doc == authority.jwks


def test_verify_token_knows_both_issuers_and_says_which_version(authority, app, pop_session):
    # access-tokens ("v1.0 and v2.0 tokens": issuer forms differ; a validator must expect the right one)
    v1 = _post(authority, pop_session, app, f"{GRAPH}/.default").json()["access_token"]
    v2 = _post(authority, pop_session, app, f"{LAB_API}/.default").json()["access_token"]
    assert lab.verify_token(v1, authority=authority, audience=GRAPH).verified
    api = authority.directory.find_resource(LAB_API)
    assert lab.verify_token(v2, authority=authority, audience=api.app_id).verified
    v1_row = lab.explain_claims(v1).set_index("claim").loc["ver", "meaning"]
    v2_row = lab.explain_claims(v2).set_index("claim").loc["ver", "meaning"]
    assert v1_row.startswith("This is a v1.0 token") and v2_row.startswith("This is a v2.0 token")
    table = lab.explain_claims(v1).set_index("claim")
    for claim in ("idp", "aio", "rh", "xms_tbflags", "appidacr") if "xms_tbflags" in _claims(v1) else ("idp", "aio"):
        assert "Not a registered" not in table.loc[claim, "meaning"]


# -- lifetimes ------------------------------------------------------------------------------------------
def test_lifetimes_and_refresh_in(fresh_authority, session_for):
    # access-tokens ("Token lifetime": a random value between 60 and 90 minutes, 75 on average);
    # how-to-use-vm-token and MSAL.NET ManagedIdentity tests (24 h tokens, expires_in 86399);
    # AzureAD/microsoft-authentication-library-for-python msal/token_cache.py (refresh_in, else half the
    # lifetime of tokens living 2 h or more)
    authority = fresh_authority
    app = authority.directory.register_app("facts-lifetimes")
    session = session_for(app.certificate, lab=authority)
    lifetimes = set()
    for _ in range(6):
        body = _post(authority, session, app, f"{GRAPH}/.default").json()
        assert 3599 <= body["expires_in"] <= 5399 and "refresh_in" not in body
        lifetimes.add(body["expires_in"])
    assert len(lifetimes) > 1                                  # randomised, not a fixed 3,600 s
    authority.set_token_lifetime(30)                           # the notebooks' knob still fixes it
    assert _post(authority, session, app, f"{GRAPH}/.default").json()["expires_in"] == 29
    authority.set_token_lifetime(3 * 3600)                     # 2 h or more: the answer says refresh_in
    long_lived = _post(authority, session, app, f"{GRAPH}/.default").json()
    assert long_lived["expires_in"] == 10799 and long_lived["refresh_in"] == 10799 // 2
    authority.set_token_lifetime(None)
    with lab.MtlsPopTokenAcquirer.for_managed_identity(lab.ManagedIdentityId.system_assigned(),
                                                       cloud=authority.cloud) as mi:
        result = mi.acquire_token(GRAPH, use_pop=True)
    remaining = result.expires_on.timestamp() - time.time()
    assert 86000 < remaining < 86400
    assert 43000 < result.refresh_on.timestamp() - time.time() < 43200    # refresh_in 43199 honoured


def test_cache_refreshes_at_refresh_in_and_serves_the_old_token_if_refresh_fails():
    # AzureAD/microsoft-authentication-library-for-python msal/application.py (refresh_on reached: refresh;
    # when the refresh fails, the still valid cached token is returned)
    now = time.time()
    old = TokenResult(access_token="t1", token_type="Bearer",
                      expires_on=_dt.datetime.fromtimestamp(now + 80000, _dt.timezone.utc),
                      refresh_on=refresh_on_from({"expires_in": 86399, "refresh_in": 1}, now - 5))
    cache, key = TokenCache(), CacheKey("a", "c", "s", "Bearer")
    cache.put(key, old)
    assert cache.state(old) == "aging"
    calls = []

    def failing():
        calls.append(1)
        raise lab.AuthorityError("down", code="service_unavailable")
    assert cache.acquire(key, failing).access_token == "t1" and calls == [1]

    def fresh():
        return TokenResult(access_token="t2", token_type="Bearer",
                           expires_on=_dt.datetime.fromtimestamp(time.time() + 86399, _dt.timezone.utc),
                           refresh_on=refresh_on_from({"expires_in": 86399}))
    assert cache.acquire(key, fresh).access_token == "t2"           # refreshed early
    assert cache.state(cache.get(key)) == "fresh"                    # half of 24 h ahead: not aging


# -- discovery ------------------------------------------------------------------------------------------
def test_discovery_document_fields(authority, session_for):
    # https://login.microsoftonline.com/{tid}/v2.0/.well-known/openid-configuration and
    # https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc (fields; no RFC 8705 aliases:
    # MSAL derives the mTLS host by rule, AzureAD/microsoft-authentication-library-for-python PR #938 msal/mtls.py)
    doc = session_for().get(f"{authority.authority_url()}/v2.0/.well-known/openid-configuration").json()
    for field in ("token_endpoint", "token_endpoint_auth_methods_supported", "jwks_uri", "issuer",
                  "authorization_endpoint", "device_authorization_endpoint", "end_session_endpoint",
                  "tenant_region_scope", "cloud_instance_name", "msgraph_host", "rbac_url"):
        assert field in doc, field
    assert doc["token_endpoint_auth_methods_supported"] == ["client_secret_post", "private_key_jwt",
                                                            "client_secret_basic"]
    assert "mtls_endpoint_aliases" not in doc


# -- errors ----------------------------------------------------------------------------------------------
def test_error_body_shape(authority, session_for, form):
    # https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes (error, error_description
    # "AADSTSnnnn: ..." with "\r\nTrace ID: ...\r\nCorrelation ID: ...\r\nTimestamp: ...", error_codes,
    # timestamp, trace_id, correlation_id, error_uri https://login.microsoftonline.com/error?code=N)
    answer = session_for().post(authority.token_endpoint("mtls"), data=form("11111111-2222-3333-4444-555555555555"),
                                headers={"client-request-id": "8c4c1f58-0000-4000-8000-000000000001"})
    body = answer.json()
    assert set(body) == {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id",
                         "error_uri"}
    code = body["error_codes"][0]
    assert body["error_uri"] == f"https://login.mtlspop.localhost:{authority.tls_port}/error?code={code}"
    head, trace, correlation, stamp = body["error_description"].split("\r\n")
    assert head.startswith(f"AADSTS{code}: ") and trace == f"Trace ID: {body['trace_id']}"
    assert correlation == "Correlation ID: 8c4c1f58-0000-4000-8000-000000000001" == \
        f"Correlation ID: {body['correlation_id']}"
    assert stamp.startswith("Timestamp: ")


def test_no_credential_is_7000216_with_its_wording(authority, app, session_for, form):
    # reference-error-codes: AADSTS7000216 "'client_assertion', 'client_secret' or 'request' is required for
    # the 'client_credentials' grant type."
    body = session_for().post(authority.token_endpoint("login"), data=form(app.client_id)).json()
    assert body["error"] == "invalid_client" and body["error_codes"] == [7000216]
    assert body["error_description"].startswith("AADSTS7000216: 'client_assertion', 'client_secret' or 'request' "
                                                "is required for the 'client_credentials' grant type.")


def test_imds_errors(authority):
    # how-to-use-vm-token, "Error handling": a request without Metadata: true gets 400 bad_request_102
    # "Required metadata header not specified"; token-service errors come through in Entra's shape
    with requests.Session() as s:
        s.trust_env = False
        missing = s.get(f"{authority.imds_url}/metadata/identity/oauth2/token",
                        params={"api-version": "2018-02-01", "resource": GRAPH})
        stranger = s.get(f"{authority.imds_url}/metadata/identity/oauth2/token",
                         params={"api-version": "2018-02-01", "resource": GRAPH,
                                 "client_id": "00000000-0000-4000-8000-00000000beef"}, headers={"Metadata": "true"})
        unknown = s.get(f"{authority.imds_url}/metadata/identity/oauth2/token",
                        params={"api-version": "2018-02-01", "resource": "https://nothing.example"},
                        headers={"Metadata": "true"})
    assert missing.status_code == 400
    assert missing.json() == {"error": "bad_request_102", "error_description": "Required metadata header not specified"}
    # MSAL.NET ManagedIdentity tests (mock IMDS answer for an identity the VM does not have)
    assert stranger.status_code == 400
    assert stranger.json() == {"error": "invalid_request", "error_description": "Identity not found"}
    assert unknown.status_code == 400 and unknown.json()["error_codes"] == [500011]
    assert unknown.json()["error"] == "invalid_resource" and "\r\nTrace ID: " in unknown.json()["error_description"]


# -- the protected API -------------------------------------------------------------------------------------
def test_protected_api_answers_like_a_microsoft_resource(authority, app, session_for):
    # https://learn.microsoft.com/en-us/azure/key-vault/general/authentication-requests-and-responses
    # (401 challenge Bearer authorization="https://login.windows.net/{tid}", resource="..."),
    # https://learn.microsoft.com/en-us/graph/errors (body {"error": {"code": ..., "message": ...}})
    answer = session_for(app.certificate).get(f"{authority.resource_url}/v1.0/me")
    assert answer.status_code == 401
    challenge = answer.headers["WWW-Authenticate"]
    assert f'authorization="{authority.login_url}/{authority.tenant_id}"' in challenge
    assert 'resource="api://mtlspop-lab-api"' in challenge
    assert answer.json()["error"]["code"] == "Unauthorized" and answer.json()["error"]["message"]
    token = _post(authority, session_for(app.certificate), app, f"{GRAPH}/.default",
                  token_type="mtls_pop").json()["access_token"]
    other = authority.directory.register_app("facts-other").certificate
    codes = {}
    for name, cert in (("none", None), ("other", other)):
        refused = session_for(cert).get(f"{authority.resource_url}/v1.0/me",
                                        headers={"Authorization": f"mtls_pop {token}"})
        codes[name] = refused.json()["error"]["code"]
    assert codes == {"none": "MissingClientCertificate", "other": "ClientCertificateMismatch"}
