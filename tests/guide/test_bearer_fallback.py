"""Bearer fall-back: only for a resource that refuses bound tokens, only when allowed, never silently."""

from __future__ import annotations

import pytest

import mtlspop_lab as lab
from mtlspop_lab.errors import AuthorityError, ConfigurationError, ResourceAccessError, TokenTypeMismatchError
from mtlspop_lab.flows import ManagedIdentityId, MtlsPopTokenAcquirer, call_resource

GRAPH = "https://graph.microsoft.com"
LEGACY = "https://legacy.contoso.example"      # the directory's Bearer-only resource
TOKEN_PATH = "/oauth2/v2.0/token"


def _cc(authority, app, **kwargs):
    return MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                        cloud=authority.cloud, **kwargs)


def test_a_resource_that_accepts_pop_gets_pop_and_no_note(authority):
    app = authority.directory.register_app("fallback-pop")
    with _cc(authority, app) as acquirer:
        result = lab.acquire_with_fallback(acquirer, GRAPH, allow_bearer=True)
    assert result.token_type == "mtls_pop" and result.notes == ()


def test_bearer_only_resource_refused_without_permission(authority):
    app = authority.directory.register_app("fallback-refused")
    with _cc(authority, app) as acquirer:
        with pytest.raises(ConfigurationError) as info:
            lab.acquire_with_fallback(acquirer, LEGACY, allow_bearer=False)
    assert info.value.code == "bearer_fallback_not_allowed" and "392196" in info.value.message
    assert authority.count_requests(path_contains=TOKEN_PATH, client_id=app.client_id) == 1
    errors = [e.error for e in authority.trace if e.client_id == app.client_id]
    assert errors == ["invalid_request AADSTS392196"]


def test_bearer_only_resource_falls_back_when_allowed_and_says_so(authority):
    app = authority.directory.register_app("fallback-allowed")
    with _cc(authority, app) as acquirer:
        result = lab.acquire_with_fallback(acquirer, LEGACY, allow_bearer=True)
        assert result.token_type == "Bearer" and result.binding_certificate is None
        assert [t.endpoint.startswith(authority.cloud.login_url + "/") for t in result.round_trips
                if t.kind == "token"] == [True]                     # the Bearer request: the login host
        assert len(result.notes) == 1 and "AADSTS392196" in result.notes[0]
        assert "cnf" not in lab.decode_token(result.access_token).claims
        assert call_resource(authority.resource_url, result).status_code == 200
        # the pattern is per resource: Graph still gets PoP from the same acquirer
        assert lab.acquire_with_fallback(acquirer, GRAPH, allow_bearer=True).token_type == "mtls_pop"
    statuses = [e.status for e in authority.trace if e.client_id == app.client_id and TOKEN_PATH in e.path]
    assert statuses == [400, 200, 200]         # PoP refused (392196), Bearer for legacy, PoP for Graph


def test_managed_identity_falls_back_to_imds_v1(authority):
    mi = ManagedIdentityId.user_assigned_client_id(authority.directory.user_assigned[1].client_id)
    with MtlsPopTokenAcquirer.for_managed_identity(mi, cloud=authority.cloud) as acquirer:
        result = lab.acquire_with_fallback(acquirer, LEGACY, allow_bearer=True)
    assert result.token_type == "Bearer" and "AADSTS392196" in result.notes[0]
    assert authority.count_requests(path_contains="/metadata/identity/oauth2/token") == 1


def test_allow_bearer_must_be_said(authority):
    app = authority.directory.register_app("fallback-explicit")
    with _cc(authority, app) as acquirer:
        with pytest.raises(TypeError):
            lab.acquire_with_fallback(acquirer, LEGACY)          # noqa - no default on purpose
        with pytest.raises(ConfigurationError):
            lab.acquire_with_fallback(acquirer, LEGACY, allow_bearer="yes")
    assert authority.count_requests(client_id=app.client_id) == 0


def test_a_downgrade_is_never_a_reason_to_fall_back(authority):
    app = authority.directory.register_app("fallback-downgrade")
    with _cc(authority, app) as acquirer:
        authority.inject_fault("bearer_downgrade", listener="mtls")
        with pytest.raises(TokenTypeMismatchError):
            lab.acquire_with_fallback(acquirer, GRAPH, allow_bearer=True)
    assert authority.count_requests(path_contains=TOKEN_PATH, client_id=app.client_id) == 1   # no Bearer retry


def test_a_certificate_problem_is_never_a_reason_to_fall_back(authority, attacker_certificate):
    app = authority.directory.register_app("fallback-wrong-cert")
    acquirer = MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, attacker_certificate,
                                                            cloud=authority.cloud)
    with acquirer, pytest.raises(AuthorityError) as info:
        lab.acquire_with_fallback(acquirer, LEGACY, allow_bearer=True)
    assert info.value.aadsts == 700027
    assert authority.count_requests(path_contains=TOKEN_PATH, client_id=app.client_id) == 1


def test_the_resource_server_refusing_a_bound_token(authority):
    """A PoP token issued while the API accepted bound tokens; the API is then switched to Bearer-only."""
    uri = "https://switching.contoso.example"
    authority.directory.add_resource(uri, "switching API", accepts_bound_tokens=True)
    app = authority.directory.register_app("fallback-resource-side")
    try:
        with _cc(authority, app) as acquirer:
            pop = acquirer.acquire_token(uri)
            authority.directory.add_resource(uri, "switching API", accepts_bound_tokens=False)
            with pytest.raises(ResourceAccessError) as info:
                call_resource(authority.resource_url, pop)
            assert info.value.code == "bound_token_not_supported" and info.value.status == 401
            with pytest.raises(ResourceAccessError):
                lab.call_resource_with_fallback(authority.resource_url, acquirer, uri, allow_bearer=False)
            result, response = lab.call_resource_with_fallback(authority.resource_url, acquirer, uri,
                                                                allow_bearer=True)
            assert response.status_code == 200 and result.token_type == "Bearer"
            assert result.notes and "not bound" in result.notes[0]
    finally:
        authority.directory.add_resource(uri, "switching API", accepts_bound_tokens=True)
