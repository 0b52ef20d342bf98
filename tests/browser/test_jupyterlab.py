"""A real browser: Run All in each workshop notebook, then every panel, in both themes.

Chromium (Debian's, driven by Playwright) opens each notebook in a headless JupyterLab,
runs *Run ▸ Run All Cells* (nothing closes the authority any more), then uses every
panel as a learner would: a bound token and its requests (with one secret revealed), a
pasted token in the BindingPanel, a replay, a Stop in the middle of a long latency run,
a failure reproduced, the checklist. Each panel is photographed in the light and the dark
theme into test-artifacts/browser/ (git-ignored) for a reviewer to look at.
"""

from __future__ import annotations

import re

from conftest import ARTIFACTS

NOTEBOOK_TIMEOUT_MS = 60_000
X5T_S256 = re.compile(r"^[A-Za-z0-9_-]{43}$")


def open_notebook(browser, lab, name: str):
    page = browser.new_page(viewport={"width": 1280, "height": 2200})
    page.set_default_timeout(NOTEBOOK_TIMEOUT_MS)
    # a workspace of its own: JupyterLab would otherwise reopen the previous page's notebooks
    page.goto(f"{lab['url']}/lab/workspaces/{name}/tree/notebooks/{name}.ipynb?reset&token={lab['token']}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    # wait for the kernel: the session context reports a kernel that is idle
    page.wait_for_function(
        """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                   const k = w && w.sessionContext && w.sessionContext.session
                             && w.sessionContext.session.kernel;
                   return k && k.status === 'idle'; }""")
    return page


def run_cells(page, first: int, last: int) -> None:
    """Run cells first..last (inclusive) through JupyterLab's own commands, and wait."""
    try:
        page.evaluate(
            """async ([first, last, ms]) => {
                   const panel = window.jupyterapp.shell.currentWidget;
                   const nb = panel.content;
                   const run = async () => {
                       for (let i = first; i <= last; i++) {
                           nb.activeCellIndex = i;
                           await window.jupyterapp.commands.execute('notebook:run-cell');
                       }
                   };
                   const late = new Promise((_, no) => setTimeout(() => no(new Error('cells still running')), ms));
                   await Promise.race([run(), late]);
               }""", [first, last, NOTEBOOK_TIMEOUT_MS])
        _wait_idle(page, first, last)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"failure-{page.url.rsplit('/', 1)[-1][:30]}.png"))
        raise


def _wait_idle(page, first: int, last: int) -> None:
    page.wait_for_function(
        """([first, last]) => {
               const panel = window.jupyterapp.shell.currentWidget;
               const cells = panel.content.widgets.slice(first, last + 1);
               const pending = cells.filter(c => c.model.type === 'code'
                     && (c.model.executionCount === null || c.promptNode.textContent.includes('*')));
               return pending.length === 0 && panel.sessionContext.session.kernel.status === 'idle';
           }""", arg=[first, last])


def cell_count(page) -> int:
    return page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length")


def error_outputs(page) -> list[str]:
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                        ).all_inner_texts() + page.locator(".jp-RenderedText[data-mime-type="
                                                           "'application/vnd.jupyter.error']").all_inner_texts()


LIGHT, DARK = "JupyterLab Light", "JupyterLab Dark"


def run_all(page) -> None:
    """Run ▸ Run All Cells, then wait until every code cell ran and the kernel is idle."""
    count = cell_count(page)
    try:
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        _wait_idle(page, 0, count - 1)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"failure-runall-{page.url.rsplit('/', 1)[-1][:30]}.png"))
        raise
    assert [t for t in error_outputs(page) if "Traceback" in t] == []


def set_theme(page, theme: str) -> None:
    page.evaluate("(t) => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})", theme)
    page.wait_for_function("(light) => document.body.dataset.jpThemeLight === light",
                           arg="true" if theme == LIGHT else "false")
    page.wait_for_timeout(600)


