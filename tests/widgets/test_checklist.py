"""The executable Testing Checklist and its panel: each item passes with evidence, or fails with it."""

from __future__ import annotations

import logging
import re

import pytest

import mtlspop_lab as lab
from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.certs import Certificate
from mtlspop_lab.errors import ConfigurationError
from mtlspop_lab.redact import contains_secret
from mtlspop_lab.widgets import ChecklistPanel
from mtlspop_lab.workshop import checklist

KEYS = ["versions", "token_acquired", "binding_certificate", "protected_resource", "certificate_rotation",
        "error_handling", "no_secrets_in_logs"]


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_every_item_passes_on_the_embedded_authority_with_evidence(authority):
    progress = []
    report = lab.run_checklist(authority=authority, on_progress=lambda d, t, title: progress.append((d, t)))
    assert [r.key for r in report][:7] == KEYS
    # msal 1.39 has no native mTLS PoP: the versions item says so instead of passing
    assert [r.status for r in report][:7] == ["skip"] + ["pass"] * 6, str(report)
    assert report["versions"].evidence.startswith(checklist.NO_NATIVE_POP)
    assert [r.status for r in report][7:] == ["manual"] * 3
    assert report.passed and report.counts() == {"pass": 6, "fail": 0, "skip": 1, "manual": 3}
    assert progress == [(i, 7) for i in range(8)]
    binding = report["binding_certificate"].evidence
    thumbprint = re.search(r"x5t#S256 (\S+) = token cnf", binding).group(1)
    assert len(thumbprint) == 43
    assert "HTTP 200" in report["protected_resource"].evidence
    assert "another certificate: HTTP 401 (certificate_mismatch)" in report["protected_resource"].evidence
    assert "[503, 200]" in report["error_handling"].evidence
    assert "after rotate_certificate: new token from the identity provider" in report["certificate_rotation"].evidence
    assert re.search(r"\d+ log records", report["no_secrets_in_logs"].evidence)
    html = report._repr_html_()
    assert "✔ PASS" in text(html) and "✎ MANUAL" in text(html) and not contains_secret(html + str(report))


@pytest.mark.parametrize("uami", [False, True])
def test_a_managed_identity_on_a_cloud_without_knobs_skips_what_it_cannot_do(authority, uami):
    identity = (lab.ManagedIdentityId.user_assigned_client_id(authority.directory.user_assigned[1].client_id)
                if uami else lab.ManagedIdentityId.system_assigned())
    report = lab.run_checklist(cloud=authority.cloud, identity=identity)
    assert report["certificate_rotation"].status == "skip"
    assert "confidential client" in report["certificate_rotation"].evidence
    # error handling ran, retries could not: half an item is not called PASS
    assert report["error_handling"].status == "skip"
    assert "retry of 429/5xx not exercised" in report["error_handling"].evidence
    assert "with cause and fix" in report["error_handling"].evidence
    assert report["protected_resource"].evidence.endswith("HTTP 200")
    assert report.passed and "– SKIPPED" in text(report._repr_html_())


def test_rotation_on_a_cloud_without_knobs_needs_the_second_certificate(authority):
    app = authority.directory.register_app("checklist-live-like")
    identity = (app.client_id, app.tenant_id, app.certificate)
    report = lab.run_checklist(cloud=authority.cloud, identity=identity)
    assert report["certificate_rotation"].status == "skip"
    assert "rotated_certificate=" in report["certificate_rotation"].evidence
    second = Certificate.create_self_signed("CN=checklist-second")
    authority.directory.add_certificate(app, second)
    report = lab.run_checklist(cloud=authority.cloud, identity=identity, rotated_certificate=second)
    assert report["certificate_rotation"].status == "pass"
    assert second.x5t_s256[:12] in report["certificate_rotation"].evidence


def test_an_identity_that_cannot_get_a_token_fails_with_the_reason(authority):
    ghost = lab.ManagedIdentityId.user_assigned_client_id("0b6b3b9e-1f0c-4c4e-9a55-000000000000")
    report = lab.run_checklist(cloud=authority.cloud, identity=ghost)
    assert report["versions"].status == "skip"           # msal 1.39: no native mTLS PoP
    token = report["token_acquired"]
    assert token.status == "fail" and "ManagedIdentityError [identity_not_assigned]" in token.evidence
    for key in ("binding_certificate", "protected_resource", "error_handling", "no_secrets_in_logs"):
        assert report[key].status == "fail" and "No token was acquired" in report[key].evidence
    assert not report.passed and "✘ FAIL" in text(report._repr_html_())


