"""A pandas DataFrame that displays in full: every cell wrapped and left-aligned, nothing cut.

Why: pandas' notebook display cuts each cell at 50 characters and right-aligns it, so a
claim's meaning, a ``cnf`` thumbprint or a comparison note ended in "…" and could not be
read at 1024 px. :class:`WrappedFrame` is still a DataFrame for code (filter it, ``.loc``
it, export it); only its notebook display differs. This module imports pandas: import it
where pandas is already wanted (``explain_claims``, ``compare_tokens``).
"""

from __future__ import annotations

import pandas as pd

from .. import _html


class WrappedFrame(pd.DataFrame):
    """A DataFrame whose HTML shows every cell in full (wrapped, left-aligned)."""

    @property
    def _constructor(self):
        return WrappedFrame

    def _repr_html_(self) -> str:   # type: ignore[override]
        head = "".join(f"<th style='text-align:left;padding:3px 8px;border-bottom:1px solid {_html.RULE};"
                       f"white-space:nowrap'>{_html.esc(c)}</th>" for c in self.columns)
        rows = []
        for _, record in self.iterrows():
            cells = "".join(f"<td style='text-align:left;vertical-align:top;padding:3px 8px;white-space:normal;"
                            f"overflow-wrap:anywhere;word-break:break-word'>{_html.esc(_shown(v))}</td>"
                            for v in record)
            rows.append(f"<tr style='border-top:1px solid {_html.RULE}'>{cells}</tr>")
        note = self.attrs.get("note")
        caption = (f"<caption style='caption-side:bottom;text-align:left;font-size:12px;color:{_html.MUTED}'>"
                   f"{_html.esc(note)}</caption>") if note else ""
        return (f"<div style='max-width:100%;overflow-x:auto'><table class='mtlspop-frame' style='border-collapse:"
                f"collapse;font-size:12px;text-align:left;color:inherit;width:100%'>{caption}<thead><tr>{head}"
                f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _shown(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    return str(value)