def both_themes(page, shots: dict) -> None:
    """Photograph each (name -> locator) in the light theme, then in the dark one; back to light."""
    for theme, suffix in ((LIGHT, "light"), (DARK, "dark")):
        set_theme(page, theme)
        for name, locator in shots.items():
            locator.scroll_into_view_if_needed()
            locator.screenshot(path=str(ARTIFACTS / f"{name}_{suffix}.png"))
    set_theme(page, LIGHT)


def click(panel, label: str) -> None:
    panel.locator("button", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).first.click()


def assert_page_clean(page) -> None:
    """Nothing on screen is a traceback, a complete token or a private key."""
    from mtlspop_lab.redact import contains_secret
    assert "Traceback (most recent call last)" not in page.locator(".jp-Notebook").inner_text()
    assert not contains_secret(page.content())


def reveal_access_token(panel) -> str:
    """Pick the answer's access_token in the request inspector, press Reveal, read it."""
    inspector = panel.locator(".mtlspop-request-inspector").first
    select = inspector.locator("select").first
    options = [o.replace("\xa0", " ") for o in select.evaluate("(s) => Array.from(s.options).map((o) => o.text)")]
    index = next((i for i, o in enumerate(options) if "answer access_token" in o), None)
    assert index is not None, options
    select.select_option(index=index)
    click(inspector, "Reveal")
    inspector.locator(".mtlspop-reveal-warning").wait_for()
    value = inspector.locator(".mtlspop-revealed textarea").input_value()
    assert value.count(".") == 2 and value.startswith("eyJ")
    return value


def test_flow_panel_after_run_all_shows_a_bound_token_and_its_requests(browser, jupyter_lab, artifacts):
    page = open_notebook(browser, jupyter_lab, "01_vanilla")
    try:
        run_all(page)
        panel = page.locator(".mtlspop-flowpanel").first
        panel.scroll_into_view_if_needed()
        click(panel, "Forget tokens")   # the notebook's cells left an IMDS certificate: start cold
        panel.get_by_text("Tokens forgotten").wait_for()
        click(panel, "Run")
        card = panel.locator(".mtlspop-result-card")
        card.wait_for()
        text = card.inner_text()
        assert "mtls_pop" in text and "✔" in text and "bound" in text.lower()
        cert_x5t = card.locator(".mtlspop-cert-x5t").inner_text().strip()
        assert X5T_S256.match(cert_x5t) and cert_x5t == card.locator(".mtlspop-cnf-x5t").inner_text().strip()
        requests = panel.locator(".mtlspop-requests").first
        requests.wait_for()
        shown = requests.inner_text()
        assert "IMDS" in shown and "plain HTTP" in shown and "mTLS" in shown and "token request" in shown
        panel.locator(".jp-RenderedMermaid figure img[src^='data:image/svg+xml']").first.wait_for()
        assert panel.locator(".jp-RenderedMermaid.jp-mod-warning").count() == 0
        # each exercise cell, as committed, says "Not yet" (a card, not an error)
        assert page.locator(".mtlspop-exercise-failed").count() == 2
        assert_page_clean(page)
        both_themes(page, {"01_flow_panel": panel, "01_exercise": page.locator(".mtlspop-exercise").first})
        # one secret, revealed on request, with its warning
        reveal_access_token(panel)
        page.wait_for_timeout(300)
        panel.locator(".mtlspop-request-inspector").first.screenshot(path=str(artifacts / "01_reveal_light.png"))
        page.screenshot(path=str(artifacts / "01_vanilla_page.png"), full_page=True)
    except Exception:
        page.screenshot(path=str(artifacts / "01_vanilla_failure.png"), full_page=True)
        raise
    finally:
        page.close()


def test_00_decision_panel_after_run_all(browser, jupyter_lab, artifacts):
    """The decision tree, answered by clicking."""
    page = open_notebook(browser, jupyter_lab, "00_start_here")
    try:
        run_all(page)
        panel = page.locator(".mtlspop-decisionpanel").first
        panel.scroll_into_view_if_needed()
        panel.get_by_text("Yes", exact=True).first.click()
        panel.get_by_text("outside Azure (on-premises, another cloud, a laptop)").click()
        card = panel.locator(".mtlspop-recommendation")
        card.wait_for()
        assert "FIC two-leg flow" in card.inner_text() and "Leg 2 (exchange, PoP)" in card.inner_text()
        assert_page_clean(page)
        both_themes(page, {"00_decision_panel": panel, "00_binding_verdict": page.locator("[aria-label='bound']").first,
                           "00_token_result": page.locator(".mtlspop-token-result").first})
    finally:
        page.close()


