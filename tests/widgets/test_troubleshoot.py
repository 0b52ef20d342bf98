"""The failure catalogue and its panel: each symptom is provoked for real and explained."""

from __future__ import annotations

import re

import pytest

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.errors import ConfigurationError, LabError
from mtlspop_lab.redact import contains_secret
from mtlspop_lab.widgets import TroubleshootPanel
from mtlspop_lab.workshop import troubleshoot

EXPECTED_CODES = {
    "imds_absent": "imds_unreachable",
    "imds_v1_only": "mtls_pop_token_not_supported_in_imds_v1",
    "uami_unknown": "identity_not_assigned",
    "binding_certificate_null": "pop_not_requested",
    "certificate_without_key": "cert_without_private_key",
    "certificate_expired": "certificate_expired",
    "fic_not_configured": "no_matching_federated_credential",
    "fic_expired_assertion": "assertion_expired",
    "fic_wrong_certificate": "tls_certificate_mismatch",
    "managed_identity_leg2": "managed_identity_cannot_do_leg2",
    "fic_cross_tenant": "cross_tenant_federated_credential",
    "fic_not_provisioned": "application_not_found",
    "unbound_leg2_pop": "mtls_certificate_not_provided",
    "bearer_leg1_as_jwt_pop": "tls_certificate_mismatch",
    "wif_no_credential": "no_matching_federated_credential",
    "wif_subject_case": "federated_subject_case_mismatch",
    "wif_issuer_slash": "no_matching_federated_credential",
    "wif_audience": "federated_audience_mismatch",
    "wif_expired": "assertion_expired",
    "wif_unknown_key": "federated_signing_key_not_found",
    "tenant_not_found": "tenant_not_found",
    "application_not_found": "application_not_found",
    "resource_without_pop": "resource_does_not_support_bound_tokens",
    "insufficient_permissions": "insufficient_permissions",
    "wrong_audience": "invalid_token",
    "stolen_token": "certificate_mismatch",
    "throttled": "throttled",
    "bearer_downgrade": "token_type_mismatch",
    "msal_no_native_pop": "msal_has_no_native_mtls_pop",
    "attestation_required": "attestation_required",
    "attestation_replayed": "attestation_key_mismatch",
    "sni_without_x5c": "certificate_not_registered",
    "sni_wrong_ca": "invalid_certificate_chain",
    "bearer_fallback_not_allowed": "bearer_fallback_not_allowed",
    "resource_refuses_bound_token": "bound_token_not_supported",
}


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_catalogue_covers_the_seed_list():
    assert set(troubleshoot.FAILURES) == set(EXPECTED_CODES)
    symptoms = " | ".join(f.symptom for f in troubleshoot.FAILURES.values())
    for seed_symptom in ("Timeout calling IMDS endpoint", "Unable to get UAMI token",
                         "BindingCertificate property is null", "Certificate not found or Access denied",
                         "Invalid assertion (FIC Leg 2)", "Insufficient permissions", "Tenant not found",
                         "Application not found"):
        assert seed_symptom in symptoms


@pytest.mark.parametrize("key", list(EXPECTED_CODES))
def test_each_failure_is_reproduced_with_cause_and_fix(authority, key):
    mode, lifetime = authority.imds_mode, authority.token_lifetime_s
    authority.set_attestation("optional")
    outcome = troubleshoot.reproduce(key, authority)
    assert outcome.as_expected, str(outcome)
    assert isinstance(outcome.error, LabError)
    assert outcome.code == EXPECTED_CODES[key]
    assert outcome.error.cause and outcome.error.fix
    assert not contains_secret(str(outcome.error)) and not contains_secret(outcome._repr_html_())
    # the knobs it turned are back
    assert (authority.imds_mode, authority.token_lifetime_s, list(authority.pending_faults)) == (mode, lifetime, [])
    assert authority.attestation_policy == "optional"


def test_a_failure_that_does_not_happen_is_reported_as_not_reproduced():
    failure = troubleshoot.Failure("nothing", "Nothing breaks", "Test", "Do nothing.",
                                   (ConfigurationError,), lambda authority: None)
    outcome = troubleshoot.Reproduction(failure, None, "no error was raised")
    assert not outcome.as_expected
    assert "no: the lab did not fail as expected" in text(outcome._repr_html_())


def test_unknown_failure_key_is_a_configuration_error(authority):
    with pytest.raises(ConfigurationError) as info:
        troubleshoot.reproduce("gremlins", authority)
    assert "fic_not_configured" in info.value.fix


def test_panel_reproduces_the_chosen_failure(authority):
    panel = TroubleshootPanel(authority)
    panel.failure.value = "stolen_token"
    assert "attacker" in panel.how.value
    panel.reproduce_button.click()
    shown = text(panel.outcome.value)
    assert panel.reproduction.failure.key == "stolen_token"
    assert "ResourceAccessError [certificate_mismatch]" in shown
    assert "Likely cause" in shown and "What to do" in shown
    assert panel.reproduction.as_expected is True and "✔" in shown
    # the requests of the reproduction, with the refused call (401) among them
    requests = text(panel.requests.html.value)
    assert "Requests (" in requests and "401" in requests and "API call" in requests
    assert not panel.reproduce_button.disabled


def test_panel_reproduces_everything_in_one_table(authority):
    panel = TroubleshootPanel(authority)
    panel.all_button.click()
    assert len(panel.reproductions) == len(troubleshoot.FAILURES)
    shown = text(panel.outcome.value)
    assert f"{len(troubleshoot.FAILURES)} of {len(troubleshoot.FAILURES)} failures reproduced" in shown
    assert "not reproduced" not in shown


def test_panel_on_a_closed_authority_says_what_to_do():
    authority = LocalAuthority()
    panel = TroubleshootPanel(authority)
    authority.close()
    panel.reproduce_button.click()
    assert "authority_closed" in panel.status.value and panel.outcome.value == ""
