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

import pytest

from mtlspop_lab.authority import LocalAuthority


@pytest.fixture(scope="session")
def authority():
    with LocalAuthority() as lab_authority:
        yield lab_authority


@pytest.fixture(autouse=True)
def _reset_shared_authority(request):
    """Give each test that uses the session authority a clean trace and default knobs."""
    if "authority" not in request.fixturenames:
        yield
        return
    shared = request.getfixturevalue("authority")
    if not isinstance(shared, LocalAuthority):     # a directory overrode the fixture with its own object
        yield
        return
    shared.clear_trace()
    yield
    shared.reset_knobs()


@pytest.fixture
def fresh_authority():
    with LocalAuthority() as lab_authority:
        yield lab_authority