def test_02_two_leg_flow_panel_after_run_all(browser, jupyter_lab, artifacts):
    """The two-leg flow, both legs drawn, leg 2's client_assertion shown as header + claims."""
    page = open_notebook(browser, jupyter_lab, "02_fic_two_leg")
    try:
        run_all(page)
        flow = page.locator(".mtlspop-flowpanel").first
        flow.scroll_into_view_if_needed()
        click(flow, "Run")
        card = flow.locator(".mtlspop-result-card")
        card.wait_for()
        assert "Leg 1 assertion" in card.inner_text()
        assert card.locator(".mtlspop-cert-x5t").inner_text() == card.locator(".mtlspop-cnf-x5t").inner_text()
        assert "client_assertion = JWT" in flow.locator(".mtlspop-requests").first.text_content()  # in <details>
        flow.locator(".jp-RenderedMermaid figure img[src^='data:image/svg+xml']").first.wait_for()
        assert page.locator(".jp-RenderedMermaid.jp-mod-warning").count() == 0
        assert_page_clean(page)
        both_themes(page, {"02_flow_panel_fic": flow,
                           "02_sequence_diagram_drawn_in_light": page.locator(".jp-RenderedMermaid").last})
        # JupyterLab draws Mermaid in the theme of the moment: drawn again under the dark theme
        set_theme(page, DARK)
        click(flow, "Forget tokens")
        flow.get_by_text("Tokens forgotten").wait_for()
        click(flow, "Run")
        flow.locator(".jp-RenderedMermaid figure img[src^='data:image/svg+xml']").first.wait_for()
        page.wait_for_timeout(800)
        flow.locator(".jp-RenderedMermaid").first.screenshot(path=str(artifacts / "02_sequence_diagram_dark.png"))
        set_theme(page, LIGHT)
    finally:
        page.close()


def test_03_binding_panel_replay_and_pasted_token_after_run_all(browser, jupyter_lab, artifacts):
    """A token, its verdict, a refused replay, then the same token pasted."""
    page = open_notebook(browser, jupyter_lab, "03_binding_and_replay")
    try:
        run_all(page)
        flow = page.locator(".mtlspop-flowpanel").first
        flow.scroll_into_view_if_needed()
        click(flow, "Run")
        flow.locator(".mtlspop-result-card").wait_for()
        binding = page.locator(".mtlspop-bindingpanel").first
        binding.scroll_into_view_if_needed()
        click(binding, "Check binding")
        binding.get_by_text("BOUND: the token's cnf.x5t#S256 matches this certificate").wait_for()
        click(binding, "Replay as an attacker")
        replay = binding.locator(".mtlspop-replay")
        replay.wait_for()
        shown = replay.inner_text()
        assert "Replay refused" in shown and "401" in shown
        attacker = replay.locator(".mtlspop-attacker-x5t").inner_text().strip()
        cnf = replay.locator(".mtlspop-cnf-x5t").inner_text().strip()
        assert X5T_S256.match(attacker) and X5T_S256.match(cnf) and attacker != cnf
        assert binding.locator(".mtlspop-verdict").count() == 0, "one verdict per action"
        assert_page_clean(page)
        both_themes(page, {"03_binding_replay": binding,
                           "03_claims_inspector": page.locator(".mtlspop-token").last})
        # the claims inspector: three coloured segments, cnf beside the certificate, signature verified
        inspector = page.locator(".mtlspop-token").last
        assert inspector.locator(".mtlspop-segment").count() == 3 and "verified" in inspector.inner_text()
        # a pasted token: the FlowPanel's token, revealed, then pasted into the BindingPanel
        token = reveal_access_token(flow)
        binding.scroll_into_view_if_needed()
        binding.get_by_text("A pasted token", exact=True).click()
        binding.locator("textarea").first.fill(token)
        click(binding, "Check binding")
        verdict = binding.locator(".mtlspop-verdict")
        verdict.wait_for()
        assert "BOUND" in verdict.inner_text() and binding.locator(".mtlspop-replay").count() == 0
        binding.locator("textarea").first.fill("")
        page.wait_for_timeout(300)
        binding.screenshot(path=str(artifacts / "03_binding_pasted_light.png"))
    finally:
        page.close()


