"""The panel base: a titled VBox that runs one piece of library work at a time.

Why a base class: every panel must behave the same way when something goes
wrong or takes time. :meth:`Panel.run` disables the panel's buttons while
the work runs (so a double click cannot start two acquisitions), shows
errors as a readable card (what happened, cause, fix) instead of a traceback,
and remembers the error in ``.last_error`` for tests.

Work runs synchronously in the click handler. The kernel sends each widget
change (``disabled``, a progress bar's value) to the browser as it happens,
so the page still shows progress; and a headless test that calls
``.click()`` sees the finished result on return, with no thread to wait for.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import ipywidgets as widgets

from .. import _html

T = TypeVar("T")


class Panel(widgets.VBox):
    """Base of every lab panel: title, short intro, controls, a status line, results."""

    title = "Panel"
    intro = ""

    def __init__(self, controls: list[widgets.Widget], results: list[widgets.Widget], **kwargs):
        self.status = widgets.HTML(value="", layout=widgets.Layout(width="100%"))
        self.last_error: BaseException | None = None
        self.busy = False
        header = widgets.HTML(
            value=(f"<div style='font-family:system-ui,sans-serif;line-height:1.4'><b style='font-size:15px'>"
                   f"{_html.esc(self.title)}</b>"
                   + (f"<div style='font-size:13px;opacity:.85;margin-bottom:4px'>{_html.esc(self.intro)}</div>"
                      if self.intro else "") + "</div>"))
        super().__init__(children=[header, *controls, self.status, *results],
                         layout=widgets.Layout(width="100%", max_width="980px", padding="4px",
                                               border="1px solid var(--jp-border-color1, #c0c0c0)"),
                         **kwargs)
        for button in self.buttons:   # never cut a button's label ("Replay as an a…")
            button.layout.width = button.layout.width or "auto"
            button.layout.min_width = button.layout.min_width or "120px"
        self.add_class("mtlspop-panel")
        self.add_class(f"mtlspop-{type(self).__name__.lower()}")

    # -- running work ---------------------------------------------------------------
    @property
    def buttons(self) -> list[widgets.Button]:
        """Every button inside the panel (found by walking the children)."""
        found: list[widgets.Button] = []

        def walk(widget):
            if isinstance(widget, widgets.Button):
                found.append(widget)
            for child in getattr(widget, "children", ()):
                walk(child)

        walk(self)
        return found

    def run(self, work: Callable[[], T], *, busy: str = "Working…") -> T | None:
        """Run ``work()`` with the buttons disabled; show any error as a card.

        Returns what ``work`` returned, or None when it raised (the error is in
        ``self.last_error`` and on screen). A call while busy is ignored.
        """
        if self.busy:
            return None
        self.busy = True
        buttons = self.buttons
        previous = [b.disabled for b in buttons]
        for button in buttons:
            button.disabled = True
        self.last_error = None
        self.status.value = _html.card(busy, tone="busy", css_class="mtlspop-busy")
        try:
            outcome = work()
            self.status.value = ""
            return outcome
        except Exception as error:  # shown, not raised: a panel never dumps a traceback
            self.last_error = error
            self.status.value = _html.error_card(error)
            return None
        finally:
            for button, was in zip(buttons, previous):
                button.disabled = was
            self.busy = False

    def show_message(self, title: str, text: str = "", tone: str = "info") -> None:
        self.status.value = _html.card(title, _html.esc(text) if text else "", tone=tone)


def labelled(description: str, widget: widgets.Widget, width: str = "150px") -> widgets.Widget:
    """Give a control a visible label that never gets cut (ipywidgets' own label truncates)."""
    widget.description = ""
    return widgets.HBox([widgets.HTML(f"<span style='font-weight:600'>{_html.esc(description)}</span>",
                                      layout=widgets.Layout(width=width, min_width=width)), widget],
                        layout=widgets.Layout(align_items="center", flex_flow="row wrap"))
