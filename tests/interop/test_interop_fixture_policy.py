"""The interop fixture never skips in CI: without node it fails there, and skips (saying why) elsewhere.

The fixture's own ``require_node`` runs here with a PATH that holds no node.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


@pytest.fixture
def interop_conftest(monkeypatch):
    name = "interop_conftest_under_test"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_node(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no node, no npm


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_missing_node_fails_loudly_in_ci(interop_conftest, no_node, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI: node and npm are needed"):
        interop_conftest.require_node()


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_missing_node_skips_with_the_reason_outside_ci(interop_conftest, no_node, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="node and npm are needed"):
        interop_conftest.require_node()


def test_node_found_when_installed(interop_conftest):
    node, npm = interop_conftest.require_node()
    assert Path(node).name == "node" and Path(npm).name == "npm"


def test_the_lock_file_pins_the_installed_version(interop_conftest):
    lock = interop_conftest.json.loads((interop_conftest.PROJECT_DIR / "package-lock.json").read_text())
    pinned = interop_conftest._pinned_version()
    assert lock["packages"]["node_modules/oidc-provider"]["version"] == pinned
    assert pinned.split(".")[0] == "9" and all(part.isdigit() for part in pinned.split("."))
