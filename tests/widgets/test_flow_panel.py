"""FlowPanel, headless: every identity, both flows, both token types, cache, errors."""

from __future__ import annotations

import re

import pytest

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.inspector import decode_token
from mtlspop_lab.redact import contains_secret
from mtlspop_lab.widgets import FlowPanel

IDENTITIES = ["sami", "uami_client_id", "uami_resource_id", "uami_object_id", "confidential_client"]


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def cert_and_cnf(card_html: str) -> tuple[str, str]:
    cert = re.search(r"class='mtlspop-cert-x5t'[^>]*>([^<]+)<", card_html).group(1)
    cnf = re.search(r"class='mtlspop-cnf-x5t'[^>]*>([^<]+)<", card_html).group(1)
    return cert, cnf


@pytest.fixture
def panel(authority):
    panel = FlowPanel(authority)
    yield panel
    panel.close()


def assert_shows_no_secret(panel):
    for widget in (panel.card, panel.trips, panel.steps, panel.status):
        assert not contains_secret(widget.value)
    assert not contains_secret(str(panel.diagram.outputs))


@pytest.mark.parametrize("identity", IDENTITIES)
def test_vanilla_pop_for_each_identity_shows_a_bound_token(panel, identity):
    panel.identity.value = identity
    panel.run_button.click()
    assert panel.last_error is None, panel.status.value
    result = panel.result
    assert result.token_type == "mtls_pop" and result.flow == "vanilla"
    cert, cnf = cert_and_cnf(panel.card.value)
    assert cert == cnf == result.binding_certificate.x5t_s256 == decode_token(result.access_token).x5t_s256
    shown = text(panel.card.value)
    assert "mtls_pop token, bound to its certificate" in shown and "✔ bound" in shown
    shown_requests = text(panel.trips.value)
    assert "mtlspop-roundtrips" in panel.trips.value and "token request" in shown_requests
    assert "token_type = mtls_pop" in shown_requests, "the form fields are shown"
    assert "mTLS, new connection" in shown_requests or "mTLS, reused connection" in shown_requests
    if identity != "confidential_client" and "IMDS: certificate" in shown_requests:
        assert "plain HTTP" in shown_requests and "new (TLS handshake)" not in shown_requests
    assert "regional mtlsauth" in shown_requests or "mtlsauth" in shown_requests
    (output,) = panel.diagram.outputs
    mermaid = output["data"]["text/vnd.mermaid"]
    assert mermaid.startswith("sequenceDiagram") and "Token service" in mermaid
    if identity != "confidential_client":
        assert "IMDS" in mermaid or result.round_trip_count == 1  # the MI certificate may be reused
    assert_shows_no_secret(panel)


def test_second_run_comes_from_the_cache_and_forget_starts_over(panel, authority):
    panel.run_button.click()
    first = panel.result
    before = authority.count_requests()
    panel.run_button.click()
    assert panel.result.source == "cache" and panel.result.access_token == first.access_token
    assert authority.count_requests() == before
    assert "cache (no request sent)" in text(panel.card.value)
    assert "No request: the token came from the cache." in text(panel.trips.value)
    assert "served from the token cache" in panel.diagram.outputs[0]["data"]["text/vnd.mermaid"]

    panel.forget_button.click()
    assert panel.result is None and panel.card.value == "" and "Tokens forgotten" in panel.status.value
    panel.run_button.click()
    assert panel.result.source == "identity_provider"
    assert panel.result.access_token != first.access_token
    assert authority.count_requests() > before


def test_bearer_is_shown_as_unbound(panel):
    panel.identity.value = "confidential_client"
    panel.token_type.value = "Bearer"
    panel.run_button.click()
    assert panel.result.token_type == "Bearer" and panel.result.binding_certificate is None
    shown = text(panel.card.value)
    assert "⚠ Bearer token: bound to no certificate" in shown
    assert "none (no cnf claim)" in shown and "mtlspop-cert-x5t" not in panel.card.value


@pytest.mark.parametrize("leg1", ["sami", "uami_object_id", "confidential_client"])
@pytest.mark.parametrize("token_type", ["mtls_pop", "Bearer"])
def test_fic_two_leg_binds_leg_2_to_leg_1_certificate(authority, leg1, token_type):
    panel = FlowPanel(authority, flow="fic", identity=leg1)
    try:
        panel.token_type.value = token_type
        panel.run_button.click()
        assert panel.last_error is None, panel.status.value
        assertion, result = panel.assertion, panel.result
        assert decode_token(assertion.access_token).audience == "api://AzureADTokenExchange"
        assert result.flow == "fic_leg2" and result.token_type == token_type
        assert "federated credential trusting" in text(panel.card.value)
        assert "Leg 1 assertion" in text(panel.card.value)
        requests = len(assertion.round_trips) + len(result.round_trips)
        assert f"identity provider ({requests} requests: " in text(panel.card.value)
        assert "leg 2: token request" in text(panel.trips.value) and "client_assertion = JWT" in text(panel.trips.value)
        assert f"leg 2: app {panel.leg2_app.client_id}; leg 1: " in text(panel.card.value)
        if token_type == "mtls_pop":
            assert result.binding_certificate.x5t_s256 == assertion.binding_certificate.x5t_s256
            cert, cnf = cert_and_cnf(panel.card.value)
            assert cert == cnf == assertion.binding_certificate.x5t_s256
        else:
            assert result.binding_certificate is None
        legs = {trip.leg for trip in assertion.round_trips + result.round_trips}
        assert "leg2" in legs
        mermaid = panel.diagram.outputs[0]["data"]["text/vnd.mermaid"]
        assert "Leg 2" in mermaid
        # a second run reuses the federated credential (no new note) and the caches
        panel.run_button.click()
        assert "federated credential trusting" not in text(panel.card.value)
        assert panel.result.source == "cache"
    finally:
        panel.close()


