"""Lazy exports for a package's ``__init__``: names are imported on first use.

Why: ``import mtlspop_lab`` must stay fast in a notebook that only inspects a
token, so pandas, matplotlib, msal and the authority load when a name that
needs them is first touched (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``, where ``exports`` maps name -> submodule."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}", name=name,
                                 obj=sys.modules[package])
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)   # cached: the next access is a plain lookup
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
