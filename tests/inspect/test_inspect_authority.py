"""Tokens from the embedded authority: bound to their certificate and to no other."""

from __future__ import annotations

import itertools

import msal
import pytest
import requests

from mtlspop_lab.errors import TokenValidationError
from mtlspop_lab.inspector import check_binding, decode_token, explain_claims, verify_token
from mtlspop_lab.cli.inspect import main

GRAPH = "https://graph.microsoft.com"
_n = itertools.count()


def _session(authority, cert, tmp_path):
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE is set on this machine
    session.verify = authority.ca_bundle
    if cert is not None:
        n = next(_n)
        certfile, keyfile = tmp_path / f"c{n}.pem", tmp_path / f"k{n}.pem"
        cert.write_pem(certfile, keyfile)
        session.cert = (str(certfile), str(keyfile))
    return session


@pytest.fixture
def app(authority):
    return authority.directory.register_app(f"inspector-app-{next(_n)}")


@pytest.fixture
def pop_token(authority, app, tmp_path):
    """An mtls_pop token over the wire: TLS client certificate = the app's certificate."""
    with _session(authority, app.certificate, tmp_path) as session:
        answer = session.post(authority.token_endpoint("mtls"), data={
            "client_id": app.client_id, "grant_type": "client_credentials",
            "scope": f"{GRAPH}/.default", "token_type": "mtls_pop"}, timeout=30)
    body = answer.json()
    assert answer.status_code == 200 and body["token_type"] == "mtls_pop", body.get("error_description")
    return body


def test_authority_pop_token_is_bound_to_its_certificate_only(authority, app, pop_token):
    token = pop_token["access_token"]
    verdict = check_binding(token, app.certificate)
    assert verdict.bound and verdict.expected == app.certificate.x5t_s256
    assert check_binding(pop_token, app.certificate.public_only()).bound  # the response dict works too
    others = [authority.directory.register_app(f"inspector-other-{next(_n)}").certificate,
              authority.ca.issue_client_certificate("CN=same-ca-other-key"),
              authority.ca.certificate]
    for other in others:
        verdict = check_binding(token, other)
        assert not verdict.bound and verdict.mistakes == ("other_certificate",)


def test_authority_token_verifies_with_its_jwks(authority, app, pop_token):
    token = pop_token["access_token"]
    result = verify_token(token, authority=authority, audience=GRAPH)
    # Graph accepts v1.0 tokens: the tenant's v1 issuer, the client in appid
    v1_issuer = f"https://sts.mtlspop.localhost/{authority.tenant_id}/"
    assert result.verified and result.verification["issuer"] == v1_issuer and v1_issuer in authority.issuers
    assert result.claims["appid"] == app.client_id and result.claims["tid"] == authority.tenant_id
    jwks_url = f"{authority.login_url}/{authority.tenant_id}/discovery/v2.0/keys"
    assert verify_token(token, jwks_url=jwks_url, ca_bundle=authority.ca_bundle, audience=GRAPH,
                        issuer=v1_issuer).verified
    with pytest.raises(TokenValidationError) as info:   # the v2 issuer is not this token's
        verify_token(token, authority=authority, audience=GRAPH, issuer=authority.issuer)
    assert info.value.code == "invalid_issuer"
    with pytest.raises(TokenValidationError) as info:
        verify_token(token, authority=authority, audience="https://vault.azure.net")
    assert info.value.code == "invalid_audience"


def test_authority_claims_are_explained(authority, pop_token):
    table = explain_claims(pop_token["access_token"]).set_index("claim")
    for claim in ("tid", "oid", "appid", "appidacr", "idp", "idtyp", "ver", "uti", "cnf", "xms_tbflags", "exp",
                  "aio", "rh", "x5t", "kid"):
        assert claim in table.index, claim
        assert "Not a registered" not in table.loc[claim, "meaning"]
    assert "certificate-bound" in table.loc["cnf", "meaning"]
    assert table.loc["exp", "time_left"].startswith("expires in")
    assert table.loc["ver", "meaning"].startswith("This is a v1.0 token")      # Graph accepts v1.0


