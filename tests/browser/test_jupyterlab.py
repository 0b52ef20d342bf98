"""A real browser runs notebook 01 in JupyterLab and gets a bound token from the FlowPanel.

Chromium (Debian's, driven by Playwright) opens the notebook in a headless
JupyterLab, runs every cell but the last (the last one closes the local
authority), clicks Run on the FlowPanel, and reads the result card: token type
``mtls_pop`` and the certificate's x5t#S256, equal to the token's cnf claim.
Then it runs the last cell and checks that the authority is closed.
Screenshots land in test-artifacts/browser/ (git-ignored).
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


def test_flow_panel_in_jupyterlab_shows_a_bound_token(browser, jupyter_lab, artifacts):
    page = open_notebook(browser, jupyter_lab, "01_vanilla")
    try:
        count = cell_count(page)
        run_cells(page, 0, count - 2)
        tracebacks = [t for t in error_outputs(page) if "Traceback" in t or "Error" in t]
        assert tracebacks == []

        panel = page.locator(".mtlspop-flowpanel").first
        panel.scroll_into_view_if_needed()
        panel.locator("button", has_text=re.compile(r"^\s*Run\s*$")).click()
        card = panel.locator(".mtlspop-result-card")
        card.wait_for()
        text = card.inner_text()
        assert "mtls_pop" in text
        cert_x5t = card.locator(".mtlspop-cert-x5t").inner_text().strip()
        cnf_x5t = card.locator(".mtlspop-cnf-x5t").inner_text().strip()
        assert X5T_S256.match(cert_x5t), cert_x5t
        assert cert_x5t == cnf_x5t
        assert "✔" in text and "bound" in text.lower()
        panel.locator(".mtlspop-roundtrips").first.wait_for()
        # the exchange drawn by JupyterLab's Mermaid renderer, not an error box
        panel.locator(".jp-RenderedMermaid figure img[src^='data:image/svg+xml']").first.wait_for()
        assert panel.locator(".jp-RenderedMermaid.jp-mod-warning").count() == 0
        page.wait_for_timeout(500)
        panel.screenshot(path=str(artifacts / "01_flow_panel.png"))
        page.screenshot(path=str(artifacts / "01_vanilla_page.png"), full_page=True)

        # the last cell closes the authority: after it, the panel says so in words
        assert_page_clean(page)
        run_cells(page, count - 1, count - 1)
        last_output = page.locator(".jp-Cell").nth(count - 1).locator(".jp-OutputArea").inner_text()
        assert "closed" in last_output.lower()
        panel.scroll_into_view_if_needed()
        panel.locator("button", has_text=re.compile(r"^\s*Run\s*$")).click()
        error = panel.locator(".mtlspop-error")
        error.wait_for()
        assert "authority_closed" in error.inner_text() and "Run the notebook again from the top" in error.inner_text()
    except Exception:
        page.screenshot(path=str(artifacts / "01_vanilla_failure.png"), full_page=True)
        raise
    finally:
        page.close()


def click(panel, label: str) -> None:
    panel.locator("button", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).click()


def run_notebook_but_last(page) -> int:
    count = cell_count(page)
    run_cells(page, 0, count - 2)
    assert [t for t in error_outputs(page) if "Traceback" in t] == []
    return count


def assert_page_clean(page) -> None:
    """Nothing on screen is a traceback, a complete token or a private key."""
    from mtlspop_lab.redact import contains_secret
    assert "Traceback (most recent call last)" not in page.locator(".jp-Notebook").inner_text()
    assert not contains_secret(page.content())


def close_authority(page, count: int) -> None:
    assert_page_clean(page)
    run_cells(page, count - 1, count - 1)
    assert "closed" in page.locator(".jp-Cell").nth(count - 1).locator(".jp-OutputArea").inner_text().lower()


def test_every_panel_works_in_jupyterlab(browser, jupyter_lab, artifacts):
    """Each panel clicked in a real browser; a screenshot of each for a human to judge."""
    # 00: the decision tree, answered by clicking
    page = open_notebook(browser, jupyter_lab, "00_start_here")
    try:
        count = run_notebook_but_last(page)
        panel = page.locator(".mtlspop-decisionpanel").first
        panel.scroll_into_view_if_needed()
        panel.get_by_text("Yes", exact=True).first.click()
        panel.get_by_text("outside Azure (on-premises, another cloud, a laptop)").click()
        card = panel.locator(".mtlspop-recommendation")
        card.wait_for()
        assert "FIC two-leg flow" in card.inner_text() and "Leg 2 (exchange, PoP)" in card.inner_text()
        panel.screenshot(path=str(artifacts / "00_decision_panel.png"))
        close_authority(page, count)
    finally:
        page.close()

    # 02: the two-leg flow, both legs drawn
    page = open_notebook(browser, jupyter_lab, "02_fic_two_leg")
    try:
        count = run_notebook_but_last(page)
        flow = page.locator(".mtlspop-flowpanel").first
        flow.scroll_into_view_if_needed()
        click(flow, "Run")
        card = flow.locator(".mtlspop-result-card")
        card.wait_for()
        assert "Leg 1 assertion" in card.inner_text() and "fic_leg2" not in card.inner_text()
        assert card.locator(".mtlspop-cert-x5t").inner_text() == card.locator(".mtlspop-cnf-x5t").inner_text()
        flow.locator(".jp-RenderedMermaid figure img[src^='data:image/svg+xml']").first.wait_for()
        page.wait_for_timeout(300)
        flow.screenshot(path=str(artifacts / "02_flow_panel_fic.png"))
        # the notebook's own sequence_diagram(...) cell is drawn by Mermaid too, without error
        assert page.locator(".jp-RenderedMermaid.jp-mod-warning").count() == 0
        assert page.locator(".jp-RenderedMermaid figure img").count() >= 2
        close_authority(page, count)
    finally:
        page.close()

    # 03: a token, its verdict, and a refused replay
    page = open_notebook(browser, jupyter_lab, "03_binding_and_replay")
    try:
        count = run_notebook_but_last(page)
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
        assert "Replay refused" in replay.inner_text() and "401" in replay.inner_text()
        binding.screenshot(path=str(artifacts / "03_binding_panel.png"))
        close_authority(page, count)
    finally:
        page.close()

    # 05: a failure reproduced, and the checklist
    page = open_notebook(browser, jupyter_lab, "05_troubleshooting")
    try:
        count = run_notebook_but_last(page)
        trouble = page.locator(".mtlspop-troubleshootpanel").first
        trouble.scroll_into_view_if_needed()
        click(trouble, "Reproduce")
        shown = trouble.locator(".mtlspop-reproduction")
        shown.wait_for()
        assert "AADSTS70021" in shown.inner_text() and "What to do" in shown.inner_text()
        trouble.screenshot(path=str(artifacts / "05_troubleshoot_panel.png"))
        checklist = page.locator(".mtlspop-checklistpanel").first
        checklist.scroll_into_view_if_needed()
        click(checklist, "Run checklist")
        report = checklist.locator(".mtlspop-checklist")
        report.wait_for()
        assert "6 passed, 0 failed, 1 skipped" in report.inner_text()   # versions: no native PoP in msal
        checklist.screenshot(path=str(artifacts / "05_checklist_panel.png"))
        close_authority(page, count)
    finally:
        page.close()

    # 04: a latency experiment with its table and charts
    page = open_notebook(browser, jupyter_lab, "04_latency_and_cache")
    try:
        count = run_notebook_but_last(page)
        latency = page.locator(".mtlspop-latencypanel").first
        latency.scroll_into_view_if_needed()
        click(latency, "Run")
        latency.locator(".mtlspop-percentiles").wait_for()
        latency.locator("img[src^='data:image/png']").first.wait_for()
        assert "two-leg / vanilla" in latency.locator(".mtlspop-ratios").inner_text()
        page.wait_for_timeout(300)
        latency.screenshot(path=str(artifacts / "04_latency_panel.png"))
        close_authority(page, count)
    finally:
        page.close()
