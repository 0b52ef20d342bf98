"""Workload identity federation: Kubernetes, GitHub Actions and generic issuers served by the lab.

Each issuer is real (its own HTTPS port, discovery, JWKS, signed tokens); the exchange goes
through the lab's flows (msal, jwt-bearer on the login host); every refusal carries Entra's
AADSTS number (sources in mtlspop_lab/authority/federation.py) and a fix.
"""

from __future__ import annotations

import time

import jwt
import pytest
import requests

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.authority.signing import Signer
from mtlspop_lab.errors import AuthorityError, CertificateError, ConfigurationError
from mtlspop_lab.flows import FicLeg1Acquirer, FicLeg2Exchanger, call_resource

GRAPH = "https://graph.microsoft.com"
EXCHANGE = "api://AzureADTokenExchange"
K8S_SUBJECT = "system:serviceaccount:default:workload-identity-sa"
GH_SUBJECT = "repo:Contoso/Deploy:environment:Production"


@pytest.fixture(scope="module")
def issuers(authority):
    return {"k8s": authority.add_external_issuer("kubernetes", name="aks-test"),
            "gh": authority.add_external_issuer("github_actions", name="gh-test"),
            "generic": authority.add_external_issuer("generic", name="generic-test")}


def _get(authority, url):
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, verify=authority.ca_bundle)


def _leg2(authority, app):
    return FicLeg2Exchanger.create(app.client_id, app.tenant_id, cloud=authority.cloud)


def _exchange(authority, app, token):
    leg2 = _leg2(authority, app)
    try:
        return leg2.exchange_assertion_for_access_token(token, GRAPH, use_pop=False, bind_certificate=False)
    finally:
        leg2.close()


def _refusal(authority, app, token) -> AuthorityError:
    with pytest.raises(AuthorityError) as info:
        _exchange(authority, app, token)
    assert info.value.fix and info.value.cause
    return info.value


@pytest.mark.parametrize("key", ["k8s", "gh", "generic"])
def test_issuer_serves_discovery_and_jwks_that_verify_its_tokens(authority, issuers, key):
    issuer = issuers[key]
    subject = {"k8s": K8S_SUBJECT, "gh": GH_SUBJECT, "generic": "my-workload"}[key]
    document = _get(authority, issuer.discovery_url).json()
    assert document["issuer"] == issuer.issuer and document["jwks_uri"] == issuer.jwks_uri
    keys = jwt.PyJWKSet.from_dict(_get(authority, document["jwks_uri"]).json())
    token = issuer.issue_token(subject)
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, keys[kid].key, algorithms=["RS256"], audience=EXCHANGE, issuer=issuer.issuer)
    assert claims["sub"] == subject
    assert _get(authority, issuer.issuer.rstrip("/") + "/nothing-here").status_code == 404


def test_kubernetes_token_shape(issuers):
    issuer = issuers["k8s"]
    assert issuer.issuer.endswith("/")                     # AKS issuers end with a slash
    claims = jwt.decode(issuer.issue_token(K8S_SUBJECT), options={"verify_signature": False})
    assert claims["aud"] == [EXCHANGE] and claims["exp"] - claims["iat"] == 3600
    assert claims["kubernetes.io"]["namespace"] == "default"
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "workload-identity-sa"
    with pytest.raises(ConfigurationError) as info:
        issuer.issue_token("System:serviceaccount:Default:sa")   # Kubernetes never issues that
    assert info.value.code == "invalid_subject"


def test_github_token_shape(issuers):
    issuer = issuers["gh"]
    assert not issuer.issuer.endswith("/")
    token = issuer.issue_token(GH_SUBJECT)
    header, claims = jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
    assert header["typ"] == "JWT" and header["x5t"] and header["kid"]
    assert claims["aud"] == EXCHANGE and claims["repository"] == "Contoso/Deploy"
    assert claims["environment"] == "Production" and claims["repository_owner"] == "Contoso"
    branch = jwt.decode(issuer.issue_token("repo:contoso/deploy:ref:refs/heads/main"),
                        options={"verify_signature": False})
    assert branch["ref"] == "refs/heads/main" and branch["ref_type"] == "branch" and "environment" not in branch
    with pytest.raises(ConfigurationError):
        issuer.issue_token("contoso/deploy")


