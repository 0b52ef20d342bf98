"""The lab's transport: its own trust (REQUESTS_CA_BUNDLE cannot override it), timing, recording."""

from __future__ import annotations

import pytest

from mtlspop_lab.errors import TransportError
from mtlspop_lab.flows import RetryPolicy
from mtlspop_lab.transport import Transport, record, transport_error

import requests


def _discovery(authority):
    return f"{authority.login_url}/{authority.tenant_id}/v2.0/.well-known/openid-configuration"


def test_records_new_then_reused_connections(authority):
    with Transport(ca_bundle=authority.ca_bundle) as transport:
        with record("demo") as trips:
            transport.get(_discovery(authority))
            transport.get(_discovery(authority))
        first, second = trips
        assert (first.leg, first.kind, first.status) == ("demo", "discovery", 200)
        assert first.new_connection and first.tls_handshake_ms is not None and first.tls_handshake_ms > 0
        assert not second.new_connection and second.tls_handshake_ms is None
        assert transport.trace == trips and all(t.elapsed_ms > 0 for t in trips)


def test_lab_trust_wins_over_requests_ca_bundle(authority, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    with Transport(ca_bundle=authority.ca_bundle) as transport:          # lab CA: accepted
        assert transport.get(_discovery(authority)).status_code == 200
    with Transport(retry=RetryPolicy.none()) as system:                  # system trust: refused
        with pytest.raises(requests.exceptions.SSLError) as info:
            system.get(_discovery(authority))
        err = transport_error(info.value, _discovery(authority))
        assert isinstance(err, TransportError) and err.code == "tls_error" and "CA bundle" in err.fix
        assert system.trace[-1].error == "tls_error"


def test_client_certificate_is_presented(authority):
    app = authority.directory.register_app("transport-cert")
    with Transport(certificate=app.certificate, ca_bundle=authority.ca_bundle) as transport:
        transport.get(f"{authority.mtls_url}/{authority.tenant_id}/v2.0/.well-known/openid-configuration")
        assert transport.trace[-1].client_cert_x5t == app.certificate.x5t_s256
    assert authority.trace[-1].client_cert_x5t == app.certificate.x5t_s256
    assert "private" not in repr(Transport(certificate=app.certificate)).lower()
