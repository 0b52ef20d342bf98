"""RequestInspector: the requests a panel's action sent, and an explicit per-secret reveal.

A thin view over :mod:`mtlspop_lab.workshop.request_inspector` (what is shown, how secrets
are shortened) and :func:`mtlspop_lab.workshop.request_inspector.reveal` (the one way to a
raw token: choose it by name, press Reveal, read the warning). Used by the FlowPanel and
the TroubleshootPanel; it keeps the requests of a failed action too.
"""

from __future__ import annotations

from typing import Any, Sequence

import ipywidgets as widgets

from .. import _html
from ..workshop import request_inspector


class RequestInspector(widgets.VBox):
    """The requests of the last action; pick a secret and press Reveal to see it in full."""

    def __init__(self):
        self.html = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.secret = widgets.Dropdown(options=[], layout=widgets.Layout(width="420px"))
        self.reveal_button = widgets.Button(description="Reveal", icon="eye", button_style="warning",
                                            tooltip="Show this secret in full, to copy it",
                                            layout=widgets.Layout(width="auto", min_width="120px"))
        self.warning = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.revealed = widgets.Textarea(layout=widgets.Layout(width="100%", height="70px", display="none"))
        self.revealed.add_class("mtlspop-revealed")
        self.reveal_row = widgets.HBox([widgets.HTML("<b>Reveal a secret:</b>&nbsp;"), self.secret, self.reveal_button],
                                       layout=widgets.Layout(display="none", align_items="center",
                                                             flex_flow="row wrap"))
        self.exchanges: list = []
        self.cloud: Any = None
        super().__init__([self.html, self.reveal_row, self.warning, self.revealed],
                         layout=widgets.Layout(width="100%"))
        self.add_class("mtlspop-request-inspector")
        self.reveal_button.on_click(lambda _b: self.reveal_selected())

    def show(self, exchanges: Sequence, cloud: Any = None, *, cached: bool = False) -> None:
        """Display these exchanges (hiding anything revealed before)."""
        self.exchanges, self.cloud = list(exchanges), cloud
        self.hide_secret()
        self.html.value = request_inspector.inspector_html(self.exchanges, cloud, cached=cached)
        items = request_inspector.secrets(self.exchanges)
        self.secret.options = [(item.label, item.index) for item in items]
        self.secret.index = 0 if items else None   # a choice is shown, never an empty box
        self.reveal_row.layout.display = "" if items else "none"

    def clear(self) -> None:
        self.exchanges = []
        self.html.value = ""
        self.secret.options = []
        self.reveal_row.layout.display = "none"
        self.hide_secret()

    def hide_secret(self) -> None:
        self.warning.value = ""
        self.revealed.value = ""
        self.revealed.layout.display = "none"

    def reveal_selected(self) -> str:
        """Show the chosen secret in full, under a one-line warning; returns it."""
        if self.secret.value is None:
            return ""
        value = request_inspector.reveal(self.exchanges, self.secret.value)
        self.warning.value = _html.card("Revealed: " + self.secret.label, _html.esc(request_inspector.REVEAL_WARNING),
                                        tone="warn", css_class="mtlspop-reveal-warning")
        self.revealed.value = value
        self.revealed.layout.display = ""
        return value
