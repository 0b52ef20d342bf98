"""Small HTML builders shared by the panels: cards, badges, key/value rows, tables.

Why hand-written HTML instead of richer widgets: a card is one ``HTML``
widget whose ``.value`` a headless test can read, it renders the same in
JupyterLab, classic Notebook, VS Code and nbconvert, and it needs no
front-end extension. Every colour comes with a word and a symbol (``✔ bound``,
``✘ refused``) so colour is never the only carrier of meaning, and the text
colour is set explicitly so the cards stay readable on dark themes.
"""

from __future__ import annotations

import html
from typing import Iterable, Sequence

from .redact import redact_text

# tone -> (symbol, JupyterLab colour variable, fallback border, fallback background, fallback text).
# Colours come from JupyterLab's theme variables, so a card is readable in the light and the dark
# theme alike; the fallbacks serve front ends without them (classic Notebook, VS Code, nbconvert).
TONES = {
    "ok": ("✔", "--jp-success-color1", "#1e8e3e", "#e6f4ea", "#0d3d1a"),
    "bad": ("✘", "--jp-error-color1", "#c5221f", "#fce8e6", "#5c0f0b"),
    "warn": ("⚠", "--jp-warn-color1", "#b06000", "#fef7e0", "#4a2c00"),
    "info": ("ℹ", "--jp-info-color1", "#1a5fb4", "#e8f0fe", "#0b2a55"),
    "busy": ("⏳", "--jp-ui-font-color2", "#5f6368", "#f1f3f4", "#202124"),
}
TEXT = "var(--jp-content-font-color1,#1a1a1a)"
MUTED = "var(--jp-content-font-color2,#555)"
RULE = "var(--jp-border-color1,#999)"
MONO = "var(--jp-code-font-family,ui-monospace,Menlo,Consolas,monospace)"


def tone_colours(tone: str) -> tuple[str, str, str, str]:
    """(symbol, border, background declarations, text colour) of a tone, theme-aware.

    The background is two declarations: a plain fallback, then a tint of the tone's theme colour
    over the theme's page colour (``color-mix``); a browser without ``color-mix`` keeps the first.
    """
    symbol, var, border, bg, fg = TONES[tone]
    edge = f"var({var},{border})"
    background = (f"background:{bg};"
                  f"background:color-mix(in srgb,{edge} 13%,var(--jp-layout-color1,#fff))")
    return symbol, edge, background, f"var(--jp-content-font-color1,{fg})"


_CARD = ("border-left:6px solid {border};{background};color:{fg};padding:8px 12px;"
         "margin:6px 0;border-radius:4px;max-width:100%;box-sizing:border-box;"
         "font-family:var(--jp-ui-font-family,system-ui,-apple-system,'Segoe UI',sans-serif);font-size:13px;"
         "line-height:1.45;overflow-wrap:anywhere;text-align:left")


def esc(value) -> str:
    """Escape for HTML, after redacting any token or key the text may hold."""
    return html.escape(redact_text(str(value)), quote=True)


def badge(text: str, tone: str, symbol: str | None = None) -> str:
    """An inline label such as ``✔ bound``: symbol + word + colour (``symbol`` overrides the tone's)."""
    default, edge, background, fg = tone_colours(tone)
    symbol = default if symbol is None else symbol
    return (f"<span class='mtlspop-badge mtlspop-{tone}' style='display:inline-block;"
            f"border:1px solid {edge};{background};color:{fg};border-radius:10px;"
            f"padding:0 8px;font-weight:600;white-space:nowrap'>{symbol} {esc(text)}</span>")


def mono(value, css_class: str = "") -> str:
    """Monospace text that wraps instead of overflowing (thumbprints, redacted tokens)."""
    klass = f" class='{css_class}'" if css_class else ""
    return (f"<code{klass} style='font-family:{MONO};font-size:12px;"
            f"overflow-wrap:anywhere;word-break:break-all'>{esc(value)}</code>")


def rows(pairs: Iterable[tuple[str, str]]) -> str:
    """A two-column key/value grid; values are HTML already (use esc/mono/badge)."""
    cells = "".join(
        f"<div style='font-weight:600;white-space:nowrap'>{esc(key)}</div><div style='min-width:0'>{value}</div>"
        for key, value in pairs)
    return (f"<div style='display:grid;grid-template-columns:max-content minmax(0,1fr);"
            f"gap:2px 12px;margin-top:4px'>{cells}</div>")


def card(title: str, body: str = "", *, tone: str = "info", css_class: str = "") -> str:
    """A coloured box with a symbol + title line and an HTML body."""
    symbol, edge, background, fg = tone_colours(tone)
    klass = f"mtlspop-card mtlspop-{tone} {css_class}".strip()
    return (f"<div class='{klass}' style=\"{_CARD.format(border=edge, background=background, fg=fg)}\">"
            f"<div style='font-weight:700;font-size:14px'>{symbol} {esc(title)}</div>{body}</div>")


def table(headers: Sequence[str], data: Iterable[Sequence], *, css_class: str = "mtlspop-table") -> str:
    """A compact table; cells are escaped text unless wrapped in :class:`Raw`."""
    head = "".join(f"<th style='text-align:left;padding:2px 8px;border-bottom:1px solid {RULE}'>{esc(h)}</th>"
                   for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:2px 8px;vertical-align:top;text-align:left'>"
                         f"{cell if isinstance(cell, Raw) else esc(cell)}</td>" for cell in row) + "</tr>"
        for row in data)
    return (f"<div style='overflow-x:auto;max-width:100%'><table class='{css_class}' style='border-collapse:"
            f"collapse;font-size:12px;font-family:system-ui,sans-serif;color:inherit'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>")


class Raw(str):
    """Marks a table cell as HTML already built (a badge, a mono value)."""


def error_card(error: BaseException) -> str:
    """A readable error: what happened, why, what to do. Never a traceback, never a secret."""

    if all(hasattr(error, name) for name in ("message", "cause", "fix", "code")):   # a LabError
        code = getattr(error, "code", None)
        title = f"{type(error).__name__}" + (f" [{code}]" if code else "")
        body = rows([("What happened", esc(getattr(error, "message", ""))),
                     ("Likely cause", esc(getattr(error, "cause", ""))),
                     ("What to do", esc(getattr(error, "fix", "")))])
    else:
        title = f"Unexpected {type(error).__name__}"
        body = rows([("What happened", esc(str(error) or type(error).__name__)),
                     ("What to do", esc("This is a bug in the lab or an unusual setting: re-run the "
                                        "first cell; if it persists, report these steps."))])
    return card(title, body, tone="bad", css_class="mtlspop-error")


def error_text(error: BaseException) -> list[str]:
    """The same three lines for a terminal (ANSI bold/red), a list of lines as IPython wants them."""
    code = getattr(error, "code", None)
    title = type(error).__name__ + (f" [{code}]" if code else "")
    red, bold, dim, end = "\x1b[1;31m", "\x1b[1m", "\x1b[2m", "\x1b[0m"
    return [f"{red}✘ {title}{end}: {redact_text(getattr(error, 'message', str(error)))}",
            f"  {bold}Likely cause:{end} {redact_text(getattr(error, 'cause', ''))}",
            f"  {bold}What to do:{end}   {redact_text(getattr(error, 'fix', ''))}",
            f"  {dim}(The traceback through the lab's own code is hidden; "
            f"lab.show_traceback() prints it.){end}"]
