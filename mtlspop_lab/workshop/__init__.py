"""Workshop content: the guide's checklist, troubleshooting catalogue and decision tree, and the demo.

- :mod:`.cast` - the shared set-up every demo, panel and benchmark needs: an app, a
  leg-2 app and the federated credentials that let leg 1 reach it.
- :mod:`.checklist` - the guide's testing checklist, executable (:func:`run_checklist`).
- :mod:`.troubleshoot` - each failure of the guide's troubleshooting table, reproduced.
- :mod:`.decision` - "vanilla or FIC two-leg?" as questions (:func:`recommend`).
- :mod:`.demo` - every identity and flow against the embedded authority, as a table.
- :mod:`.exercises` - the notebooks' "your turn" checks (``lab.exercises.check_...()``).
"""

from . import exercises

__all__ = ["exercises"]
