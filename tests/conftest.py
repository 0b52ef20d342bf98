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
