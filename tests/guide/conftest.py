"""Fixtures for the client-flow tests (the authority fixtures live in tests/conftest.py)."""

from __future__ import annotations

import pytest

from mtlspop_lab.certs import Certificate
from mtlspop_lab.flows import RetryPolicy, forget_issued_certificates


@pytest.fixture(autouse=True)
def _fresh_imds_certificates():
    """IMDS v2 certificates are process-wide (as on a VM); start every test without one."""
    forget_issued_certificates()
    yield
    forget_issued_certificates()


@pytest.fixture
def fast_retry():
    """The real retry logic with millisecond backoff, so fault tests stay quick."""
    return RetryPolicy.fast(max_attempts=3)


@pytest.fixture(scope="session")
def attacker_certificate(authority):
    """A certificate the TLS layer accepts but that no token is bound to."""
    cert = Certificate.create_self_signed("CN=attacker")
    authority.trust_client_certificate(cert)
    return cert