def test_a_resource_that_refuses_pop_fails_the_token_item(authority):
    report = lab.run_checklist(authority=authority, resource="https://legacy.contoso.example")
    assert report["token_acquired"].status == "fail"
    assert "AADSTS392196" in report["token_acquired"].evidence and "Bearer" in report["token_acquired"].evidence


def test_the_versions_item_does_not_pass_on_the_version_number_alone(authority, monkeypatch):
    """msal >= the floor is not enough: the item passes only when msal's own API takes
    mtls_proof_of_possession (by signature), and says the lab's path is in use otherwise."""
    assert checklist._version_tuple(lab_msal_version()) >= checklist._version_tuple(checklist.MSAL_FLOOR)
    report = lab.run_checklist(authority=authority)
    assert report["versions"].status == "skip" and "msal has no native mTLS PoP" in report["versions"].evidence

    import msal

    original = msal.ConfidentialClientApplication.acquire_token_for_client

    def acquire_token_for_client(self, scopes, claims_challenge=None, mtls_proof_of_possession=False, **kwargs):
        return original(self, scopes, claims_challenge=claims_challenge, **kwargs)

    monkeypatch.setattr(msal.ConfidentialClientApplication, "acquire_token_for_client", acquire_token_for_client)
    report = lab.run_checklist(authority=authority)
    assert report["versions"].status == "pass" and "mtls_proof_of_possession" in report["versions"].evidence
    caps = lab.capabilities(probe=False)
    assert caps.msal_native_mtls_pop and caps.mtls_pop_path.startswith("msal's own API is available")


def lab_msal_version() -> str:
    from importlib import metadata
    return metadata.version("msal")


def test_an_msal_below_the_floor_fails_the_versions_item(authority, monkeypatch):
    monkeypatch.setattr(checklist, "MSAL_FLOOR", "99.0")
    report = lab.run_checklist(authority=authority)
    assert report["versions"].status == "fail" and "older than 99.0" in report["versions"].evidence


class _LeakyFilter(logging.Filter):
    """A careless library that logs a complete token."""

    def __init__(self, token: str):
        super().__init__()
        self.token = token

    def filter(self, record):
        record.msg = f"{record.msg} Authorization: mtls_pop {self.token}"
        return True


def test_a_log_line_with_a_token_fails_the_logging_item(authority):
    token = lab.MtlsPopTokenAcquirer.for_confidential_client(
        *(lambda a: (a.client_id, a.tenant_id, a.certificate))(authority.directory.register_app("leak-source")),
        cloud=authority.cloud).acquire_token("https://graph.microsoft.com").access_token
    leaky = _LeakyFilter(token)
    logger = logging.getLogger("urllib3.connectionpool")
    logger.addFilter(leaky)
    try:
        report = lab.run_checklist(authority=authority)
    finally:
        logger.removeFilter(leaky)
    item = report["no_secrets_in_logs"]
    assert item.status == "fail" and "contain a token or key" in item.evidence
    assert not contains_secret(str(report))


def test_a_closed_authority_is_refused():
    authority = LocalAuthority()
    authority.close()
    with pytest.raises(ConfigurationError) as info:
        lab.run_checklist(authority=authority)
    assert info.value.code == "authority_closed"


def test_panel_runs_each_local_target(authority):
    panel = ChecklistPanel(authority)
    assert [value for _l, value in panel.target.options] == ["local_app", "local_sami", "local_uami", "live"]
    seen = []
    panel.progress.observe(lambda change: seen.append(change.new), names="value")
    panel.run_button.click()
    assert panel.report.passed and panel.report.counts()["pass"] == 6
    assert seen == list(range(1, 8))
    assert panel.progress.layout.visibility == "hidden" and not panel.run_button.disabled
    assert "6 passed, 0 failed" in text(panel.report_box.value)
    panel.target.value = "local_sami"
    panel.run_button.click()
    assert panel.report.counts() == {"pass": 4, "fail": 0, "skip": 3, "manual": 3}   # rotation; retries; versions


def test_panel_live_target_explains_what_live_needs(authority):
    from mtlspop_lab.flows.capabilities import capabilities
    panel = ChecklistPanel(authority)
    panel.target.value = "live"
    panel.run_button.click()
    if capabilities(probe=True, timeout=0.5).imds_reachable:
        assert panel.report is not None      # on an Azure host the live checklist really runs
    else:
        shown = text(panel.status.value)
        assert "live_unreachable" in shown and "Run this notebook on an Azure host" in shown
        assert panel.report is None and panel.report_box.value == ""


def test_panel_on_a_closed_authority_says_what_to_do():
    authority = LocalAuthority()
    panel = ChecklistPanel(authority)
    authority.close()
    panel.run_button.click()
    assert "authority_closed" in panel.status.value
