"""BindingPanel, headless: verdicts, API calls, replay with another certificate, pasted tokens."""

from __future__ import annotations

import re

import pytest

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.redact import contains_secret
from mtlspop_lab.widgets import BindingPanel, FlowPanel


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#x27;", "'")


@pytest.fixture
def panels(authority):
    flow = FlowPanel(authority, identity="confidential_client")
    binding = BindingPanel(authority, flow)
    yield flow, binding
    flow.close()


def no_secret(panel):
    for widget in (panel.token_line, panel.verdict_box, panel.call_box, panel.status):
        assert not contains_secret(widget.value)


def test_without_a_flow_token_it_says_to_press_run(panels):
    _flow, binding = panels
    assert binding.source.value == "flow"
    binding.check_button.click()
    assert "Press Run in the FlowPanel first" in text(binding.status.value)
    assert binding.verdict is None and binding.verdict_box.value == ""


def test_pop_token_is_bound_accepted_and_refused_to_an_attacker(panels, authority):
    flow, binding = panels
    flow.run_button.click()
    binding.check_button.click()
    assert binding.verdict.bound and binding.verdict.expected == flow.result.binding_certificate.x5t_s256
    assert "✔ BOUND" in text(binding.verdict_box.value)
    assert "certificate-bound (has cnf.x5t#S256)" in text(binding.token_line.value)

    binding.call_button.click()
    assert binding.response.status_code == 200 and binding.call_error is None
    assert "The API accepted the token" in text(binding.call_box.value)

    binding.replay_button.click()
    assert binding.response is None and binding.call_error.status == 401
    assert binding.call_error.code == "certificate_mismatch"
    shown = text(binding.call_box.value)
    assert "Replay refused" in shown and "the attacker's certificate" in shown and "✘ refused (HTTP 401)" in shown
    # the attacker's thumbprint is shown beside the token's cnf
    assert binding.attacker_certificate.x5t_s256 in shown
    assert flow.result.binding_certificate.x5t_s256 in shown
    assert "mtlspop-attacker-x5t" in binding.call_box.value and "mtlspop-cnf-x5t" in binding.call_box.value
    no_secret(binding)


def test_checking_against_another_certificate_is_not_bound(panels):
    flow, binding = panels
    flow.run_button.click()
    binding.certificate.value = "other"
    binding.check_button.click()
    assert not binding.verdict.bound
    assert binding.verdict.expected == binding.attacker_certificate.x5t_s256
    assert binding.verdict.actual == flow.result.binding_certificate.x5t_s256
    assert "✘ NOT BOUND" in text(binding.verdict_box.value)
    binding.call_button.click()   # "Call the API" with the other certificate is a replay too
    assert binding.call_error.status == 401 and "Replay refused" in text(binding.call_box.value)


def test_a_bearer_token_is_not_bound_and_a_replay_is_accepted(panels):
    flow, binding = panels
    flow.token_type.value = "Bearer"
    flow.run_button.click()
    binding.check_button.click()
    assert binding.view.kind == "bearer" and binding.verdict is None
    assert "Bearer (no cnf claim)" in text(binding.token_line.value)
    shown = text(binding.verdict_box.value)
    assert "Bearer token: nothing to bind" in shown and "NOT BOUND" not in shown and "pass the certificate" not in shown
    binding.replay_button.click()
    assert binding.response.status_code == 200
    shown = text(binding.call_box.value)
    assert "Replay ACCEPTED: a Bearer token works for whoever holds it" in shown
    assert "✘ accepted (HTTP 200)" in shown


def test_a_fresh_token_without_a_flow_panel(authority):
    binding = BindingPanel(authority)
    assert [value for _label, value in binding.source.options] == ["fresh", "pasted"]
    binding.check_button.click()
    assert binding.verdict.bound
    binding.replay_button.click()
    assert binding.call_error.code == "certificate_mismatch"


def test_a_pasted_token_is_checked_but_cannot_be_sent(panels):
    flow, binding = panels
    flow.run_button.click()
    binding.source.value = "pasted"
    assert binding.pasted.layout.display == ""
    binding.check_button.click()
    assert "No token was pasted" in text(binding.status.value)
    binding.pasted.value = "  " + flow.result.access_token + "\n"
    binding.check_button.click()
    assert binding.verdict.bound, "compared with the FlowPanel's binding certificate"
    binding.call_button.click()
    assert "no_private_key" in binding.status.value
    binding.pasted.value = "not-a-token"
    binding.check_button.click()
    assert "TokenFormatError" in text(binding.status.value)
    binding.source.value = "flow"
    assert binding.pasted.layout.display == "none"
    no_secret(binding)


def test_buttons_are_disabled_during_a_call(panels):
    flow, binding = panels
    flow.run_button.click()
    seen = []
    binding.replay_button.observe(lambda change: seen.append(change.new), names="disabled")
    binding.replay_button.click()
    assert seen == [True, False]


def test_a_closed_authority_says_what_to_do():
    authority = LocalAuthority()
    binding = BindingPanel(authority)
    authority.close()
    binding.check_button.click()
    assert "authority_closed" in binding.status.value


def _unsigned_token(claims: dict) -> str:
    """An alg-none token built at run time (a forged token an attacker could write)."""
    import base64
    import json

    def segment(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return segment({"alg": "none", "typ": "JWT"}) + "." + segment(claims) + "."


def test_each_action_replaces_the_previous_verdict(panels):
    """One verdict per action: a garbage paste never sits above the previous token's replay card."""
    flow, binding = panels
    flow.token_type.value = "Bearer"
    flow.run_button.click()
    binding.replay_button.click()
    assert "Replay ACCEPTED" in text(binding.call_box.value)
    binding.source.value = "pasted"
    binding.pasted.value = "garbage"
    binding.check_button.click()
    assert "TokenFormatError" in text(binding.status.value)
    assert binding.call_box.value == "" and binding.verdict_box.value == "" and binding.token_line.value == ""
    binding.pasted.value = ""
    binding.check_button.click()
    assert isinstance(binding.last_error, Exception) and binding.last_error.code == "no_token"
    assert "The box above is empty" in text(binding.status.value)
    assert "does not describe a valid identity" not in text(binding.status.value)


def test_an_unsigned_token_is_called_out(panels):
    flow, binding = panels
    flow.run_button.click()
    forged = _unsigned_token({"aud": "https://graph.microsoft.com", "exp": 4102444800,
                              "cnf": {"x5t#S256": flow.result.binding_certificate.x5t_s256}})
    binding.source.value = "pasted"
    binding.pasted.value = forged
    binding.check_button.click()
    assert binding.last_error is None and binding.view.kind == "unsigned"
    assert binding.view.signature == "unsigned" and "unsigned" in binding.view.codes
    assert "Unsigned token (alg: none)" in text(binding.verdict_box.value)
    assert "mtlspop-kind-unsigned" in binding.verdict_box.value


def test_the_signature_is_checked_against_the_authoritys_keys(panels):
    flow, binding = panels
    flow.run_button.click()
    binding.check_button.click()
    assert binding.view.signature == "verified"
    header, payload, signature = flow.result.access_token.split(".")
    binding.source.value = "pasted"
    binding.pasted.value = f"{header}.{payload}.{signature[::-1]}"   # a tampered signature
    binding.check_button.click()
    assert binding.view.signature == "invalid"
    assert "does NOT verify" in text(binding.verdict_box.value)
