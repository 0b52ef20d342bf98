"""Dependency floors exclude releases with known vulnerabilities the lab's code paths reach."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# CVE-2024-53861: PyJWT 2.10.0 checked "iss" as a substring (a partial issuer match passed)
VULNERABLE = {"pyjwt": ["2.10.0"]}


def _requirements() -> dict[str, Requirement]:
    data = tomllib.loads(PYPROJECT.read_text())
    reqs = [Requirement(text) for text in data["project"]["dependencies"]]
    return {r.name.lower(): r for r in reqs}


def test_no_vulnerable_release_satisfies_the_floor():
    reqs = _requirements()
    for name, bad in VULNERABLE.items():
        for release in bad:
            assert not reqs[name].specifier.contains(release), f"{name} {release} is still allowed"


def test_the_installed_release_satisfies_the_floor():
    reqs = _requirements()
    for name in VULNERABLE:
        assert reqs[name].specifier.contains(version(name)), f"installed {name} {version(name)} is below the floor"
