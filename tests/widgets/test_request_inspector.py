"""The request inspector's model: host roles, connection labels, captured exchanges, secrets."""

from __future__ import annotations

import pytest
import requests

import mtlspop_lab as lab
from mtlspop_lab.errors import ConfigurationError
from mtlspop_lab.redact import contains_secret
from mtlspop_lab.transport import Transport
from mtlspop_lab.transport.exchanges import capture, host_role
from mtlspop_lab.workshop import request_inspector


@pytest.mark.parametrize("url, role", [
    ("https://login.microsoftonline.com/tenant/oauth2/v2.0/token", "login"),
    ("https://mtlsauth.microsoft.com/tenant/oauth2/v2.0/token", "mtlsauth"),
    ("https://westus3.mtlsauth.microsoft.com/tenant/oauth2/v2.0/token", "regional mtlsauth"),
    ("http://169.254.169.254/metadata/identity/oauth2/token", "IMDS"),
    ("https://login.lab.test:8443/tenant/oauth2/v2.0/token", "login"),
    ("https://eastus2.mtlsauth.lab.test:8443/t", "regional mtlsauth"),
    ("https://westus3.login.microsoft.com/tenant/oauth2/v2.0/token", "regional login"),
    ("https://eastus2.login.mtlspop.localhost/t", "regional login"),
    ("http://imds.lab.test:8443/metadata/identity/getplatformmetadata", "IMDS"),
    ("https://api.lab.test:8443/", "resource API"),
    ("https://example.org/", "host"),
])
def test_host_role_from_the_first_label(url, role):
    assert host_role(url) == role


def test_host_role_of_the_embedded_authority_from_its_cloud(authority):
    cloud = authority.cloud
    assert host_role(cloud.login_url + "/x", cloud) == "login"
    assert host_role(cloud.mtls_base_url(None) + "/x", cloud) == "mtlsauth"     # MSAL's rule: login. -> mtlsauth.
    assert host_role(cloud.imds_url + "/x", cloud) == "IMDS"
    assert host_role(cloud.resource_url, cloud) == "resource API"
    assert cloud.regions
    for region in cloud.regions:
        assert host_role(cloud.mtls_base_url(region), cloud) == "regional mtlsauth"


def test_a_managed_identity_flow_is_shown_request_by_request(authority):
    acquirer = lab.MtlsPopTokenAcquirer.for_managed_identity(lab.ManagedIdentityId.system_assigned(),
                                                             cloud=authority.cloud)
    lab.flows.forget_issued_certificates()
    with capture() as exchanges:
        result = acquirer.acquire_token("https://graph.microsoft.com", use_pop=True)
        lab.call_resource(authority.resource_url, result)
    steps = [request_inspector.step_name(e) for e in exchanges]
    assert steps[:2] == ["IMDS: platform metadata", "IMDS: certificate (CSR)"]
    assert "token request" in steps and steps[-1] == "API call"
    imds, token, api = exchanges[0], next(e for e in exchanges if e.trip.kind == "token"), exchanges[-1]
    assert imds.connection.startswith("plain HTTP")
    assert token.connection.startswith("mTLS") and ("token_type", "mtls_pop") in token.form
    assert token.response_json["token_type"] == "mtls_pop" and "expires_in" in token.response_json
    assert api.connection.startswith("mTLS") and api.header("Authorization").startswith("mtls_pop ")
    html = request_inspector.inspector_html(exchanges, authority.cloud)
    assert not contains_secret(html)
    assert "token_type = mtls_pop" in html and "x5t#S256" in html and "expires_in" in html
    assert "Authorization: mtls_pop JWT, signature" in html, "the header's token shown as header + claims"
    found = request_inspector.secrets(exchanges)
    assert {s.where for s in found} >= {"answer access_token", "request header Authorization"}
    answer = next(s for s in found if s.where == "answer access_token")
    assert request_inspector.reveal(exchanges, answer.index) == result.access_token
    with pytest.raises(ConfigurationError) as missing:
        request_inspector.reveal(exchanges, len(found))
    assert missing.value.code == "no_such_secret"
    acquirer.close()


def test_a_failed_request_is_kept(authority):
    transport = Transport(retry=lab.RetryPolicy.none())
    with capture() as exchanges:
        with pytest.raises(requests.RequestException):
            transport.post("http://127.0.0.1:9/oauth2/v2.0/token", data={"grant_type": "client_credentials"})
    (failed,) = exchanges
    assert failed.status is None and failed.error == "connection_refused"
    assert ("grant_type", "client_credentials") in failed.form
    assert "connection_refused" in request_inspector.inspector_html(exchanges)
    transport.close()


def test_nothing_is_kept_outside_a_capture(authority):
    transport = Transport(ca_bundle=authority.ca_bundle)
    with capture() as inner:
        pass
    transport.get(authority.cloud.login_url + "/common/discovery/instance?api-version=1.1")
    assert inner == []
    transport.close()


def test_a_shortened_token_keeps_header_and_claims_only(authority):
    app = authority.directory.register_app("inspector-app")
    acquirer = lab.MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                                cloud=authority.cloud)
    token = acquirer.acquire_token("https://graph.microsoft.com").access_token
    shown = request_inspector.shortened("mtls_pop " + token)
    assert shown.startswith("mtls_pop JWT, signature") and '"aud": "https://graph.microsoft.com"' in shown
    assert token.split(".")[2] not in shown and not contains_secret(shown)
    acquirer.close()