@pytest.mark.parametrize("key,subject", [("k8s", K8S_SUBJECT), ("gh", GH_SUBJECT), ("generic", "my-workload")])
def test_exchange_through_the_flows(authority, issuers, key, subject):
    issuer = issuers[key]
    app = authority.directory.register_app(f"wif-{key}")
    authority.directory.add_federated_credential(app, trusted=(issuer, subject))
    leg1 = FicLeg1Acquirer.from_external_token(lambda: issuer.issue_token(subject), cloud=authority.cloud)
    assertion = leg1.acquire_assertion()
    assert assertion.token_type == "Bearer" and subject in assertion.identity
    authority.clear_trace()
    leg2 = _leg2(authority, app)
    final = leg2.exchange_assertion_for_access_token(assertion, GRAPH, use_pop=False)
    claims = jwt.decode(final.access_token, options={"verify_signature": False})
    # Graph accepts v1 tokens: the client is in appid, the issuer is the tenant's sts one
    assert claims["appid"] == app.client_id and claims["iss"] == f"https://sts.mtlspop.localhost/{authority.tenant_id}/"
    assert "cnf" not in claims
    post = [e for e in authority.trace if e.method == "POST"][0]
    assert post.listener == "login" and post.client_cert_x5t is None
    assert call_resource(authority.resource_url, final).ok
    with pytest.raises(CertificateError) as info:            # nothing to bind a PoP token to
        leg2.exchange_assertion_for_access_token(assertion, GRAPH, use_pop=True, bind_certificate=False)
    assert info.value.code == "mtls_certificate_not_provided"
    leg2.close()


def test_external_token_from_a_file(authority, issuers, tmp_path):
    issuer = issuers["k8s"]
    app = authority.directory.register_app("wif-file")
    authority.directory.add_federated_credential(app, trusted=(issuer, K8S_SUBJECT))
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(issuer.issue_token(K8S_SUBJECT))
    leg1 = FicLeg1Acquirer.from_external_token(str(token_file), cloud=authority.cloud)
    assert _exchange(authority, app, leg1.acquire_assertion()).token_type == "Bearer"
    with pytest.raises(ConfigurationError) as info:
        FicLeg1Acquirer.from_external_token(str(tmp_path / "missing")).acquire_assertion()
    assert info.value.code == "federated_token_file"
    with pytest.raises(ConfigurationError) as info:        # wrong audience is caught before sending
        FicLeg1Acquirer.from_external_token(issuer.issue_token(K8S_SUBJECT, audience="api://other")
                                            ).acquire_assertion()
    assert info.value.code == "assertion_audience_mismatch"


def test_app_without_any_federated_credential_70021(authority, issuers):
    app = authority.directory.register_app("wif-none")
    error = _refusal(authority, app, issuers["gh"].issue_token(GH_SUBJECT))
    assert error.aadsts == 70021 and error.code == "no_matching_federated_credential"


def test_issuer_mismatch_trailing_slash_700211(authority, issuers):
    issuer = issuers["gh"]
    app = authority.directory.register_app("wif-slash")
    authority.directory.add_federated_credential(app, trusted=(issuer.issuer + "/", GH_SUBJECT))
    error = _refusal(authority, app, issuer.issue_token(GH_SUBJECT))
    assert error.aadsts == 700211
    # an issuer the app has no credential for at all: the same code
    other = authority.directory.register_app("wif-other-issuer")
    authority.directory.add_federated_credential(other, trusted=(issuers["k8s"], K8S_SUBJECT))
    assert _refusal(authority, other, issuer.issue_token(GH_SUBJECT)).aadsts == 700211


def test_subject_mismatch_700213_and_case_7002138(authority, issuers):
    issuer = issuers["gh"]
    app = authority.directory.register_app("wif-subject")
    authority.directory.add_federated_credential(app, trusted=(issuer, "repo:contoso/deploy:environment:production"))
    case = _refusal(authority, app, issuer.issue_token(GH_SUBJECT))
    assert case.aadsts == 7002138 and case.code == "federated_subject_case_mismatch"
    branch = _refusal(authority, app, issuer.issue_token("repo:contoso/deploy:ref:refs/heads/main"))
    assert branch.aadsts == 700213
    # the fix: the subject exactly as the token carries it
    authority.directory.add_federated_credential(app, trusted=(issuer, GH_SUBJECT))
    assert _exchange(authority, app, issuer.issue_token(GH_SUBJECT)).token_type == "Bearer"


