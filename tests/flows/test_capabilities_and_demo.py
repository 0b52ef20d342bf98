"""capabilities() answers by probing; `mtlspop-lab demo` runs the whole matrix."""

from __future__ import annotations

import json

from mtlspop_lab.flows.capabilities import capabilities
from mtlspop_lab.flows.capabilities import accepts_mtls_pop, msal_native_mtls_pop  # noqa: I001
from mtlspop_lab.cli.demo import main as demo_main


def test_feature_probe_reads_signatures():
    def future(self, scopes, claims_challenge=None, mtls_proof_of_possession=False, **kwargs):
        return None

    def today(self, scopes, claims_challenge=None, **kwargs):
        return None

    assert accepts_mtls_pop(future) and not accepts_mtls_pop(today)
    assert msal_native_mtls_pop() is False            # msal 1.39 installed here has no such parameter


def test_capabilities_without_probes():
    report = capabilities(probe=False)
    assert report.msal and report.cryptography and report.python
    assert report.imds_reachable is None and report.live_login_reachable is None
    assert report.targets["embedded LocalAuthority"].startswith("yes")
    text = str(report)
    assert "msal has native mTLS PoP" in text and "not probed" in text
    # msal 1.39: said plainly, in the table and the first note
    assert report.mtls_pop_path == "msal has no native mTLS PoP; the lab's own path is in use"
    assert report.mtls_pop_path in text and report.notes[0].startswith(report.mtls_pop_path)
    # binding strength: attested hardware keys are not available here; the lab's stand-in says what it is
    strengths = report.binding_strength
    assert "stand-in" in strengths["managed identity PoP, embedded authority, attestation=True"]
    assert strengths["managed identity PoP, embedded authority, attestation=False"] == "software key, unattested"
    assert strengths["Bearer"].startswith("none")
    assert "KeyGuard" in strengths["managed identity PoP, live Azure"] and "binding: Bearer" in text
    assert "<table>" in report._repr_html_()
    json.dumps(report.as_dict())


def test_capabilities_probe_local_imds(authority):
    report = capabilities(cloud=authority.cloud, timeout=0.5)
    assert report.imds_reachable is True and report.imds_v2 is True
    assert report.live_login_reachable is False          # this machine is offline
    assert "not reachable" in str(report)
    authority.set_imds_mode("v1_only")
    assert capabilities(cloud=authority.cloud, timeout=0.5).imds_v2 is False
    authority.set_imds_mode("absent")
    absent = capabilities(cloud=authority.cloud, timeout=0.5)
    assert absent.imds_reachable is False and "not on Azure" in absent.targets["live IMDS (managed identity)"]


def test_demo_runs_the_matrix(capsys):
    assert demo_main(["--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 20
    identities = {r["identity"] for r in rows}
    assert {"SAMI", "UAMI client_id", "UAMI resource_id", "UAMI object_id", "confidential client"} <= identities
    fic = [r for r in rows if r["flow"] == "FIC two-leg"]
    assert len(fic) == 4 and {r["token_type"] for r in fic} == {"Bearer", "mtls_pop"}
    assert [r["token_type"] for r in rows if r["flow"] == "FIC unbound (jwt-bearer)"] == ["Bearer"]
    cross = [r for r in rows if r["flow"] == "FIC cross-tenant"]
    assert {r["token_type"] for r in cross} == {"Bearer", "mtls_pop"}
    assert {r["identity"] for r in cross} == {"SAMI (lab) -> app (fabrikam)"}
    wif = {r["identity"]: r["token_type"] for r in rows if r["flow"] == "workload identity federation"}
    assert wif == {"Kubernetes service account -> app": "Bearer", "GitHub Actions workflow -> app": "Bearer"}
    for r in rows:
        assert r["api"] == "200"
        assert r["binding"] == ("bound" if r["token_type"] == "mtls_pop" else "-")
    assert [r["source"] for r in rows if r["flow"] == "vanilla (again)"] == ["cache"]
    assert demo_main([]) == 0
    table = capsys.readouterr().out
    assert "identity" in table and "binding" in table and "eyJ" not in table
