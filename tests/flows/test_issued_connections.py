"""close_issued_connections(): a new TLS connection, the same IMDS v2 certificate, no re-mint.

The lab's latency bench relies on it for a managed identity's "cold" state, so
these tests check both what the client recorded and what the server saw.
"""

from __future__ import annotations

from mtlspop_lab.flows import (ManagedIdentityId, MtlsPopTokenAcquirer, close_issued_connections,
                               forget_issued_certificates)
from mtlspop_lab.inspector import check_binding

GRAPH = "https://graph.microsoft.com"

IMDS_V2_PATHS = ("/metadata/identity/getplatformmetadata", "/metadata/identity/issuecredential")


def _acquire(authority, resource=GRAPH):
    """One PoP acquisition by a new acquirer (empty token cache, new IMDS transport)."""
    with MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.system_assigned(),
                                                   cloud=authority.cloud) as acquirer:
        return acquirer.acquire_token(resource)


def _imds_v2_requests(trace) -> list[str]:
    return [e.path for e in trace if e.path.split("?")[0] in IMDS_V2_PATHS]


def test_closed_connections_are_reopened_with_the_same_certificate_and_no_mint(authority):
    minted = _acquire(authority)
    assert [t.kind for t in minted.round_trips] == ["getplatformmetadata", "issuecredential", "token"]
    kept_alive = _acquire(authority)
    assert [t.kind for t in kept_alive.round_trips] == ["token"]
    assert kept_alive.round_trips[0].new_connection is False     # the certificate's connection is reused

    authority.clear_trace()
    assert close_issued_connections() == 1
    reopened = _acquire(authority)

    assert reopened.source == "identity_provider"
    assert [t.kind for t in reopened.round_trips] == ["token"]
    trip = reopened.round_trips[0]
    assert trip.new_connection is True and trip.tls_handshake_ms is not None
    assert reopened.binding_certificate == minted.binding_certificate
    assert check_binding(reopened.access_token, reopened.binding_certificate).bound
    # the server's side: one token request on a new connection with that certificate, no IMDS v2 call
    trace = authority.trace
    assert _imds_v2_requests(trace) == []
    token_requests = [e for e in trace if e.path.endswith("/oauth2/v2.0/token")]
    assert len(token_requests) == 1 and token_requests[0].new_connection
    assert token_requests[0].client_cert_x5t == minted.binding_certificate.x5t_s256

    # the transport stays usable after the close and keeps its new connection alive again
    again = _acquire(authority)
    assert [t.kind for t in again.round_trips] == ["token"] and again.round_trips[0].new_connection is False


def test_closing_twice_or_without_a_certificate_is_harmless(authority):
    assert close_issued_connections() == 0                     # nothing issued yet in this test
    first = _acquire(authority)
    assert close_issued_connections() == 1
    assert close_issued_connections() == 1                     # closing an empty pool again
    reopened = _acquire(authority)
    assert [t.kind for t in reopened.round_trips] == ["token"] and reopened.round_trips[0].new_connection
    assert reopened.binding_certificate == first.binding_certificate


def test_forgetting_differs_from_closing_it_mints_again(authority):
    first = _acquire(authority)
    close_issued_connections()
    assert _acquire(authority).binding_certificate == first.binding_certificate
    forget_issued_certificates()
    authority.clear_trace()
    reminted = _acquire(authority)
    assert [t.kind for t in reminted.round_trips] == ["getplatformmetadata", "issuecredential", "token"]
    assert len(_imds_v2_requests(authority.trace)) == 2
    assert reminted.binding_certificate != first.binding_certificate
    assert close_issued_connections() == 1                     # the old certificate is gone, not kept
