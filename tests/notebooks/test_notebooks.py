"""Every notebook runs top to bottom offline, leaves nothing running, and shows no secret.

Each notebook is executed with nbclient on a python3 kernel, in a temporary
copy of ``notebooks/`` (outputs never go back into the repository), within a
60 s budget for the whole notebook: each cell's timeout is what is left of it
(a workshop room cannot wait longer; this is a hang guard, not a benchmark). Then every output (text, HTML, Mermaid, errors) is
scanned with :func:`mtlspop_lab.redact.contains_secret`: a complete signed JWT
or a PEM private key anywhere fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mtlspop_lab.redact import contains_secret

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_BUDGET_S = 60
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ["00_start_here", "01_vanilla", "02_fic_two_leg", "03_binding_and_replay",
            "04_latency_and_cache", "05_troubleshooting", "06_live_azure", "07_beyond_entra", "08_azure_sdk",
            "09_workload_identity_federation"]
# code only: live Azure; two servers side by side; the Azure SDK's own objects; external issuers
NO_PANEL = {"06_live_azure", "07_beyond_entra", "08_azure_sdk", "09_workload_identity_federation"}

# What each notebook must show once run: the idea it teaches, seen in its outputs.
SHOWS = {
    "00_start_here": ["BOUND: the token"],
    "01_vanilla": ["token type         : mtls_pop", "| second call: cache", "bound to the app's certificate: True",
                   "Bearer token, binding certificate: None", "'scheme': 'mtls_pop'",
                   "forced: identity_provider | new token: True", "the cache holds the forced one: True",
                   "| source: IMDS |", "| source: global | note:", "send_x5c=False Bearer: refused, AADSTS700027",
                   "not allowed: bearer_fallback_not_allowed", "allowed    : Bearer"],
    "02_fic_two_leg": ["aud=api://AzureADTokenExchange", "same certificate: True", "text/vnd.mermaid",
                       "no_matching_federated_credential", "A managed identity cannot perform FIC leg 2.",
                       "-> Bearer | host: login | client certificate: None", "mtls_certificate_not_provided",
                       "tls_certificate_mismatch (AADSTS500181)", "issued by tenant fabrikam",
                       "AADSTS700236 cross_tenant_federated_credential"],
    "03_binding_and_replay": ["BOUND: the token", "API: 401", "the token is bound to another certificate",
                              "with the Bearer scheme", "API: 403 insufficient_permissions",
                              "cached token: cache | roles: None", "new token   : identity_provider | roles: ['Data.Read']"],
    "04_latency_and_cache": ["reused vanilla PoP app", "image/png", "again : cache             same token: True",
                             "later : identity_provider new token: True", "(round-trip times, not measurements)",
                             "cold vanilla PoP app westus3 (model)", "model azure-same-region:"],
    "05_troubleshooting": ["[imds_unreachable]", "[identity_not_assigned]", "6 passed, 0 failed, 1 skipped",
                           "msal has no native mTLS PoP; the lab's own path is in use",
                           "attestation_replayed          [attestation_key_mismatch] reproduced: True"],
    "06_live_azure": ["Offline: nothing was sent.", "unattested key: attestation_required",
                      "attested key  : mtls_pop | software key, attested", "'attestation'",
                      "msal has no native mTLS PoP; the lab's own path is in use"],
    "09_workload_identity_federation": ["system:serviceaccount:orders:orders-api", "leg 2: Bearer | appid = True",
                                        "mtls_certificate_not_provided", "AADSTS7002138", "AADSTS700213",
                                        "AADSTS70021 ", "AADSTS700211", "AADSTS700212", "AADSTS700024",
                                        "AADSTS7000272", "OK: Bearer token"],
    "07_beyond_entra": ["cnf.x5t#S256", "Entra-style   token_type=mtls_pop", "another certificate: bound=False",
                        "The local authority is closed."],
    "08_azure_sdk": ["ManagedIdentityCredential (UAMI)", "ClientAssertionCredential (FIC leg 2)  token_type=Bearer",
                     "bound leg 1 sent unbound -> leg 2: Bearer | cnf: False",
                     "MtlsPopCredential                      token_type=mtls_pop bound(cnf)=True",
                     "BearerTokenCredentialPolicy + default transport : 401",
                     "BearerTokenCredentialPolicy + MtlsPopTransport  : 401",
                     "MtlsPopAuthenticationPolicy + MtlsPopTransport  : 200  mtls_pop",
                     "policy refused before sending: [bound_token_wrong_scheme]", "refreshed before expiry: True",
                     "presented certificate follows the token: True",
                     "async (aiohttp): 200 mtls_pop | certificate matches: True", "The local authority is closed."],
}
# 07 with node (always in CI): the oidc-provider side ran; without node: it says so and shows Entra only.
RFC8705_SIDE = ["oidc-provider token_type: Bearer", "bound by: cnf.x5t#S256", "RFC 8705 (oidc-provider)",
                "oidc-provider token_type=Bearer   right certificate: bound=True | another certificate: bound=False",
                "API: 200 with the Bearer scheme"]
NO_NODE_SENTENCE = "oidc-provider cannot run here, so this notebook shows only the Entra side."

# Appended to the temporary copy after Run All: every panel on the page is used, as a learner would
# after Run All. Each action must work (the authority is still open) and say so on screen.
_USE_PANELS = """
import gc as _gc, json as _json
from mtlspop_lab.widgets import Panel as _Panel
_order = ["DecisionPanel", "FlowPanel", "BindingPanel", "TroubleshootPanel", "ChecklistPanel", "LatencyPanel"]
_panels = sorted({id(o): o for o in _gc.get_objects() if issubclass(type(o), _Panel)}.values(),
                 key=lambda p: _order.index(type(p).__name__))
