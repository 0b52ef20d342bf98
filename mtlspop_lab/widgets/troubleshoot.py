"""TroubleshootPanel: pick a symptom from the guide's list, watch it happen, read cause and fix.

A thin view over :func:`mtlspop_lab.workshop.troubleshoot.reproduce`: the failure is
provoked for real on the embedded authority and the lab's own error is shown.
"""

from __future__ import annotations

import ipywidgets as widgets

from .. import _html
from ..transport.exchanges import capture
from ..workshop import troubleshoot
from ._base import Panel, labelled
from .flow import check_open
from .requests import RequestInspector


class TroubleshootPanel(Panel):
    """Reproduce one failure (or all of them) and show error, cause and fix."""

    title = "Break it on purpose"
    intro = "Pick a symptom from the troubleshooting guide and press Reproduce: the lab makes it happen."

    def __init__(self, authority, failure: str = "fic_not_configured"):
        self.authority = authority
        self.failure = widgets.Dropdown(
            options=[(f"{f.symptom}", f.key) for f in troubleshoot.FAILURES.values()], value=failure,
            layout=widgets.Layout(width="520px"))
        self.how = widgets.HTML()
        self.reproduce_button = widgets.Button(description="Reproduce", button_style="warning", icon="bolt")
        self.all_button = widgets.Button(description="Reproduce all", icon="list")
        self.outcome = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.requests = RequestInspector()
        self.reproduction: troubleshoot.Reproduction | None = None
        self.reproductions: list[troubleshoot.Reproduction] = []
        super().__init__([labelled("Symptom", self.failure), self.how,
                          widgets.HBox([self.reproduce_button, self.all_button])], [self.outcome, self.requests])
        self.failure.observe(self._describe, names="value")
        self.reproduce_button.on_click(self._on_reproduce)
        self.all_button.on_click(self._on_all)
        self._describe()

    def _describe(self, _change=None) -> None:
        failure = troubleshoot.FAILURES[self.failure.value]
        self.how.value = (f"<div style='font-size:12px;opacity:.85;line-height:1.4'>{_html.esc(failure.section)} · "
                          f"{_html.esc(failure.how)}</div>")

    def _reproduce(self, key: str) -> troubleshoot.Reproduction:
        check_open(self.authority)
        return troubleshoot.reproduce(key, self.authority)

    def _on_reproduce(self, _button=None) -> None:
        self.outcome.value = ""
        self.requests.clear()
        with capture() as exchanges:   # the requests that failed, shown under the error
            outcome = self.run(lambda: self._reproduce(self.failure.value), busy="Reproducing…")
        if exchanges:
            self.requests.show(exchanges, self.authority.cloud)
        if outcome is not None:
            self.reproduction = outcome
            self.outcome.value = outcome._repr_html_()

    def _on_all(self, _button=None) -> None:
        self.outcome.value = ""
        self.requests.clear()
        outcome = self.run(lambda: [self._reproduce(key) for key in troubleshoot.FAILURES],
                           busy=f"Reproducing {len(troubleshoot.FAILURES)} failures…")
        if outcome is None:
            return
        self.reproductions = outcome
        data = [[r.failure.symptom,
                 (f"{type(r.error).__name__}" + (f" [{r.code}]" if r.code else "")) if r.error else "none",
                 getattr(r.error, "fix", "") if r.error else r.observation,
                 _html.Raw(_html.badge("reproduced", "ok") if r.as_expected else _html.badge("not reproduced", "bad"))]
                for r in outcome]
        done = sum(r.as_expected for r in outcome)
        self.outcome.value = _html.card(
            f"{done} of {len(outcome)} failures reproduced",
            _html.table(["Symptom", "Error", "What to do", "Result"], data),
            tone="ok" if done == len(outcome) else "bad", css_class="mtlspop-reproductions")
