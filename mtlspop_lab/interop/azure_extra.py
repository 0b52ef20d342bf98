"""The optional Azure SDK extra: check it is there, or say how to get it.

The adapters subclass azure-core's classes, so they need azure-core at import
time. Each adapter module calls :func:`require` first: without the extra, the
import fails with one typed lab error that names the missing package and the
install command, instead of a bare ``ModuleNotFoundError`` deep in a notebook.
"""

from __future__ import annotations

import importlib

from ..errors import ExtraNotInstalledError

INSTALL = "pip install 'mtlspop-lab[azure]'"

# module -> the distribution that provides it (what pip installs)
DISTRIBUTIONS = {"azure.core": "azure-core", "azure.identity": "azure-identity", "aiohttp": "aiohttp"}


def require(*modules: str) -> None:
    """Import each of ``modules`` or raise :class:`ExtraNotInstalledError` naming the first missing one."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            package = DISTRIBUTIONS.get(name, name)
            raise ExtraNotInstalledError(
                f"The Azure SDK adapters need {package}, which is not installed.",
                cause=f"Importing {name} failed: the optional 'azure' extra of mtlspop-lab "
                      "(azure-core, azure-identity, aiohttp) is not installed in this environment.",
                fix=f"Run {INSTALL} (or pip install {package}) and restart the kernel.",
                code="extra_not_installed") from None