def test_the_fic_explanation_follows_the_flow_choice(panel):
    assert "Vanilla" in panel.explain.value
    panel.flow.value = "fic"
    assert "leg 2" in panel.explain.value and "lab-leg2-app" in panel.explain.value


def test_a_refusal_is_a_readable_card_and_the_buttons_come_back(panel):
    panel.resource.value = "https://legacy.contoso.example"
    seen = []
    panel.run_button.observe(lambda change: seen.append(change.new), names="disabled")
    panel.run_button.click()
    assert seen == [True, False] and not panel.run_button.disabled
    shown = text(panel.status.value)
    assert "AuthorityError" in shown and "AADSTS392196" in shown
    assert "What to do" in shown and "Bearer" in shown and "Traceback" not in shown
    # the refused request stays visible: status, form fields and the diagram
    assert panel.card.value == "" and panel.result is None
    assert "400" in text(panel.trips.value) and "token_type = mtls_pop" in text(panel.trips.value)
    assert "--x" in panel.diagram.outputs[0]["data"]["text/vnd.mermaid"]
    assert_shows_no_secret(panel)
    panel.token_type.value = "Bearer"
    panel.run_button.click()
    assert panel.last_error is None and panel.result.token_type == "Bearer"


def test_a_retried_503_is_visible_in_the_round_trips(panel, authority):
    panel.identity.value = "confidential_client"
    panel.run_button.click()          # discovery done, connection warm
    panel.forget_button.click()
    authority.inject_fault("status", count=1, listener="mtls", status=503, retry_after=0)
    panel.run_button.click()
    assert panel.last_error is None, panel.status.value
    statuses = [trip.status for trip in panel.result.round_trips]
    assert 503 in statuses and statuses[-1] == 200
    assert "503" in text(panel.trips.value)
    assert "(retry 1)" in panel.diagram.outputs[0]["data"]["text/vnd.mermaid"]


def test_a_closed_authority_says_what_to_do():
    authority = LocalAuthority()
    panel = FlowPanel(authority)
    authority.close()
    panel.run_button.click()
    shown = text(panel.status.value)
    assert "authority_closed" in shown and "first code cell" in shown
    panel.close()


def test_fic_to_another_tenant(panel, authority):
    """Leg 2 tenant = fabrikam: the final token is issued by tenant B, the diagram has two token services."""
    panel.flow.value, panel.identity.value, panel.tenant.value = "fic", "sami", "fabrikam"
    panel.run_button.click()
    assert panel.last_error is None, panel.status.value
    claims = decode_token(panel.result.access_token).claims
    assert claims["tid"] == authority.tenant("fabrikam").tenant_id != authority.tenant_id
    assert decode_token(panel.assertion.access_token).claims["tid"] == authority.tenant_id
    (output,) = panel.diagram.outputs
    mermaid = output["data"]["text/vnd.mermaid"]
    assert "participant STS2" in mermaid and authority.tenant("fabrikam").tenant_id[:8] in mermaid
    assert "fabrikam" in panel.explain.value


@pytest.mark.parametrize("key", ["ext_kubernetes", "ext_github_actions"])
def test_external_issuer_as_leg1(panel, key):
    panel.identity.value, panel.flow.value, panel.token_type.value = key, "fic", "Bearer"
    panel.run_button.click()
    assert panel.last_error is None, panel.status.value
    assert panel.result.token_type == "Bearer" and panel.assertion.token_type == "Bearer"
    panel.token_type.value = "mtls_pop"                  # nothing to bind to: refused before sending
    panel.run_button.click()
    assert getattr(panel.last_error, "code", None) == "mtls_certificate_not_provided"
    panel.flow.value = "vanilla"
    panel.run_button.click()
    assert getattr(panel.last_error, "code", None) == "external_token_needs_fic"
    assert_shows_no_secret(panel)


def test_the_request_inspector_reveals_one_secret_on_request(panel):
    panel.identity.value = "confidential_client"
    panel.run_button.click()
    inspector = panel.requests
    labels = [label for label, _ in inspector.secret.options]
    assert any("answer access_token" in label for label in labels)
    assert inspector.revealed.value == "" and inspector.revealed.layout.display == "none"
    assert_shows_no_secret(panel)
    index = next(i for label, i in inspector.secret.options if "answer access_token" in label)
    inspector.secret.value = index
    inspector.reveal_button.click()
    assert inspector.revealed.value == panel.result.access_token
    assert "live credential" in text(inspector.warning.value)
    panel.run_button.click()   # a new action hides what was revealed
    assert inspector.revealed.value == "" and inspector.warning.value == ""
