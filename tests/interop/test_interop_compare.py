"""compare_tokens: an Entra-style mtls_pop token and an RFC 8705 bound token, side by side."""

from __future__ import annotations

import pytest

from mtlspop_lab.certs import Certificate
from mtlspop_lab.cloud import Cloud
from mtlspop_lab.errors import ConfigurationError
from mtlspop_lab.flows import MtlsPopTokenAcquirer
from mtlspop_lab.flows.rfc8705 import CertificateBoundClient
from mtlspop_lab.inspector import compare_tokens

LAB_API = "api://mtlspop-lab-api"


@pytest.fixture(scope="module")
def entra_result(authority):
    app = authority.directory.register_app("interop-compare-app")
    with MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                      cloud=authority.cloud) as acquirer:
        return acquirer.acquire_token(LAB_API, use_pop=True)


@pytest.fixture(scope="module")
def rfc_result(oidc_provider):
    cloud = Cloud.from_discovery(oidc_provider.issuer, ca_bundle=oidc_provider.ca_bundle)
    with CertificateBoundClient(oidc_provider.self_signed_client_id, oidc_provider.self_signed_certificate,
                                cloud=cloud) as client:
        return client.acquire_token(LAB_API, scopes=[oidc_provider.resource_scope])


def test_side_by_side_table(entra_result, rfc_result, oidc_provider, authority):
    table = compare_tokens(entra_result, rfc_result)
    assert list(table.columns) == ["aspect", "Entra-style mtls_pop", "RFC 8705 (oidc-provider)", "same", "note"]
    rows = table.set_index("aspect")
    entra, rfc = "Entra-style mtls_pop", "RFC 8705 (oidc-provider)"
    assert rows.loc["token_type (token response)", entra] == "mtls_pop"
    assert rows.loc["token_type (token response)", rfc] == "Bearer"
    assert rows.loc["Authorization scheme", entra] == "mtls_pop"
    assert rows.loc["Authorization scheme", rfc] == "Bearer"
    assert rows.loc["cnf", entra] == rows.loc["cnf", rfc] == "x5t#S256" and rows.loc["cnf", "same"]
    assert rows.loc["cnf.x5t#S256", entra] == entra_result.binding_certificate.x5t_s256
    assert rows.loc["cnf.x5t#S256", rfc] == oidc_provider.self_signed_certificate.x5t_s256
    assert rows.loc["bound to the given certificate", entra] is True
    assert rows.loc["bound to the given certificate", rfc] is True
    # the lab API accepts v2.0 tokens: Entra names it by its application id; oidc-provider by its URI
    assert rows.loc["aud", entra] == authority.directory.find_resource(LAB_API).app_id
    assert rows.loc["aud", rfc] == LAB_API and not rows.loc["aud", "same"]
    assert rows.loc["JWS typ", rfc] == "at+jwt" and rows.loc["JWS typ", entra] != "at+jwt"
    assert rows.loc["iss", entra] == authority.issuer and rows.loc["iss", rfc] == oidc_provider.issuer
    assert rows.loc["client claim", rfc].startswith("client_id = ")
    assert rows.loc["client claim", entra].startswith(("appid = ", "azp = "))
    assert "cnf" in rows.loc["token_type (token response)", "note"]
    text = table.to_string()
    for result in (entra_result, rfc_result):  # claims and thumbprints only: no token, no signature
        assert result.access_token not in text
        assert result.access_token.rsplit(".", 1)[1][:20] not in text


def test_binding_checked_against_given_certificates(entra_result, rfc_result):
    other = Certificate.create_self_signed("CN=other")
    rows = compare_tokens(entra_result.access_token, rfc_result, certificate_a=other).set_index("aspect")
    assert rows.loc["bound to the given certificate", "Entra-style mtls_pop"] is False  # other certificate
    assert rows.loc["token_type (token response)", "Entra-style mtls_pop"] == "(not given)"  # a bare string
    rows = compare_tokens({"access_token": rfc_result.access_token, "token_type": "Bearer"}, rfc_result,
                          labels=("response dict", "result")).set_index("aspect")
    assert rows.loc["bound to the given certificate", "response dict"] is None  # no certificate to check
    assert rows.loc["Authorization scheme", "response dict"] == "Bearer"
    assert rows.loc["cnf.x5t#S256", "same"]


def test_labels_must_differ(entra_result, rfc_result):
    with pytest.raises(ConfigurationError):
        compare_tokens(entra_result, rfc_result, labels=("same", "same"))
