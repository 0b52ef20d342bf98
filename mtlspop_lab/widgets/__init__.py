"""ipywidgets panels: thin views over the lab's functions, one per notebook idea.

Each panel's logic is testable without a browser: set a control's ``.value``,
call a button's ``.click()``, read the result widgets' ``.value``. Names are
imported lazily so that ``import mtlspop_lab.widgets`` does not start pandas
or the authority.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "Panel": "_base",
    "DecisionPanel": "decision",
    "FlowPanel": "flow",
    "BindingPanel": "binding",
    "LatencyPanel": "latency",
    "TroubleshootPanel": "troubleshoot",
    "ChecklistPanel": "checklist",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
