"""Fixtures for the guide-details tests (issue 14); the authority fixtures live in tests/conftest.py."""

from __future__ import annotations

import pytest

from mtlspop_lab.certs import Certificate
from mtlspop_lab.flows import forget_issued_certificates


@pytest.fixture(autouse=True)
def _fresh_imds_certificates():
    """IMDS v2 certificates are process-wide (as on a VM); start every test without one."""
    forget_issued_certificates()
    yield
    forget_issued_certificates()


@pytest.fixture(scope="session")
def attacker_certificate(authority):
    """A certificate the TLS layer accepts but that no app registered."""
    cert = Certificate.create_self_signed("CN=guide-attacker")
    authority.trust_client_certificate(cert)
    return cert