def test_04_latency_panel_stop_after_run_all(browser, jupyter_lab, artifacts):
    """A long latency run, stopped; its table, bars with the headline ratio, ECDF."""
    page = open_notebook(browser, jupyter_lab, "04_latency_and_cache")
    try:
        run_all(page)
        latency = page.locator(".mtlspop-latencypanel").first
        latency.scroll_into_view_if_needed()
        estimate = latency.locator(".mtlspop-estimate")
        before = estimate.inner_text()
        assert "Estimated duration" in before and "noisy" in before   # the notebook's 8 iterations
        handle = latency.locator(".noUi-handle").first             # the Iterations slider
        handle.focus()
        for _ in range(12):
            page.keyboard.press("PageUp")
        # look the estimate up each time (a re-render would leave a held element stale), until the
        # slider has gone past the noisy range: each PageUp arrives as its own change
        page.wait_for_function("() => { const el = document.querySelector("
                               "'.mtlspop-latencypanel .mtlspop-estimate');"
                               " return el && el.innerText.includes('Estimated') && !el.innerText.includes('noisy'); }")
        assert "noisy" not in estimate.inner_text() and estimate.inner_text() != before
        click(latency, "Run")
        stop = latency.locator("button:not([disabled])", has_text=re.compile(r"^\s*Stop\s*$"))
        stop.wait_for()                                             # enabled while the run goes on
        page.wait_for_timeout(2500)
        latency.screenshot(path=str(artifacts / "04_latency_running_light.png"))
        stop.click()
        latency.locator(".mtlspop-percentiles").wait_for(timeout=60_000)
        table = latency.locator(".mtlspop-percentiles").inner_text()
        assert "Stopped early" in table and "noisy" in table
        latency.locator("img[src^='data:image/png']").first.wait_for()
        assert "two-leg / vanilla" in latency.locator(".mtlspop-ratios").inner_text()
        assert latency.locator(".mtlspop-footnotes").count() == 1
        page.wait_for_timeout(300)
        assert_page_clean(page)
        both_themes(page, {"04_latency_panel_stopped": latency})
        latency.get_by_text("ECDF (whole distribution)").click()
        page.wait_for_timeout(500)
        latency.screenshot(path=str(artifacts / "04_latency_ecdf_light.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "04_latency_failure.png"), full_page=True)
        raise
    finally:
        page.close()


def test_05_troubleshoot_and_checklist_panels_after_run_all(browser, jupyter_lab, artifacts):
    """A failure reproduced with its requests, and the checklist."""
    page = open_notebook(browser, jupyter_lab, "05_troubleshooting")
    try:
        run_all(page)
        trouble = page.locator(".mtlspop-troubleshootpanel").first
        trouble.scroll_into_view_if_needed()
        click(trouble, "Reproduce")
        shown = trouble.locator(".mtlspop-reproduction")
        shown.wait_for()
        assert "AADSTS70021" in shown.inner_text() and "What to do" in shown.inner_text()
        assert "401" in trouble.locator(".mtlspop-requests").first.inner_text()
        checklist = page.locator(".mtlspop-checklistpanel").first
        checklist.scroll_into_view_if_needed()
        click(checklist, "Run checklist")
        report = checklist.locator(".mtlspop-checklist")
        report.wait_for()
        assert "6 passed, 0 failed, 1 skipped" in report.inner_text()
        assert_page_clean(page)
        both_themes(page, {"05_troubleshoot_panel": trouble, "05_checklist_panel": checklist,
                           "05_error_card": page.locator(".mtlspop-error").first})
    finally:
        page.close()
