"""DecisionPanel: the guide's decision tree as three questions and an answer.

The advice itself is :func:`mtlspop_lab.workshop.decision.recommend`; this panel only
asks. The answer updates as soon as the questions are answered, and "Start
over" clears them.
"""

from __future__ import annotations

import ipywidgets as widgets

from .. import _html
from ..workshop import decision
from ._base import Panel

_YES_NO = [("Yes", True), ("No", False)]


class DecisionPanel(Panel):
    """Answer the questions; read the recommended flow, identity and code."""

    title = "Which mTLS PoP flow should I use?"
    intro = "Answer the questions; the recommendation appears below."

    def __init__(self):
        style = {"description_width": "0px"}
        self.cross_tenant = widgets.RadioButtons(options=_YES_NO, index=None, style=style,
                                                 layout=widgets.Layout(width="auto"))
        self.runs_on = widgets.RadioButtons(options=[(label, key) for key, label in decision.RUNS_ON.items()],
                                            index=None, style=style, layout=widgets.Layout(width="auto"))
        self.latency_critical = widgets.RadioButtons(options=_YES_NO, index=None, style=style,
                                                     layout=widgets.Layout(width="auto"))
        self.reset_button = widgets.Button(description="Start over", icon="undo")
        self.answer = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.recommendation: decision.Recommendation | None = None
        questions = [
            self._question("1. Must the token cross a tenant boundary, or come from a federated "
                           "identity (a token exchange)?", self.cross_tenant),
            self._question("2. Where does your code run?", self.runs_on),
            self._question("3. Is token latency critical (regional endpoint)? Unanswered counts as No.",
                           self.latency_critical),
            self.reset_button,
        ]
        super().__init__(questions, [self.answer])
        for control in (self.cross_tenant, self.runs_on, self.latency_critical):
            control.observe(self._update, names="value")
        self.reset_button.on_click(self._reset)
        self._update()

    @staticmethod
    def _question(text: str, control: widgets.Widget) -> widgets.Widget:
        return widgets.VBox([widgets.HTML(f"<b>{_html.esc(text)}</b>"), control])

    def _update(self, _change=None) -> None:
        missing = [n for n, c in (("1", self.cross_tenant), ("2", self.runs_on)) if c.value is None]
        if missing:
            self.recommendation = None
            self.answer.value = _html.card("Waiting for your answers",
                                           _html.esc(f"Answer question {' and '.join(missing)}."),
                                           tone="info", css_class="mtlspop-waiting")
            return
        self.recommendation = self.run(lambda: decision.recommend(
            cross_tenant=self.cross_tenant.value, runs_on=self.runs_on.value,
            latency_critical=bool(self.latency_critical.value)))
        self.answer.value = self.recommendation._repr_html_() if self.recommendation else ""

    def _reset(self, _button=None) -> None:
        self.cross_tenant.index = None
        self.runs_on.index = None
        self.latency_critical.index = None
        self._update()
