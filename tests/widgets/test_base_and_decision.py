"""The panel base (busy state, readable errors) and the DecisionPanel, headless."""

from __future__ import annotations

import base64

import ipywidgets as widgets
import pytest

from mtlspop_lab.errors import CertificateError, ConfigurationError
from mtlspop_lab.widgets import DecisionPanel, Panel
from mtlspop_lab.workshop import decision


class _TwoButtons(Panel):
    title = "Test panel"

    def __init__(self):
        self.go = widgets.Button(description="Go")
        self.other = widgets.Button(description="Other")
        self.locked = widgets.Button(description="Locked", disabled=True)
        super().__init__([widgets.HBox([self.go, self.other, self.locked])], [])


def test_buttons_are_disabled_while_work_runs_and_restored_after():
    panel = _TwoButtons()
    seen = []

    def work():
        seen.append([(b.description, b.disabled) for b in panel.buttons])
        seen.append(panel.status.value)
        return 42

    assert panel.run(work, busy="Acquiring a token…") == 42
    assert seen[0] == [("Go", True), ("Other", True), ("Locked", True)]
    assert "Acquiring a token" in seen[1]
    assert [(b.description, b.disabled) for b in panel.buttons] == [
        ("Go", False), ("Other", False), ("Locked", True)]
    assert panel.status.value == "" and panel.last_error is None and not panel.busy


def test_a_lab_error_becomes_a_card_with_cause_and_fix_and_no_traceback():
    panel = _TwoButtons()

    def work():
        raise CertificateError("The certificate has no private key.", cause="Loaded from a .cer file.",
                               fix="Load the PFX that holds the key.", code="cert_without_private_key")

    assert panel.run(work) is None
    html = panel.status.value
    assert "mtlspop-error" in html and "✘" in html
    assert "CertificateError" in html and "cert_without_private_key" in html
    assert "Loaded from a .cer file." in html and "Load the PFX that holds the key." in html
    assert "Traceback" not in html and 'File "' not in html
    assert isinstance(panel.last_error, CertificateError)
    assert not any(b.disabled for b in (panel.go, panel.other))


def test_an_unexpected_error_is_readable_and_redacted():
    panel = _TwoButtons()
    # a JWT-shaped string built at run time (no token-like literal in the repository)
    segment = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    token = ".".join(segment(part) for part in (b'{"alg":"RS256"}', b'{"sub":"abcdefghij"}',
                                                 b"signaturesignature"))

    def work():
        raise KeyError(f"no entry for {token}")

    panel.run(work)
    html = panel.status.value
    assert "Unexpected KeyError" in html and "Traceback" not in html
    assert token not in html and token.rsplit(".", 1)[1] not in html


def test_a_second_run_while_busy_is_ignored():
    panel = _TwoButtons()
    calls = []

    def outer():
        calls.append("outer")
        assert panel.run(lambda: calls.append("inner")) is None
        return "done"

    assert panel.run(outer) == "done"
    assert calls == ["outer"]


def test_decision_panel_waits_for_answers():
    panel = DecisionPanel()
    assert panel.recommendation is None
    assert "Answer question 1 and 2" in panel.answer.value
    panel.cross_tenant.value = False
    assert panel.recommendation is None and "Answer question 2" in panel.answer.value


@pytest.mark.parametrize("runs_on, identity", [("azure_single", "system_assigned"),
                                               ("azure_shared", "user_assigned"),
                                               ("outside_azure", "confidential_client")])
def test_decision_panel_no_federation_recommends_vanilla(runs_on, identity):
    panel = DecisionPanel()
    panel.cross_tenant.value = False
    panel.runs_on.value = runs_on
    rec = panel.recommendation
    assert (rec.flow, rec.identity, rec.leg2_identity, rec.round_trips) == ("vanilla", identity, None, 1)
    assert "Recommended: Vanilla flow" in panel.answer.value
    assert decision.IDENTITY_LABELS[identity] in panel.answer.value
    assert "MtlsPopTokenAcquirer" in rec.code and "use_pop=True" in rec.code


@pytest.mark.parametrize("runs_on", list(decision.RUNS_ON))
def test_decision_panel_federation_recommends_two_legs_with_a_confidential_client_for_leg_2(runs_on):
    panel = DecisionPanel()
    panel.runs_on.value = runs_on
    panel.cross_tenant.value = True
    rec = panel.recommendation
    assert (rec.flow, rec.leg2_identity, rec.round_trips) == ("fic_two_leg", "confidential_client", 2)
    assert "Leg 2 (exchange, PoP)" in panel.answer.value
    assert "managed identity cannot perform it" in panel.answer.value
    assert "FicLeg1Acquirer" in rec.code and "exchange_assertion_for_access_token" in rec.code


def test_latency_question_picks_a_region_only_for_a_confidential_client():
    panel = DecisionPanel()
    panel.cross_tenant.value = False
    panel.runs_on.value = "outside_azure"
    panel.latency_critical.value = True
    assert panel.recommendation.region and 'region="westus3"' in panel.recommendation.code
    panel.runs_on.value = "azure_single"
    assert not panel.recommendation.region
    assert "confidential clients only" in panel.answer.value


def test_start_over_clears_the_answers():
    panel = DecisionPanel()
    panel.cross_tenant.value = True
    panel.runs_on.value = "outside_azure"
    assert panel.recommendation is not None
    panel.reset_button.click()
    assert panel.cross_tenant.value is None and panel.runs_on.value is None
    assert panel.recommendation is None and "Waiting for your answers" in panel.answer.value


def test_recommend_rejects_an_unknown_place_with_a_fix():
    with pytest.raises(ConfigurationError) as info:
        decision.recommend(cross_tenant=False, runs_on="mars")
    assert "azure_single" in info.value.fix
