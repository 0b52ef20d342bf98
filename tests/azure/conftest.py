"""Shared set-up for the Azure SDK tests: the documented settings, a fresh app, sessions.

Every test talks to the embedded authority through real sockets. The Azure
SDK clients get only what their documentation offers: ``authority=``,
``disable_instance_discovery=``, ``connection_verify=`` and the
``AZURE_POD_IDENTITY_AUTHORITY_HOST`` environment variable. The azure extra
is part of the test extra, so these tests import it directly (never skipped).
"""

from __future__ import annotations

import itertools

import pytest

_counter = itertools.count()


@pytest.fixture
def sdk_settings(authority):
    """The documented keyword arguments that point an azure-identity credential at the lab."""
    return {"authority": authority.login_url, "disable_instance_discovery": True,
            "connection_verify": authority.ca_bundle}


@pytest.fixture
def imds_env(authority, monkeypatch):
    """ManagedIdentityCredential's documented hook for another IMDS address."""
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", authority.imds_url)
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT",
                 "AZURE_FEDERATED_TOKEN_FILE", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)     # other hosting environments would win over IMDS
    return authority.imds_url


@pytest.fixture
def app(authority):
    return authority.directory.register_app(f"azure-sdk-app-{next(_counter)}")


@pytest.fixture
def resource_path():
    return f"/v1.0/applications/{next(_counter)}"