def test_audience_mismatch_700212(authority, issuers):
    issuer = issuers["k8s"]
    app = authority.directory.register_app("wif-audience")
    authority.directory.add_federated_credential(app, trusted=(issuer, K8S_SUBJECT))
    error = _refusal(authority, app, issuer.issue_token(K8S_SUBJECT, audience="api://something-else"))
    assert error.aadsts == 700212 and error.code == "federated_audience_mismatch"


@pytest.mark.parametrize("offset", [-7200, 600])
def test_expired_and_not_yet_valid_700024(authority, issuers, offset):
    issuer = issuers["k8s"]
    app = authority.directory.register_app("wif-time")
    authority.directory.add_federated_credential(app, trusted=(issuer, K8S_SUBJECT))
    error = _refusal(authority, app, issuer.issue_token(K8S_SUBJECT, issued_at=time.time() + offset))
    assert error.aadsts == 700024 and error.code == "assertion_expired"


def test_unknown_signing_key_7000272_and_bad_signature_700027(fresh_authority):
    issuer = fresh_authority.add_external_issuer("generic", name="rotating")
    app = fresh_authority.directory.register_app("wif-keys")
    fresh_authority.directory.add_federated_credential(app, trusted=(issuer, "job"))
    old = issuer.issue_token("job")
    issuer.rotate_keys(keep_previous=True)
    assert _exchange(fresh_authority, app, old).token_type == "Bearer"      # still published
    issuer.rotate_keys()
    error = _refusal(fresh_authority, app, old)
    assert error.aadsts == 7000272 and error.code == "federated_signing_key_not_found"
    header, payload, signature = issuer.issue_token("job").split(".")
    forged = f"{header}.{payload}.{signature[:-6]}AAAAAA"
    assert _refusal(fresh_authority, app, forged).aadsts == 700027


def test_unknown_issuer_with_a_credential(authority):
    """A credential for an issuer whose keys cannot be fetched: the lab answers 7000272 (see NOTES)."""
    stranger = Signer()
    app = authority.directory.register_app("wif-unknown-issuer")
    authority.directory.add_federated_credential(app, trusted=("https://issuer.invalid", "x"))
    now = int(time.time())
    token = stranger.mint({"iss": "https://issuer.invalid", "sub": "x", "aud": EXCHANGE, "iat": now,
                           "nbf": now, "exp": now + 600})
    assert _refusal(authority, app, token).aadsts == 7000272


def test_bad_configuration_is_refused(authority, issuers):
    cases = [lambda: authority.add_external_issuer("saml"), lambda: authority.add_external_issuer("generic", "Bad Name"),
             lambda: authority.add_external_issuer("kubernetes", name="aks-test"),
             lambda: authority.external_issuer("nope"), lambda: issuers["generic"].issue_token("x", lifetime_s=0),
             lambda: FicLeg1Acquirer.from_external_token(42)]
    for case in cases:
        with pytest.raises(ConfigurationError) as info:
            case()
        assert info.value.fix


def test_close_stops_the_issuer():
    with LocalAuthority() as lab:
        issuer = lab.add_external_issuer("github_actions")
        url = issuer.discovery_url
        assert _get(lab, url).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(url, verify=False, timeout=2)
    with pytest.raises(ConfigurationError):
        lab.add_external_issuer("generic")


def test_issuer_hosts_are_named_for_other_processes(fresh_authority):
    issuer = fresh_authority.add_external_issuer("kubernetes", name="aks-hosts")
    host = issuer.issuer.split("//", 1)[1].split(":", 1)[0]
    port = int(issuer.issuer.split("//", 1)[1].split(":", 1)[1].split("/", 1)[0])
    assert f"{host}:{port}:127.0.0.1" in fresh_authority.resolve_args()
    assert f"{host}:{port}:127.0.0.1:{port}" in fresh_authority.connect_to_args()
    assert f"127.0.0.1\t{host}" in fresh_authority.hosts_file_lines()


def test_subject_case_is_told_apart_whichever_side_has_the_capitals(authority, issuers):
    """The credential names capitals, the token has none: still 7002138, not 700213."""
    issuer = issuers["gh"]
    app = authority.directory.register_app("wif-subject-upper")
    authority.directory.add_federated_credential(app, trusted=(issuer, GH_SUBJECT))
    refused = _refusal(authority, app, issuer.issue_token(GH_SUBJECT.lower()))
    assert refused.aadsts == 7002138 and refused.code == "federated_subject_case_mismatch"