_used = []
for _p in _panels:
    _name = type(_p).__name__
    if _name == "DecisionPanel":
        _p.cross_tenant.value, _p.runs_on.value = True, "outside_azure"
        _shown = _p.answer.value
    elif _name == "FlowPanel":
        _p.run_button.click()
        _shown = _p.card.value
    elif _name == "BindingPanel":
        _p.check_button.click()
        _p.replay_button.click()
        _shown = _p.verdict_box.value + _p.call_box.value
    elif _name == "TroubleshootPanel":
        _p.reproduce_button.click()
        _shown = _p.outcome.value
    elif _name == "ChecklistPanel":
        _p.run_button.click()
        _shown = _p.report_box.value
    elif _name == "LatencyPanel":
        _p.iterations.value, _p.delay.value = 2, 1
        _p.run_button.click()
        _p.wait(60)
        _shown = _p.table.value
    _error = _p.last_error
    _used.append({"panel": _name, "error": None if _error is None else getattr(_error, "code", repr(_error)),
                  "shown": len(_shown)})
print("PANELS " + _json.dumps(_used))
"""

# Appended last: proves every authority (and oidc-provider) can be closed and nothing else is left.
_CLOSE = """
if "authority" in globals():
    authority.close()
"""
_LEAK_CHECK = """
import gc, json
from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.interop.oidc_provider import OidcProvider
# type(), not isinstance(): a dead weakref.proxy among gc's objects raises on isinstance
_open = [a for a in gc.get_objects() if type(a) is LocalAuthority and not a.closed]
_op = [o for o in gc.get_objects() if type(o) is OidcProvider and not o.closed]
print(json.dumps({"open_authorities": len(_open), "open_oidc_providers": len(_op)}))
"""


def kernel_env() -> dict:
    """The kernel imports this checkout, installed or not."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return env


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def oidc_provider_can_run() -> bool:
    """node and npm are here and the pinned oidc-provider is installed (the interop tests install it)."""
    from mtlspop_lab.interop import oidc_provider

    if not (shutil.which("node") and shutil.which("npm")):
        return False
    return oidc_provider.installed_version(oidc_provider.project_dir()) == oidc_provider.pinned_version()


SOLUTION_RE = re.compile(r"```python\n# solution (\S+)\n(.*?)```", re.S)
SOLUTION_MARK = "# instructor's solution, appended by the test"


def solutions(name: str) -> list[str]:
    """The exercise solutions of ``notebooks/README.md`` for one notebook, in order."""
    text = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    return [code for notebook, code in SOLUTION_RE.findall(text) if notebook == name]


def execute(name: str, workdir: Path, env: dict | None = None, *, use_panels: bool = True) -> nbformat.NotebookNode:
    """Run All on a temporary copy, then the README's exercise solutions, then (``use_panels``) use every
    panel, then close and check for leaks."""
    shutil.copytree(NOTEBOOK_DIR, workdir, dirs_exist_ok=True)
    path = workdir / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for code in solutions(name):
        nb.cells.append(nbformat.v4.new_code_cell(f"{SOLUTION_MARK}\n{code}"))
    if use_panels:
        nb.cells.append(nbformat.v4.new_code_cell(_USE_PANELS))
    nb.cells.append(nbformat.v4.new_code_cell(_CLOSE))
    nb.cells.append(nbformat.v4.new_code_cell(_LEAK_CHECK))
    deadline = time.monotonic() + NOTEBOOK_BUDGET_S
    client = NotebookClient(nb, timeout=NOTEBOOK_BUDGET_S, kernel_name="python3", allow_errors=False,
                            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                            resources={"metadata": {"path": str(workdir)}})
    client.execute(env=env or kernel_env(), cwd=str(workdir))
    return nb


def all_output_text(nb: nbformat.NotebookNode) -> list[str]:
    """Every string a reader could see or copy from the outputs, per output."""
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            texts.append(json.dumps(output))  # text/plain, text/html, text/vnd.mermaid, widget state...
    texts.append(json.dumps(nb.metadata.get("widgets", {})))
    return texts


