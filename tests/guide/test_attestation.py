"""Key attestation for IMDS v2: the lab attestation service, IMDS's policy, and the MI client's stand-in."""

from __future__ import annotations

import base64
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

import mtlspop_lab as lab
from mtlspop_lab.authority.attestation import AttestationService, key_thumbprint
from mtlspop_lab.cloud import Cloud
from mtlspop_lab.errors import ConfigurationError, ManagedIdentityError
from mtlspop_lab.flows import ManagedIdentityId, MtlsPopTokenAcquirer
from mtlspop_lab.flows.attestation import attest_software_key
from mtlspop_lab.flows.managed_identity import build_csr
from mtlspop_lab.inspector import check_binding
from mtlspop_lab.transport import RetryPolicy, Transport

GRAPH = "https://graph.microsoft.com"
V2 = {"cred-api-version": "2.0"}


def _session():
    session = requests.Session()
    session.trust_env = False
    return session


def _metadata(authority):
    with _session() as s:
        return s.get(f"{authority.imds_url}/metadata/identity/getplatformmetadata", params=V2,
                     headers={"Metadata": "true"}, timeout=5).json()


def _issue(authority, key, **extra):
    """POST issuecredential as any client would: a real CSR over ``key`` plus ``extra`` body fields."""
    meta = _metadata(authority)
    csr = base64.b64encode(build_csr(key, meta["clientId"], meta["tenantId"], meta["cuId"])).decode()
    with _session() as s:
        return s.post(f"{authority.imds_url}/metadata/identity/issuecredential", params=V2,
                      headers={"Metadata": "true"}, json={"csr": csr, **extra}, timeout=10)


def _attest(authority, key) -> str:
    with Transport(ca_bundle=authority.ca_bundle, retry=RetryPolicy.none()) as transport:
        return attest_software_key(key, authority.attestation_url, transport)


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_the_service_publishes_metadata_and_jwks_and_its_tokens_verify_with_them(authority):
    assert _metadata(authority)["attestationEndpoint"] == authority.attestation_url
    with _session() as s:
        config = s.get(f"{authority.attestation_url}/.well-known/openid-configuration",
                       verify=authority.ca_bundle, timeout=5).json()
        jwks = s.get(config["jwks_uri"], verify=authority.ca_bundle, timeout=5).json()
    assert config["issuer"] == authority.attestation_url
    key = _key()
    token = _attest(authority, key)
    signing_key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, signing_key.key, algorithms=["RS256"], issuer=config["issuer"])
    assert claims["x-ms-lab-key-sha256"] == key_thumbprint(key.public_key())
    assert claims["x-ms-lab-key-protection"] == "software" and claims["x-ms-lab-stand-in"] is True


def test_the_service_refuses_evidence_without_possession_of_the_key(authority):
    key, other = _key(), _key()
    transport = Transport(ca_bundle=authority.ca_bundle, retry=RetryPolicy.none())

    class Impostor:       # claims key's public part, signs with another key
        def public_key(self):
            return key.public_key()

        def sign(self, data, pad, algorithm):
            return other.sign(data, pad, algorithm)

    with transport, pytest.raises(ManagedIdentityError) as info:
        attest_software_key(Impostor(), authority.attestation_url, transport)
    assert info.value.code == "attestation_failed"
    assert authority.trace[-1].status == 400 and authority.trace[-1].path.startswith("/attest/keyguard")


@pytest.mark.parametrize("policy", ["off", "optional", "required"])
def test_a_valid_attestation_passes_under_every_policy(authority, policy):
    authority.set_attestation(policy)
    key = _key()
    assert _issue(authority, key, attestation_token=_attest(authority, key)).status_code == 200


def test_policies_for_a_missing_token(authority):
    for policy, status in (("off", 200), ("optional", 200), ("required", 400)):
        authority.set_attestation(policy)
        response = _issue(authority, _key())
        assert response.status_code == status, policy
    assert response.json()["error"] == "attestation_required" and "IMDS" in response.headers["Server"]


def _forged(authority, key, *, signer=None, **overrides):
    now = int(time.time())
    claims = {"iss": authority.attestation_url, "iat": now, "nbf": now, "exp": now + 600,
              "x-ms-attestation-type": "keyguard", "x-ms-lab-key-sha256": key_thumbprint(key.public_key()),
              **overrides}
    return (signer or authority.attestation.signer).mint(claims)


