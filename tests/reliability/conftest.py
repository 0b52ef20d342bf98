"""Fixtures for the cross-cutting reliability and security tests.

``lab``          one LocalAuthority per test module, started after a snapshot of
                 the live threads; at teardown it is closed and every thread it
                 (or a client talking to it) started must be gone.
``world``        the identities of that authority that the tests use: two apps
                 (one trusting the other and the SAMI for FIC), the SAMI and a
                 UAMI, each with a factory for its flow (see :class:`World`).
``no_thread_left``  per test: after the test, no new thread is alive except the
                 authority's own (named ``mtlspop-*``), which live until close().

IMDS v2 certificates are process-wide (as on a VM); each test starts without one.
"""

from __future__ import annotations

import pytest

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.flows import forget_issued_certificates

from reliability_support import World, live_threads, new_threads


@pytest.fixture(autouse=True)
def _fresh_imds_certificates():
    forget_issued_certificates()
    yield
    forget_issued_certificates()


@pytest.fixture(autouse=True)
def no_thread_left():
    """Every test: the client side leaves no thread behind."""
    before = live_threads()
    yield
    forget_issued_certificates()
    leftover = new_threads(before, allow_authority=True)
    assert leftover == [], f"threads left behind: {leftover}"


@pytest.fixture(scope="module")
def lab():
    before = live_threads()
    authority = LocalAuthority()
    try:
        yield authority
    finally:
        authority.close()
        forget_issued_certificates()
        leftover = new_threads(before, allow_authority=False, within_s=10.0)
        assert leftover == [], f"threads alive after LocalAuthority.close(): {leftover}"


@pytest.fixture(autouse=True)
def _reset_lab(request):
    """Tests that use ``lab`` get a clean trace before and default knobs after."""
    if "lab" not in request.fixturenames:
        yield
        return
    authority = request.getfixturevalue("lab")
    authority.reset_knobs()
    authority.clear_trace()
    yield
    authority.reset_knobs()


@pytest.fixture(scope="module")
def world(lab):
    return World(lab)
