"""The interop fixture never skips in CI: without node, or when npm ci fails, it fails there,
and skips (saying why) elsewhere. The launcher says what to install.

The fixture's own ``require_node``/``require_installed`` run here with a PATH
that holds no node, and with an npm that fails.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from mtlspop_lab.interop import oidc_provider as launcher
from mtlspop_lab.errors import ConfigurationError


@pytest.fixture
def interop_conftest(monkeypatch):
    name = "interop_conftest_under_test"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_node(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no node, no npm


@pytest.fixture
def failing_npm(tmp_path, monkeypatch):
    """A package folder without node_modules, so npm ci runs, and an npm that fails as offline npm does."""
    source = tmp_path / "package"
    source.mkdir()
    for name in launcher.PROJECT_FILES:
        (source / name).write_bytes((launcher.SOURCE_DIR / name).read_bytes())
    monkeypatch.setattr(launcher, "SOURCE_DIR", source)
    npm = tmp_path / "bin" / "npm"
    npm.parent.mkdir()
    npm.write_text("#!/bin/sh\necho 'npm ERR! network unreachable' >&2\nexit 1\n")
    npm.chmod(0o755)
    return str(npm)


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_missing_node_fails_loudly_in_ci(interop_conftest, no_node, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI: .*node and npm are needed"):
        interop_conftest.require_node()


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_missing_node_skips_with_the_reason_outside_ci(interop_conftest, no_node, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="node and npm are needed"):
        interop_conftest.require_node()


def test_missing_node_is_a_configuration_error_with_a_fix(no_node):
    with pytest.raises(ConfigurationError) as missing:
        launcher.find_node()
    assert missing.value.code == "node_not_found"
    assert "node and npm not found" in missing.value.cause and "Node.js" in missing.value.fix


def test_failed_npm_ci_fails_in_ci_and_skips_elsewhere(interop_conftest, failing_npm, monkeypatch, tmp_path):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI: .*npm ci.* failed"):
        interop_conftest.require_installed(failing_npm)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="network unreachable"):
        interop_conftest.require_installed(failing_npm)
    with pytest.raises(ConfigurationError) as failed:
        launcher.ensure_installed(failing_npm)
    assert failed.value.code == "npm_ci_failed" and "registry.npmjs.org" in failed.value.fix
    assert str(tmp_path / "package") in failed.value.message  # says where npm ran


def test_node_found_when_installed(interop_conftest):
    node, npm = interop_conftest.require_node()
    assert Path(node).name == "node" and Path(npm).name == "npm"


def test_the_project_is_package_data_and_the_lock_file_pins_the_installed_version():
    assert launcher.SOURCE_DIR.parent.name == "interop" and launcher.SOURCE_DIR.parents[1].name == "mtlspop_lab"
    assert all((launcher.SOURCE_DIR / name).is_file() for name in launcher.PROJECT_FILES)
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    for name in launcher.PROJECT_FILES:
        assert f"interop/oidc_provider_server/{name}" in pyproject, f"{name} is not package data"
    lock = json.loads((launcher.SOURCE_DIR / "package-lock.json").read_text())
    pinned = launcher.pinned_version()
    assert lock["packages"]["node_modules/oidc-provider"]["version"] == pinned
    assert pinned.split(".")[0] == "9" and all(part.isdigit() for part in pinned.split("."))
