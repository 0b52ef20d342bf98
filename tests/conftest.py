"""Shared fixtures: the embedded authority.

``authority``        one LocalAuthority for the whole session (starting one costs
                     ~0.2 s of key generation). Before each test that uses it the
                     trace is cleared; after it, the knobs (delays, faults, IMDS
                     mode, token lifetime) are reset. The directory is shared:
                     register your own apps instead of changing others'.
``fresh_authority``  a LocalAuthority of the test's own, closed afterwards; for
                     tests that need a pristine directory or watch threads/ports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mtlspop_lab.authority import LocalAuthority

# Test tiers (markers registered in pyproject.toml). The fast tier is
#   python3 -m pytest -m "not browser and not node and not notebooks and not slow"
# and .ci/run runs everything. Markers are given by where a test lives or what it
# needs, so a new test lands in the right tier without remembering to mark it.
# A module is slow when it fuzzes (hypothesis), soaks, or measures/draws a latency run;
# an entry is a file name, or folder/file name where the name alone is ambiguous.
SLOW_MODULES = {
    "test_concurrency_soak.py", "test_reliability_properties.py", "test_bench_threads.py",
    "test_faults_end_to_end.py", "test_authority_concurrency.py", "test_runner.py",
    "test_latency_panel.py", "test_authority_fuzz.py", "test_secret_hygiene.py",
    "test_inspect_bad_inputs.py", "bench/test_charts.py", "bench/test_cli.py",
    # the attack corpus of reliability round two: many sockets, subprocesses and deadlines each
    "test_closing_releases.py", "test_bad_input_corpus.py", "test_trace_bounds.py", "test_cli_hostile_input.py",
    "test_http_framing_and_limits.py", "test_files_left_behind.py",
    "widgets/test_troubleshoot.py", "flows/test_faults_and_errors.py",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath))
        folder = path.parent.name
        if folder == "browser":
            item.add_marker(pytest.mark.browser)
        if folder == "notebooks":
            item.add_marker(pytest.mark.notebooks)
        if "oidc_provider" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.node)
        if path.name in SLOW_MODULES or f"{folder}/{path.name}" in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


_SESSION_AUTHORITIES: list = []


@pytest.fixture(scope="session")
def authority():
    with LocalAuthority() as lab_authority:
        _SESSION_AUTHORITIES.append(lab_authority)
        yield lab_authority


@pytest.fixture(autouse=True)
def _reset_shared_authority(request):
    """Give each test that uses the session authority a clean trace and default knobs.

    Only this file's session authority is touched: a directory that overrides
    ``authority`` with a fixture of its own keeps its knobs across its tests.
    """
    if "authority" not in request.fixturenames:
        yield
        return
    shared = request.getfixturevalue("authority")
    if not any(shared is a for a in _SESSION_AUTHORITIES):
        yield
        return
    shared.clear_trace()
    yield
    shared.reset_knobs()


@pytest.fixture
def fresh_authority():
    with LocalAuthority() as lab_authority:
        yield lab_authority