def test_the_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a code cell was committed with outputs"
            assert cell.execution_count is None, f"{path.name}: execution counts were committed"
    assert "widgets" not in nb.metadata, f"{path.name}: widget state was committed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_teaches_with_text_a_panel_and_code(path):
    nb = nbformat.read(path, as_version=4)
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert markdown and markdown[0].source.startswith("# "), "each notebook opens with a title"
    assert "import mtlspop_lab as lab" in code
    if path.stem not in NO_PANEL:
        assert "Panel(" in code, "each workshop notebook shows a panel"
    assert "shut down this kernel" in markdown[-1].source.lower(), \
        "each notebook ends by telling the learner to shut its kernel down"
    if path.stem not in NO_PANEL:
        # Run All must leave the panels working: no cell of a panel notebook closes the authority
        assert "authority.close()" not in code, "a workshop notebook must not close its authority in a cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline_and_shows_no_secret(path, tmp_path):
    started = time.perf_counter()
    nb = execute(path.stem, tmp_path / "nb")
    elapsed = time.perf_counter() - started
    print(f"{path.stem}: executed in {elapsed:.1f} s")
    check_ran_and_taught(nb, path.stem, SHOWS[path.stem])
    check_panels_work_after_run_all(nb, path.stem)
    check_exercises(nb, path.stem)
    if path.stem == "07_beyond_entra":
        if in_ci():
            assert oidc_provider_can_run(), "CI must run 07 with node and the pinned oidc-provider"
        expected = RFC8705_SIDE if oidc_provider_can_run() else [NO_NODE_SENTENCE]
        check_ran_and_taught(nb, path.stem, expected)


def test_beyond_entra_runs_without_node(tmp_path):
    """Binder without Node.js: 07 still runs top to bottom, says why, and shows the Entra side only."""
    env = kernel_env()
    env["PATH"] = str(tmp_path / "empty-bin")  # no node, no npm (the kernel is started by absolute path)
    nb = execute("07_beyond_entra", tmp_path / "nb", env=env, use_panels=False)
    check_ran_and_taught(nb, "07_beyond_entra", SHOWS["07_beyond_entra"] + [NO_NODE_SENTENCE, "node and npm are needed"])
    shown = "\n".join(all_output_text(nb))
    assert "RFC 8705 (oidc-provider)" not in shown and "oidc-provider token_type" not in shown


PANELS = {"00_start_here": ["DecisionPanel"], "01_vanilla": ["FlowPanel"], "02_fic_two_leg": ["FlowPanel"],
          "03_binding_and_replay": ["FlowPanel", "BindingPanel"], "04_latency_and_cache": ["LatencyPanel"],
          "05_troubleshooting": ["TroubleshootPanel", "ChecklistPanel"]}


def check_panels_work_after_run_all(nb: nbformat.NotebookNode, name: str) -> None:
    """The cell appended after Run All used every panel: each action worked and showed something."""
    line = next((o.get("text", "") for c in nb.cells for o in c.get("outputs", [])
                 if o.get("text", "").startswith("PANELS ")), None)
    assert line is not None, f"{name}: the panel-using cell printed nothing"
    used = json.loads(line[len("PANELS "):])
    assert sorted(u["panel"] for u in used) == sorted(PANELS.get(name, []))
    for use in used:
        assert use["error"] is None, f"{name}: {use['panel']} failed after Run All: {use['error']}"
        assert use["shown"] > 0, f"{name}: {use['panel']} showed nothing"


def cell_text(cell) -> str:
    return "\n".join(json.dumps(o) for o in cell.get("outputs", []))


def check_exercises(nb: nbformat.NotebookNode, name: str) -> None:
    """Each 'your turn' cell, left as committed (None), says 'Not yet' (a wrong answer, no error);
    each README solution, run after Run All, says 'Right'."""
    from mtlspop_lab.workshop.exercises import EXERCISES

    checks = EXERCISES.get(name, [])
    turns = [c for c in nb.cells if c.cell_type == "code" and "lab.exercises.check_" in c.source
             and SOLUTION_MARK not in c.source]
    answers = [c for c in nb.cells if c.cell_type == "code" and SOLUTION_MARK in c.source]
    assert len(turns) == len(checks) == len(answers), f"{name}: exercises, checks and solutions differ"
    for check, turn, answer in zip(checks, turns, answers):
        assert f"lab.exercises.{check.__name__}(" in turn.source and f"{check.__name__}(" in answer.source
        assert "mtlspop-exercise-failed" in cell_text(turn) and "Not yet" in cell_text(turn)
        assert "Right (" in cell_text(answer), f"{name}: the README's solution for {check.__name__} is not right"


def check_ran_and_taught(nb: nbformat.NotebookNode, name: str, needles: list[str]) -> None:
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    leaks = [text[:200] for text in all_output_text(nb) if contains_secret(text)]
    assert leaks == [], f"{name}: a complete token or private key is in the outputs"
    leak_check = nb.cells[-1].outputs[0]["text"]
    assert json.loads(leak_check) == {"open_authorities": 0, "open_oidc_providers": 0}, \
        f"{name} left an authority or an oidc-provider running"
    # the notebook really taught its idea: what it must show is in its outputs
    shown = "\n".join(text for text in all_output_text(nb))
    missing = [needle for needle in needles if json.dumps(needle)[1:-1] not in shown]
    assert missing == [], f"{name} does not show {missing}"
