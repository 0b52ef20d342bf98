"""ipywidgets panels: thin views over the lab's functions, one per notebook idea.

Each panel's logic is testable without a browser: set a control's ``.value``,
call a button's ``.click()``, read the result widgets' ``.value``. Names are
imported lazily so that ``import mtlspop_lab.widgets`` does not start pandas
or the authority.
"""

from __future__ import annotations

import importlib

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


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mtlspop_lab.widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
