"""Fixtures for interop tests: a real third-party RFC 8705 server (oidc-provider).

``oidc_provider`` is :class:`mtlspop_lab.interop.oidc_provider.OidcProvider`: it installs
the pinned npm project of ``mtlspop_lab/oidc_provider_server`` (``npm ci``
once; ``node_modules`` is git-ignored and reused), makes every certificate at
run time and starts ``server.mjs`` on 127.0.0.1 (see that module).

Without node/npm, or when ``npm ci`` fails, the fixture skips with the reason,
except in CI (``CI`` set), where it fails loudly: the interop tests must run
there.
"""

from __future__ import annotations

import os

import pytest

from mtlspop_lab.interop import oidc_provider as launcher
from mtlspop_lab.errors import ConfigurationError
from mtlspop_lab.interop.oidc_provider import OidcProvider


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str):
    """Skip on a developer machine; fail in CI, where these tests must run."""
    if _in_ci():
        pytest.fail(f"interop tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require_node() -> tuple[str, str]:
    """Paths of node and npm, or skip (fail in CI) saying what is missing."""
    try:
        return launcher.find_node()
    except ConfigurationError as missing:
        _unavailable(str(missing))


def require_installed(npm: str):
    """The installed node project, or skip (fail in CI) when ``npm ci`` fails."""
    try:
        return launcher.ensure_installed(npm)
    except ConfigurationError as failed:
        _unavailable(str(failed))


@pytest.fixture(scope="session")
def oidc_provider() -> OidcProvider:
    _node, npm = require_node()
    require_installed(npm)
    with OidcProvider.start() as server:
        yield server
