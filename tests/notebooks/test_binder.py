"""The Binder files resolve: every runtime dependency is pinned, inside its range.

binder/postBuild installs the package with ``--no-deps``, so a dependency
missing from binder/requirements.txt would only show up as an ImportError in
front of a workshop room. These tests read pyproject.toml and check each
requirement against the pins, and the pins against what this environment
(the one the notebook tests run in) has installed.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins() -> dict[str, Requirement]:
    found = {}
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            found[canonicalize_name(req.name)] = req
    return found


def pinned_version(req: Requirement) -> Version:
    (spec,) = list(req.specifier)
    assert spec.operator == "==", f"{req.name} must be pinned with ==, not {spec}"
    return Version(spec.version)


def test_every_line_is_an_exact_pin():
    assert pins(), "binder/requirements.txt is empty"
    for req in pins().values():
        pinned_version(req)


@pytest.mark.parametrize("dependency", project()["dependencies"] + project()["optional-dependencies"]["azure"])
def test_every_runtime_dependency_is_pinned_within_its_range(dependency):
    req = Requirement(dependency)
    pinned = pins().get(canonicalize_name(req.name))
    assert pinned is not None, f"{req.name} is a dependency but binder/requirements.txt lacks it"
    version = pinned_version(pinned)
    assert req.specifier.contains(version, prereleases=True), \
        f"{req.name}=={version} is outside pyproject's range {req.specifier}"
    assert req.extras <= pinned.extras, f"{req.name}: binder must install the extras {sorted(req.extras)}"


def test_pins_are_the_versions_the_notebook_tests_run_with():
    different = {}
    for name, req in pins().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            different[name] = "not installed"
            continue
        if installed != pinned_version(req):
            different[name] = f"installed {installed}, pinned {pinned_version(req)}"
    assert different == {}, "update binder/requirements.txt to what the tests ran with"


def test_binder_has_the_jupyterlab_front_end_for_widgets():
    names = set(pins())
    assert {"jupyterlab", "jupyterlab-widgets", "ipykernel", "ipywidgets"} <= names


def test_runtime_python_satisfies_requires_python():
    text = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", text)
    assert match, f"runtime.txt must read like python-3.11, not {text!r}"
    assert SpecifierSet(project()["requires-python"]).contains(Version(match.group(1)))


def test_postbuild_installs_the_package_without_resolving_dependencies():
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "postBuild must be executable"
    commands = [line for line in post.read_text().splitlines() if line and not line.startswith("#")]
    installs = [c for c in commands if "pip install" in c]
    assert installs and all("--no-deps" in c for c in installs)
    assert any(c.rstrip().endswith("-e .") for c in installs)
    assert "set -e" in post.read_text()
