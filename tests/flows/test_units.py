"""Flows without a network: identities, live URL construction, CSR, retry pacing, cache rules, redaction."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mtlspop_lab.certs import Certificate
from mtlspop_lab.cloud import Cloud
from mtlspop_lab.errors import AuthorityError, CertificateError, ConfigurationError, ManagedIdentityError
from mtlspop_lab.flows import (CacheKey, FicLeg2Exchanger, ManagedIdentityId, MtlsPopTokenAcquirer, RetryPolicy,
                               TokenCache, TokenResult)
from mtlspop_lab.flows.confidential import ConfidentialClientFlow, scope_for
from mtlspop_lab.flows.diagnose import authority_error, imds_error
from mtlspop_lab.flows.managed_identity import CUID_OID, ImdsRoute, build_csr, imds_base
from mtlspop_lab.transport.retry import parse_retry_after
from mtlspop_lab.redact import contains_secret

GUID = "6325cd32-9911-41f3-819c-416cdf9104e7"
ARM = ("/subscriptions/c1686c51-b717-4fe0-9af3-24a20a41fb0c/resourcegroups/rg/providers/"
       "Microsoft.ManagedIdentity/userAssignedIdentities/msiv2uami")


@pytest.fixture(scope="module")
def cert():
    return Certificate.create_self_signed("CN=unit-test-app")


# -- ManagedIdentityId ---------------------------------------------------------------------
def test_identity_kinds_and_selectors():
    assert ManagedIdentityId.system_assigned().kind == "system_assigned"
    assert ManagedIdentityId.system_assigned().imds_v1_params() == {}
    by_client = ManagedIdentityId.user_assigned_client_id(GUID.upper())
    assert (by_client.kind, by_client.value) == ("client_id", GUID)
    by_res = ManagedIdentityId.user_assigned_resource_id(ARM)
    assert by_res.imds_v1_params() == {"msi_res_id": ARM}
    assert by_res.imds_v2_params() == {"mi_res_id": ARM}
    assert ManagedIdentityId.user_assigned_object_id(GUID).imds_v2_params() == {"object_id": GUID}
    assert by_client.to_msal() == {"ManagedIdentityIdType": "ClientId", "Id": GUID}


@pytest.mark.parametrize("bad", ["", "not-a-guid", "6325cd32-9911-41f3-819c", None])
def test_identity_rejects_bad_guids(bad):
    with pytest.raises(ConfigurationError) as info:
        ManagedIdentityId.user_assigned_client_id(bad)
    assert info.value.code == "invalid_managed_identity_id" and "client id" in info.value.message


def test_identity_rejects_non_arm_resource_id():
    with pytest.raises(ConfigurationError) as info:
        ManagedIdentityId.user_assigned_resource_id("/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/vm/a")
    assert "userAssignedIdentities" in info.value.fix


# -- live URL and request construction (cannot be exercised against Entra here) -------------
def test_confidential_client_live_urls(cert):
    flow = ConfidentialClientFlow(GUID, "contoso.onmicrosoft.com", cert)     # cloud=None -> public
    assert flow.mtls_authority == "https://mtlsauth.microsoft.com/contoso.onmicrosoft.com"
    assert flow.login_authority == "https://login.microsoftonline.com/contoso.onmicrosoft.com"
    regional = ConfidentialClientFlow(GUID, GUID, cert, region="westus3")
    assert regional.mtls_authority == f"https://westus3.mtlsauth.microsoft.com/{GUID}"
    gov = ConfidentialClientFlow(GUID, GUID, cert, cloud=Cloud.for_login_host("login.microsoftonline.us"))
    assert gov.mtls_authority == f"https://mtlsauth.microsoftonline.us/{GUID}"
    key = regional.cache_key("https://graph.microsoft.com", True)
    assert key.key_id == cert.x5t_s256 and key.scope == "https://graph.microsoft.com/.default"
    assert regional.cache_key("https://graph.microsoft.com", False).key_id == ""
    regional.close(), flow.close(), gov.close()


@pytest.mark.parametrize("tenant,code", [("common", "missing_tenanted_authority"),
                                         ("organizations", "missing_tenanted_authority")])
def test_untenanted_authority_refused(cert, tenant, code):
    with pytest.raises(ConfigurationError) as info:
        MtlsPopTokenAcquirer.for_confidential_client(GUID, tenant, cert)
    assert info.value.code == code


@pytest.mark.parametrize("host", ["login.usgovcloudapi.net", "login.chinacloudapi.cn", "sts.contoso.example"])
def test_unsupported_hosts_refused(cert, host):
    with pytest.raises(ConfigurationError) as info:
        MtlsPopTokenAcquirer.for_confidential_client(GUID, GUID, cert, cloud=Cloud.for_login_host(host))
    assert info.value.code == "mtls_pop_not_supported_for_environment"


def test_certificate_problems_are_clear(cert):
    with pytest.raises(CertificateError) as info:
        MtlsPopTokenAcquirer.for_confidential_client(GUID, GUID, cert.public_only())
    assert info.value.code == "cert_without_private_key"
    expired = Certificate.create_self_signed(
        "CN=old", days=1, not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3))
    with pytest.raises(CertificateError) as info:
        MtlsPopTokenAcquirer.for_confidential_client(GUID, GUID, expired)
    assert info.value.code == "certificate_expired"
    with pytest.raises(CertificateError) as info:
        MtlsPopTokenAcquirer.for_confidential_client(GUID, GUID, "path/to/cert.pfx")
    assert "load_pfx" in info.value.fix


def test_imds_base_live_and_override(monkeypatch):
    monkeypatch.delenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", raising=False)
    assert imds_base(Cloud.public()) == "http://169.254.169.254"
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://10.0.0.5:2377/")
    assert imds_base(Cloud.public()) == "http://10.0.0.5:2377"
    local = Cloud(name="x", login_url="https://127.0.0.1:1", imds_url="http://127.0.0.1:9", is_local=True)
    assert imds_base(local) == "http://127.0.0.1:9"        # the env var never redirects a local target


def test_imds_route_rewrites_only_metadata_urls():
    seen = []

    class Recorder:
        def get(self, url, **kw):
            seen.append(url)

        post = get

    route = ImdsRoute(Recorder(), "http://127.0.0.1:4242")
    route.get("http://169.254.169.254/metadata/identity/oauth2/token?resource=x")
    route.post("https://login.example/tenant/oauth2/v2.0/token")
    assert seen == ["http://127.0.0.1:4242/metadata/identity/oauth2/token?resource=x",
                    "https://login.example/tenant/oauth2/v2.0/token"]


def test_imds_v2_csr_shape():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = x509.load_der_x509_csr(build_csr(key, GUID, "tenant-guid", {"vmId": "vm-1", "vmssId": None}))
    assert csr.is_signature_valid
    assert csr.signature_algorithm_oid.dotted_string == "1.2.840.113549.1.1.10"          # RSASSA-PSS
    assert isinstance(csr.signature_algorithm_parameters, padding.PSS)
    names = {a.oid._name: a.value for a in csr.subject}
    assert names["commonName"] == GUID and names["domainComponent"] == "tenant-guid"
    attribute = csr.attributes.get_attribute_for_oid(CUID_OID)
    assert json.loads(attribute.value) == {"vmId": "vm-1"}          # null fields left out


def test_leg2_refuses_managed_identity():
    with pytest.raises(ConfigurationError) as info:
        FicLeg2Exchanger.create(ManagedIdentityId.system_assigned(), GUID)
    assert info.value.code == "managed_identity_cannot_do_leg2" and "WithClientAssertion" in info.value.cause
    with pytest.raises(ConfigurationError):
        FicLeg2Exchanger.for_managed_identity(ManagedIdentityId.system_assigned())


def test_scope_for():
    assert scope_for("https://graph.microsoft.com") == "https://graph.microsoft.com/.default"
    assert scope_for("api://x/") == "api://x/.default"
    assert scope_for("api://x/.default") == "api://x/.default"


# -- retry pacing ------------------------------------------------------------------------------
def test_backoff_grows_and_is_bounded():
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4, jitter=False)
    assert [policy.backoff_s(n) for n in range(1, 6)] == [0.5, 1, 2, 4, 4]
    jittered = RetryPolicy(base_delay_s=0.5, max_delay_s=4)
    assert all(0 <= jittered.backoff_s(3) <= 2 for _ in range(50))
    assert policy.delay_s(1, retry_after_s=3) == 3                  # Retry-After wins when longer


def test_parse_retry_after():
    assert parse_retry_after("7") == 7
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30


# -- cache rules --------------------------------------------------------------------------------
def _result(token_type="Bearer", cert=None, seconds=3600, token="t"):
    return TokenResult(access_token=token, token_type=token_type,
                       expires_on=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds),
                       binding_certificate=cert.public_only() if cert else None)


def test_cache_keys_cannot_cross_token_types(cert):
    with pytest.raises(ValueError):
        CacheKey("a", "c", "s", "Bearer", key_id=cert.x5t_s256)
    with pytest.raises(ValueError):
        CacheKey("a", "c", "s", "mtls_pop")
    cache = TokenCache()
    bearer_key = CacheKey("a", "c", "s", "Bearer")
    pop_key = CacheKey("a", "c", "s", "mtls_pop", cert.x5t_s256)
    with pytest.raises(ValueError):
        cache.put(bearer_key, _result("mtls_pop", cert))
    other = Certificate.create_self_signed("CN=other")
    with pytest.raises(ValueError):
        cache.put(pop_key, _result("mtls_pop", other))


def test_cache_freshness_follows_msal_margin(cert):
    cache = TokenCache()
    assert cache.state(_result(seconds=3600)) == "fresh"
    assert cache.state(_result(seconds=200)) == "aging"
    assert cache.state(_result(seconds=-1)) == "expired"


def test_aging_entry_served_when_refresh_fails():
    cache = TokenCache()
    key = CacheKey("a", "c", "s", "Bearer")
    cache.put(key, _result(seconds=120, token="old"))

    def failing():
        raise AuthorityError("down")

    served = cache.acquire(key, failing)
    assert served.access_token == "old" and served.source == "cache"
    cache.put(key, _result(seconds=-5, token="dead"))
    with pytest.raises(AuthorityError):
        cache.acquire(key, failing)


def test_single_flight_shares_one_fetch_and_its_error():
    cache = TokenCache()
    key = CacheKey("a", "c", "s", "Bearer")
    calls = []
    gate = threading.Event()

    def fetch():
        calls.append(1)
        gate.wait(2)
        return _result(token="shared")

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.acquire(key, fetch))) for _ in range(20)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1 and {r.access_token for r in results} == {"shared"}
    assert sorted(r.source for r in results).count("identity_provider") == 1

    other = CacheKey("a", "c", "other", "Bearer")
    errors = []

    def broken():
        calls.append(2)
        time.sleep(0.2)
        raise AuthorityError("refused", code="x")

    def run():
        try:
            cache.acquire(other, broken)
        except AuthorityError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls.count(2) == 1 and len(errors) == 10


# -- errors and redaction --------------------------------------------------------------------
def test_token_result_never_shows_the_token(cert):
    token = "eyJhbGciOiJSUzI1NiJ9." + "eyJzdWIiOiJ4In0" + "." + "s" * 300
    result = _result("mtls_pop", cert, token=token)
    for text in (repr(result), str(result), result._repr_html_(), json.dumps(result.as_dict())):
        assert token not in text and not contains_secret(text)
    assert result.binding_certificate_info() == {"x5c": [cert.x5c], "thumbprint_sha256": cert.x5t_s256}
    assert result.authorization_header == f"mtls_pop {token}"
    with pytest.raises(ConfigurationError) as info:
        _result("Bearer").require_binding()
    assert info.value.code == "pop_not_requested"


@pytest.mark.parametrize("number,code,words", [
    (90002, "tenant_not_found", "tenant"), (700016, "application_not_found", "client id"),
    (700027, "certificate_not_registered", "certificate"), (70021, "no_matching_federated_credential", "federated"),
    (500181, "tls_certificate_mismatch", "leg 1"), (392196, "resource_does_not_support_bound_tokens", "Bearer"),
    (700024, "assertion_expired", "fresh"), (501051, "insufficient_permissions", "role")])
def test_aadsts_mapping(number, code, words):
    payload = {"error": "invalid_client", "error_codes": [number],
               "error_description": f"AADSTS{number}: something. Trace ID: x"}
    err = authority_error(payload, status=401, endpoint="https://x/t/oauth2/v2.0/token")
    assert (err.code, err.aadsts, err.status) == (code, number, 401)
    assert words.lower() in (err.cause + err.fix).lower()


def test_imds_not_assigned_mapping():
    err = imds_error({"error": "invalid_request", "error_description": "Identity not found"}, status=400,
                     identity="user-assigned client_id=x")
    assert isinstance(err, ManagedIdentityError) and err.code == "identity_not_assigned"
    assert "az identity show" in err.fix