def test_authority_bearer_token_is_not_bound(authority, app, tmp_path):
    cca = msal.ConfidentialClientApplication(
        app.client_id, client_credential={"private_key": app.certificate.private_key_pem().decode(),
                                          "thumbprint": app.certificate.thumbprint},
        authority=f"{authority.login_url}/{authority.tenant_id}", instance_discovery=False,
        http_client=_session(authority, None, tmp_path))
    result = cca.acquire_token_for_client([f"{GRAPH}/.default"])
    assert result.get("token_type") == "Bearer", result.get("error_description")
    verdict = check_binding(result["access_token"], app.certificate)
    assert not verdict.bound and verdict.mistakes == ("no_cnf",)
    assert decode_token(result).token_type == "Bearer"
    assert verify_token(result, authority=authority, audience=GRAPH).verified


def test_cli_on_an_authority_token(authority, app, pop_token, tmp_path, capsys):
    token_file = tmp_path / "token.json"
    import json
    token_file.write_text(json.dumps(pop_token))
    cert_file = tmp_path / "app.pem"
    cert_file.write_text(app.certificate.pem)
    other_file = tmp_path / "other.pem"
    other_file.write_text(authority.ca.issue_client_certificate("CN=x").pem)
    jwks_url = f"{authority.login_url}/{authority.tenant_id}/discovery/v2.0/keys"
    assert main([str(token_file), "--cert", str(cert_file), "--jwks", jwks_url,
                 "--ca-bundle", str(authority.ca_bundle), "--audience", GRAPH]) == 0
    out = capsys.readouterr().out
    assert "BOUND" in out and "VALID" in out and pop_token["access_token"].split(".")[1] not in out
    assert main([str(token_file), "--cert", str(other_file)]) == 1


# -- TokenResults from the client flows, passed as they are ------------------------------------
def test_flow_results_are_inspected_directly(authority, app):
    from mtlspop_lab.flows import FicLeg1Acquirer, FicLeg2Exchanger, MtlsPopTokenAcquirer

    with MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                       cloud=authority.cloud) as acquirer:
        pop = acquirer.acquire_token(GRAPH, use_pop=True)
        bearer = acquirer.acquire_token(GRAPH, use_pop=False)
    verdict = check_binding(pop)  # the result's binding_certificate is used
    assert verdict.bound and verdict.token_type == "mtls_pop"
    assert verdict.expected == app.certificate.x5t_s256
    assert not check_binding(pop, authority.ca.issue_client_certificate("CN=thief")).bound
    verdict = check_binding(bearer, app.certificate)
    assert not verdict.bound and verdict.mistakes == ("no_cnf",)
    assert check_binding(bearer).mistakes == ("no_certificate",)  # a Bearer result has no certificate

    leg2_app = authority.directory.register_app(f"inspector-leg2-{next(_n)}")
    authority.directory.add_federated_credential(leg2_app, trusted=app)
    assertion = FicLeg1Acquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                        cloud=authority.cloud).acquire_assertion()
    assert check_binding(assertion).bound
    assert verify_token(assertion, authority=authority, audience="api://AzureADTokenExchange").verified
    final = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=authority.cloud
                                    ).exchange_assertion_for_access_token(assertion, GRAPH, use_pop=True)
    verdict = check_binding(final)
    assert verdict.bound and verdict.expected == app.certificate.x5t_s256  # leg 1's certificate
    assert decode_token(final).claims["appid"] == leg2_app.client_id


def test_managed_identity_v2_result_is_bound_to_the_imds_certificate(authority):
    from mtlspop_lab.flows import ManagedIdentityId, MtlsPopTokenAcquirer, forget_issued_certificates

    forget_issued_certificates()
    try:
        with MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.system_assigned(),
                                                       cloud=authority.cloud) as acquirer:
            result = acquirer.acquire_token(GRAPH, use_pop=True)
        verdict = check_binding(result)
        assert verdict.bound and verdict.expected == result.binding_certificate.x5t_s256
        assert result.binding_certificate.issuer == authority.ca.certificate.subject  # issued by IMDS v2
        claims = explain_claims(result).set_index("claim")
        assert "Managed identity resource id" in claims.loc["xms_mirid", "meaning"]
    finally:
        forget_issued_certificates()
