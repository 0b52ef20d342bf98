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

NOTEBOOK_TIMEOUT_MS = 60_000
X5T_S256 = re.compile(r"^[A-Za-z0-9_-]{43}$")


def open_notebook(browser, lab, name: str):
    page = browser.new_page(viewport={"width": 1280, "height": 2200})
    page.set_default_timeout(NOTEBOOK_TIMEOUT_MS)
    page.goto(f"{lab['url']}/lab/tree/notebooks/{name}.ipynb?token={lab['token']}")
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
    page.evaluate(
        """async ([first, last]) => {
               const panel = window.jupyterapp.shell.currentWidget;
               const nb = panel.content;
               for (let i = first; i <= last; i++) {
                   nb.activeCellIndex = i;
                   await window.jupyterapp.commands.execute('notebook:run-cell');
               }
           }""", [first, last])
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
        run_cells(page, count - 1, count - 1)
        last_output = page.locator(".jp-Cell").nth(count - 1).locator(".jp-OutputArea").inner_text()
        assert "closed" in last_output.lower()
    except Exception:
        page.screenshot(path=str(artifacts / "01_vanilla_failure.png"), full_page=True)
        raise
    finally:
        page.close()