@pytest.mark.parametrize("policy", ["optional", "required"])
@pytest.mark.parametrize("case, error", [
    ("empty", "attestation_malformed"),
    ("garbage", "attestation_malformed"),
    ("not_a_string", "attestation_malformed"),
    ("foreign_service", "attestation_untrusted"),
    ("other_issuer", "attestation_untrusted"),
    ("expired", "attestation_expired"),
    ("other_key", "attestation_key_mismatch"),
    ("not_a_key_attestation", "attestation_malformed"),
])
def test_bad_attestations_are_refused_with_imds_errors(authority, policy, case, error):
    authority.set_attestation(policy)
    key = _key()
    token = {
        "empty": lambda: "",
        "garbage": lambda: "this-is-not-an-attestation",
        "not_a_string": lambda: {"token": "x"},
        "foreign_service": lambda: _forged(authority, key, signer=AttestationService(lambda: "x").signer),
        "other_issuer": lambda: _forged(authority, key, iss="https://other.attest.example"),
        "expired": lambda: _forged(authority, key, iat=int(time.time()) - 9000, nbf=int(time.time()) - 9000,
                                   exp=int(time.time()) - 60),
        "other_key": lambda: _attest(authority, _key()),          # a real token, for another key
        "not_a_key_attestation": lambda: _forged(authority, key, **{"x-ms-attestation-type": "sgx"}),
    }[case]()
    response = _issue(authority, key, attestation_token=token)
    assert response.status_code == 400 and response.json()["error"] == error
    assert "IMDS" in response.headers["Server"] and response.json()["error_description"]
    assert authority.trace[-1].error.startswith(error)


def test_policy_off_ignores_even_garbage(authority):
    authority.set_attestation("off")
    assert _issue(authority, _key(), attestation_token="garbage").status_code == 200


def test_the_managed_identity_client_attests_its_key_and_gets_a_bound_token(authority):
    authority.set_attestation("required")
    mi = ManagedIdentityId.user_assigned_client_id(authority.directory.user_assigned[0].client_id)
    with MtlsPopTokenAcquirer.for_managed_identity(mi, cloud=authority.cloud, attestation=True) as acquirer:
        result = acquirer.acquire_token(GRAPH)
        assert "attested" in acquirer.binding_strength and "stand-in" in acquirer.binding_strength
    assert check_binding(result.access_token, result.binding_certificate).bound
    assert [t.kind for t in result.round_trips] == ["getplatformmetadata", "attestation", "issuecredential", "token"]
    mermaid = lab.sequence_diagram(result).mermaid()
    assert "participant MAA as Attestation service (MAA)" in mermaid


def test_the_unattested_client_is_refused_when_attestation_is_required(authority):
    authority.set_attestation("required")
    mi = ManagedIdentityId.user_assigned_client_id(authority.directory.user_assigned[1].client_id)
    with MtlsPopTokenAcquirer.for_managed_identity(mi, cloud=authority.cloud) as acquirer:
        assert acquirer.binding_strength == "software key, unattested"
        with pytest.raises(ManagedIdentityError) as info:
            acquirer.acquire_token(GRAPH)
        assert info.value.code == "attestation_required" and "KeyGuard" in info.value.fix
        assert acquirer.acquire_token(GRAPH, use_pop=False).token_type == "Bearer"   # v1 is untouched


def test_an_attestation_service_failure_is_reported(authority):
    authority.inject_fault("status", count=10, status=503, listener="attest")
    mi = ManagedIdentityId.user_assigned_client_id(authority.directory.user_assigned[2].client_id)
    with MtlsPopTokenAcquirer.for_managed_identity(mi, cloud=authority.cloud, attestation=True,
                                                   retry=RetryPolicy.fast()) as acquirer:
        with pytest.raises(ManagedIdentityError) as info:
            acquirer.acquire_token(GRAPH)
    assert info.value.code == "attestation_failed"
    assert authority.count_requests(path_contains="issuecredential") == 0


def test_live_attestation_is_refused_with_the_reason():
    with pytest.raises(ConfigurationError) as info:
        MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.system_assigned(), cloud=Cloud.public(),
                                                  attestation=True)
    assert info.value.code == "attestation_not_available_here" and "KeyGuard" in info.value.cause


def test_set_attestation_validates_and_resets(authority):
    with pytest.raises(ConfigurationError):
        authority.set_attestation("sometimes")
    authority.set_attestation("required")
    authority.reset_knobs()
    assert authority.attestation_policy == "optional"


@pytest.mark.parametrize("method, path, body, status, code", [
    ("POST", "/attest/keyguard", {"AttestationInfo": "not base64!"}, 400, "InvalidParameter"),
    ("POST", "/attest/keyguard", {"nothing": 1}, 400, "InvalidParameter"),
    ("GET", "/attest/keyguard", None, 405, "MethodNotAllowed"),
    ("GET", "/attest/sgx", None, 404, "NotFound"),
])
def test_the_attestation_service_refuses_bad_requests_in_maa_shape(authority, method, path, body, status, code):
    with _session() as s:
        response = s.request(method, f"{authority.attestation_url}{path}", json=body, verify=authority.ca_bundle,
                             timeout=5)
    assert response.status_code == status and response.json()["error"]["code"] == code


def test_a_small_key_is_not_attested(authority):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with Transport(ca_bundle=authority.ca_bundle, retry=RetryPolicy.none()) as transport:
        with pytest.raises(ManagedIdentityError) as info:
            attest_software_key(small, authority.attestation_url, transport)
    assert info.value.code == "attestation_failed" and "InvalidParameter" in info.value.message
