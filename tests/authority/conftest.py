"""Helpers for the authority's own tests: client sessions, PEM files, raw form posts."""

from __future__ import annotations

import itertools

import pytest
import requests

_counter = itertools.count()


@pytest.fixture
def pem_files(tmp_path):
    """cert -> (certfile, keyfile) written under tmp_path (key 0600)."""
    def write(cert):
        n = next(_counter)
        certfile, keyfile = tmp_path / f"cert{n}.pem", tmp_path / f"key{n}.pem"
        cert.write_pem(certfile, keyfile)
        return str(certfile), str(keyfile)
    return write


@pytest.fixture
def session_for(pem_files, authority):
    """A requests.Session trusting only the authority's CA, optionally presenting ``cert``.

    ``trust_env = False``: this machine sets REQUESTS_CA_BUNDLE, which would
    otherwise override ``verify``.
    """
    sessions = []

    def make(cert=None, lab=None):
        session = requests.Session()
        session.trust_env = False
        session.verify = (lab or authority).ca_bundle
        if cert is not None:
            session.cert = pem_files(cert)
        sessions.append(session)
        return session

    yield make
    for s in sessions:
        s.close()


@pytest.fixture
def app(authority):
    """A fresh app registration in the shared directory (its own certificate with key)."""
    return authority.directory.register_app(f"test-app-{next(_counter)}")


def _form(client_id, scope="https://graph.microsoft.com/.default", **extra):
    data = {"client_id": client_id, "grant_type": "client_credentials", "scope": scope}
    data.update(extra)
    return data


@pytest.fixture
def form():
    """form(client_id, scope=..., **extra) -> the client_credentials form as a dict."""
    return _form
