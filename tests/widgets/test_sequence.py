"""Sequence diagrams drawn from the round trips a flow really made."""

from __future__ import annotations

import pytest

import mtlspop_lab as lab
from mtlspop_lab.redact import contains_secret
from mtlspop_lab.transport import RoundTrip
from mtlspop_lab.transport.sequence import SequenceDiagram, sequence_diagram


@pytest.fixture
def two_leg(authority):
    mi = lab.ManagedIdentityId.user_assigned_client_id(authority.directory.user_assigned[2].client_id)
    app = authority.directory.register_app("sequence-leg2")
    authority.directory.add_federated_credential(app, trusted=mi)
    from mtlspop_lab.flows import forget_issued_certificates
    forget_issued_certificates()
    assertion = lab.FicLeg1Acquirer.for_managed_identity(mi, cloud=authority.cloud).acquire_assertion()
    final = lab.FicLeg2Exchanger.create(app.client_id, app.tenant_id, cloud=authority.cloud
                                        ).exchange_assertion_for_access_token(assertion, "https://graph.microsoft.com")
    return assertion, final


def test_a_two_leg_exchange_draws_imds_then_both_legs(two_leg):
    assertion, final = two_leg
    diagram = sequence_diagram(assertion, final, title="FIC two-leg")
    assert len(diagram.steps) == len(assertion.round_trips) + len(final.round_trips)
    assert diagram.participants == ["App", "IMDS", "STS"]
    mermaid = diagram.mermaid()
    lines = mermaid.splitlines()
    assert lines[:3] == ["---", "title: FIC two-leg", "---"] and lines[3] == "sequenceDiagram"
    assert mermaid.index("Leg 1") < mermaid.index("issuecredential") < mermaid.index("Leg 2")
    requests = [line for line in lines if "->>" in line and "-->>" not in line]
    assert len(requests) == len(diagram.steps)
    assert all(line.strip().startswith("App->>") for line in requests)
    # the leg-2 token request presents leg 1's certificate, and says so
    cert = assertion.binding_certificate.x5t_s256[:8]
    assert f"client cert {cert}…" in requests[-1]
    assert "#" not in mermaid.split("sequenceDiagram", 1)[1] and ";" not in mermaid
    html = diagram.html()
    assert html.count("Your app (msal) →") == len(diagram.steps) and "Leg 2: exchange" in html
    bundle = diagram._repr_mimebundle_()
    # no text/html in the bundle: JupyterLab would prefer it and never draw the diagram
    assert set(bundle) == {"text/vnd.mermaid", "text/plain"}
    assert bundle["text/plain"].count("App -> ") == len(diagram.steps)
    assert diagram.as_html()._repr_html_() == html
    assert not any(contains_secret(v) for v in [*bundle.values(), html])


def test_a_cache_hit_draws_no_arrow(authority):
    app = authority.directory.register_app("sequence-cache")
    acquirer = lab.MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                               cloud=authority.cloud)
    acquirer.acquire_token("https://graph.microsoft.com")
    cached = acquirer.acquire_token("https://graph.microsoft.com")
    diagram = sequence_diagram(cached)
    assert diagram.steps == [] and diagram.cached
    assert "served from the token cache, no request sent" in diagram.mermaid()
    assert "->>" not in diagram.mermaid()
    assert "Served from the token cache" in diagram.html()


def test_a_refused_request_is_drawn_as_a_failed_answer():
    trips = [RoundTrip("token", "token", "POST", "https://127.0.0.1:1/t/oauth2/v2.0/token", 401, 3.0, True,
                       error="invalid_client"),
             RoundTrip("token", "token", "POST", "https://127.0.0.1:1/t/oauth2/v2.0/token", None, 10.0, False,
                       attempt=2, error="ConnectionResetError")]
    diagram = SequenceDiagram.from_round_trips(trips)
    mermaid = diagram.mermaid()
    assert "STS--xApp: 401 in 3.0 ms, new TLS connection" in mermaid
    assert "(retry 1)" in mermaid and "ConnectionResetError in 10.0 ms" in mermaid
    assert "✘" in diagram.html()


def test_text_that_would_break_mermaid_is_neutralised():
    trips = [RoundTrip("leg#1;x", "resource", "GET", "https://127.0.0.1:1/api?a=1", 200, 1.0, False)]
    mermaid = SequenceDiagram.from_round_trips(trips, title="a;b#c").mermaid()
    body = mermaid.split("sequenceDiagram", 1)[1]
    assert ";" not in body and "#" not in body and "participant API as Protected API" in body
