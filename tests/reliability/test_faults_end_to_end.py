"""Every fault the authority can inject, against every flow: documented behaviour, bounded requests.

The flows (tests/reliability/conftest.py ``World``): confidential client PoP and
Bearer, managed identity Bearer (IMDS v1 via msal) and PoP (IMDS v2 + regional
mTLS), FIC leg 2 PoP and Bearer. For each fault:

* transient (the next request only): retried with backoff, then the right token;
  exactly two requests reach the faulty endpoint (the authority's trace says so);
* persistent: a ``LabError`` subclass with a code, a cause and a fix, after exactly
  ``max_attempts`` requests (one for a refused connection or a downgrade);
* while a still-valid cached token exists: that token is served.

No thread is left behind (``no_thread_left``, autouse). Backoff is shortened
with ``RetryPolicy.fast`` (same code path as the defaults); nothing is patched.
"""

from __future__ import annotations

import time

import pytest

from mtlspop_lab.certs import Certificate, CertificateAuthority
from mtlspop_lab.cloud import Cloud
from mtlspop_lab.errors import (AuthorityError, LabError, ManagedIdentityError, TokenTypeMismatchError,
                                TransportError)
from mtlspop_lab.flows import FicLeg1Acquirer, MtlsPopTokenAcquirer, RetryPolicy
from mtlspop_lab.inspector import check_binding, decode_token

from reliability_support import GRAPH, TOKEN_PATH, VAULT, World

ATTEMPTS = 3
FLOWS = World.FLOWS
TRANSIENT = {
    "429+Retry-After": dict(kind="status", status=429, retry_after=0.25),
    "500": dict(kind="status", status=500),
    "503": dict(kind="status", status=503),
    "slow": dict(kind="slow", delay_ms=1600),
    "reset": dict(kind="reset"),
    "malformed_json": dict(kind="malformed_json"),
}
READ_TIMEOUT = 0.8          # generous: a loaded 2-core machine must not time out a normal answer
MATRIX = [(flow, fault) for flow in FLOWS for fault in TRANSIENT]


def _eventually(predicate, within_s=5.0):
    deadline = time.monotonic() + within_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def _token_entries(lab, world, flow):
    return [e for e in lab.trace if world.token_path(flow) in e.path and e.method != "TLS"]


def _assert_good(world, flow, result, resource=GRAPH):
    claims = decode_token(result.access_token).claims
    assert claims["aud"] == resource
    # Graph (and the other Microsoft resources used here) accept v1.0 tokens: the client is in appid
    assert claims.get("appid", claims.get("azp")) == world.expected_client_id(flow)
    if flow in World.POP_FLOWS:
        assert result.token_type == "mtls_pop"
        assert check_binding(result.access_token, result.binding_certificate).bound
    else:
        assert result.token_type == "Bearer" and result.binding_certificate is None and "cnf" not in claims


def _assert_useful(error: LabError):
    assert isinstance(error, LabError)
    assert error.cause.strip() and error.fix.strip() and error.message.strip()


@pytest.fixture
def client(world, request):
    made = []

    def make(flow, **kwargs):
        kwargs.setdefault("timeout", (2.0, READ_TIMEOUT))
        c = world.client(flow, retry=RetryPolicy.fast(ATTEMPTS), **kwargs)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


@pytest.mark.parametrize("flow,fault", MATRIX)
def test_transient_fault_is_retried_then_succeeds(lab, world, client, flow, fault):
    c = client(flow)
    c.warm()
    lab.clear_trace()
    spec = dict(TRANSIENT[fault])
    kind = spec.pop("kind")
    lab.inject_fault(kind, count=1, listener=world.token_listener(flow), path_contains=world.token_path(flow), **spec)
    result = c.acquire()
    _assert_good(world, flow, result)
    assert result.source == "identity_provider"
    # exactly two requests reached the token endpoint: the faulty one and the retry
    assert _eventually(lambda: len(_token_entries(lab, world, flow)) == 2), _token_entries(lab, world, flow)
    first, second = sorted(_token_entries(lab, world, flow), key=lambda e: e.timestamp - e.elapsed_ms / 1000)
    assert first.fault is not None and second.fault is None and second.status == 200
    if fault.startswith("429"):
        retried = [t for t in result.round_trips if t.attempt == 2]
        assert retried and retried[0].retry_delay_ms >= 250, "Retry-After was not honoured"
    assert not lab.pending_faults


# fault -> (error code, error type for the token service; IMDS answers raise ManagedIdentityError)
PERSISTENT = {
    "429+Retry-After": ("throttled", AuthorityError),
    "500": ("service_unavailable", AuthorityError),
    "503": ("service_unavailable", AuthorityError),
    "slow": ("read_timeout", TransportError),
    "reset": ("connection_reset", TransportError),
    "malformed_json": ("malformed_response", AuthorityError),
}


@pytest.mark.parametrize("flow,fault", MATRIX)
def test_persistent_fault_is_a_clear_error_after_bounded_attempts(lab, world, client, flow, fault):
    c = client(flow)
    c.warm()
    lab.clear_trace()
    spec = dict(TRANSIENT[fault])
    kind = spec.pop("kind")
    if kind == "slow":
        spec["delay_ms"] = 1500
    if kind == "status" and spec["status"] == 429:
        spec["retry_after"] = 0.05
    lab.inject_fault(kind, count=50, listener=world.token_listener(flow), path_contains=world.token_path(flow), **spec)
    started = time.monotonic()
    with pytest.raises(LabError) as info:
        c.acquire()
    _assert_useful(info.value)
    code, expected = PERSISTENT[fault]
    if flow == "mi_bearer" and expected is AuthorityError:
        expected = ManagedIdentityError
    assert info.value.code == code and type(info.value) is expected, (type(info.value), str(info.value))
    assert time.monotonic() - started < 10
    lab.clear_faults()
    # bounded: max_attempts requests, not one more (the slow ones are traced when the server gives up)
    assert _eventually(lambda: len(_token_entries(lab, world, flow)) >= ATTEMPTS, within_s=5)
    time.sleep(0.1)
    assert len(_token_entries(lab, world, flow)) == ATTEMPTS
    # and the flow recovers at once when the fault clears (no stale error replayed by msal)
    _assert_good(world, flow, c.acquire())


@pytest.mark.parametrize("flow", FLOWS)
def test_bearer_downgrade(lab, world, client, flow):
    """Asked mtls_pop, answered Bearer: refused (never retried, never cached). Bearer flows: harmless."""
    c = client(flow)
    c.warm()
    lab.clear_trace()
    lab.inject_fault("bearer_downgrade", count=1, listener=world.token_listener(flow),
                     path_contains=world.token_path(flow))
    if flow in World.POP_FLOWS:
        with pytest.raises(TokenTypeMismatchError) as info:
            c.acquire()
        _assert_useful(info.value)
        assert info.value.code == "token_type_mismatch"
        assert len(_token_entries(lab, world, flow)) == 1
        assert len(c.cache) == 1                       # only the warm-up token: nothing wrong was stored
    result = c.acquire()
    _assert_good(world, flow, result)
    assert result.source == "identity_provider"


@pytest.mark.parametrize("flow", FLOWS)
def test_still_valid_cached_token_is_served_while_the_authority_fails(lab, world, client, flow):
    c = client(flow)
    lab.set_token_lifetime(200)                       # inside the 5-minute refresh margin: "aging"
    c.warm()
    first = c.acquire()
    assert first.source == "identity_provider"
    lab.clear_trace()
    lab.inject_fault("status", count=50, listener=world.token_listener(flow), status=503,
                     path_contains=world.token_path(flow))
    second = c.acquire()
    assert second.source == "cache" and second.access_token == first.access_token
    # it did try to refresh, boundedly (FIC: leg 1's aging assertion too, then leg 2)
    legs = 2 if flow.startswith("fic") else 1
    assert len(_token_entries(lab, world, flow)) == legs * ATTEMPTS
    lab.clear_faults()
    third = c.acquire()
    assert third.source == "identity_provider" and third.access_token != first.access_token
    _assert_good(world, flow, third)


@pytest.mark.parametrize("flow", FLOWS)
def test_expired_cached_token_is_never_served(lab, world, client, flow):
    """Deterministic: waits on the cache's own verdict, not on a fixed sleep.

    The short lifetime applies to the token under test only: warm() runs with
    the default lifetime, so FIC's leg-1 assertion stays valid however slow the
    machine (a 1 s assertion could expire before leg 2 reached the authority).
    """
    c = client(flow)
    c.warm()                                           # discovery, IMDS certificate, leg 1: long-lived
    lab.set_token_lifetime(2)                          # expires_in = 1 s for the token under test
    first = c.acquire()
    assert first.source == "identity_provider"
    assert _eventually(lambda: c.cache.state(first) == "expired", within_s=10.0)
    lab.inject_fault("status", count=50, listener=world.token_listener(flow), status=503,
                     path_contains=world.token_path(flow))
    with pytest.raises(LabError) as info:
        c.acquire()
    _assert_useful(info.value)
    lab.clear_faults()
    lab.set_token_lifetime(3600)
    fresh = c.acquire()
    assert fresh.access_token != first.access_token


# -- TLS handshake failures ------------------------------------------------------------------------
def test_unknown_client_certificate_fails_at_tls_with_a_clear_error(lab, world):
    stranger = Certificate.create_self_signed("CN=never-registered")          # not trusted by the listener
    acquirer = MtlsPopTokenAcquirer.for_confidential_client(world.app.client_id, world.app.tenant_id, stranger,
                                                            cloud=lab.cloud, retry=RetryPolicy.fast(ATTEMPTS))
    try:
        with pytest.raises(TransportError) as info:
            acquirer.acquire_token(GRAPH)
        _assert_useful(info.value)
        assert info.value.code == "tls_error" and "certificate" in info.value.fix
        failures = [e for e in lab.trace if e.method == "TLS" and e.listener == "mtls"]
        assert 1 <= len(failures) <= ATTEMPTS
        assert lab.count_requests(path_contains=TOKEN_PATH) == 0          # never reached OAuth
    finally:
        acquirer.close()


def test_untrusted_server_certificate_fails_with_a_clear_error(lab, world, tmp_path):
    """The client's trust anchor is another CA: the lab refuses the authority, never falls back."""
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(CertificateAuthority("not the authority").pem)
    base = lab.cloud
    wrong = Cloud(name="wrong-trust", login_url=base.login_url, mtls_url=base.mtls_url,
                  regional_mtls_urls=dict(base.regional_mtls_urls), imds_url=base.imds_url,
                  ca_bundle=str(other_ca), is_local=True)
    for use_pop in (True, False):
        acquirer = MtlsPopTokenAcquirer.for_confidential_client(world.app.client_id, world.app.tenant_id,
                                                                world.app.certificate, cloud=wrong,
                                                                retry=RetryPolicy.fast(ATTEMPTS))
        try:
            with pytest.raises(TransportError) as info:
                acquirer.acquire_token(GRAPH, use_pop=use_pop)
            _assert_useful(info.value)
            assert info.value.code == "tls_error" and info.value.fix != TransportError.default_fix
            assert len(acquirer.round_trips) <= ATTEMPTS
        finally:
            acquirer.close()
    assert lab.count_requests() == 0


# -- IMDS absent, v1 only ----------------------------------------------------------------------------
@pytest.mark.parametrize("flow", ["mi_bearer", "mi_pop", "fic_leg1_mi"])
def test_imds_absent(lab, world, flow):
    lab.set_imds_mode("absent")
    retry = RetryPolicy.fast(ATTEMPTS)
    if flow == "fic_leg1_mi":
        leg1 = FicLeg1Acquirer.for_managed_identity(world.sami, cloud=lab.cloud, retry=retry)
        call, acquirer = leg1.acquire_assertion, leg1.acquirer
    else:
        acquirer = MtlsPopTokenAcquirer.for_managed_identity(world.sami, cloud=lab.cloud, retry=retry)
        call = lambda: acquirer.acquire_token(GRAPH, use_pop=flow == "mi_pop")   # noqa: E731
    try:
        started = time.monotonic()
        with pytest.raises(ManagedIdentityError) as info:
            call()
        _assert_useful(info.value)
        assert info.value.code == "imds_unreachable"
        assert "Azure" in info.value.cause and "LocalAuthority" in info.value.fix
        assert len(acquirer.round_trips) == 1              # "refused" means "not on Azure": no retry
        assert time.monotonic() - started < 3
    finally:
        acquirer.close()


def test_imds_disappearing_after_a_token_was_cached(lab, world):
    acquirer = MtlsPopTokenAcquirer.for_managed_identity(world.sami, cloud=lab.cloud,
                                                         retry=RetryPolicy.fast(ATTEMPTS))
    try:
        lab.set_token_lifetime(200)                      # aging: a refresh is attempted on every call
        first = acquirer.acquire_token(GRAPH, use_pop=False)
        lab.set_imds_mode("absent")
        again = acquirer.acquire_token(GRAPH, use_pop=False)
        assert again.source == "cache" and again.access_token == first.access_token
        # PoP: the IMDS v2 certificate is still valid, so a refresh needs no IMDS at all
        lab.set_imds_mode("v2")
        pop = acquirer.acquire_token(GRAPH, use_pop=True)
        lab.set_imds_mode("absent")
        lab.clear_trace()
        refreshed = acquirer.acquire_token(GRAPH, use_pop=True)
        assert refreshed.source == "identity_provider" and refreshed.access_token != pop.access_token
        assert refreshed.binding_certificate == pop.binding_certificate
        assert [e.listener for e in lab.trace] == ["mtls:westus3"]
        # and with the token endpoint failing too, the aging PoP token is served
        lab.inject_fault("status", count=50, listener="regional", status=503)
        assert acquirer.acquire_token(GRAPH, use_pop=True).source == "cache"
    finally:
        acquirer.close()


@pytest.mark.parametrize("flow", ["mi_pop", "fic_leg1_mi"])
def test_imds_v1_only_refuses_pop_with_one_probe(lab, world, flow):
    lab.set_imds_mode("v1_only")
    retry = RetryPolicy.fast(ATTEMPTS)
    if flow == "fic_leg1_mi":
        leg1 = FicLeg1Acquirer.for_managed_identity(world.sami, cloud=lab.cloud, retry=retry)
        call, acquirer = leg1.acquire_assertion, leg1.acquirer
    else:
        acquirer = MtlsPopTokenAcquirer.for_managed_identity(world.sami, cloud=lab.cloud, retry=retry)
        call = lambda: acquirer.acquire_token(GRAPH, use_pop=True)   # noqa: E731
    try:
        with pytest.raises(ManagedIdentityError) as info:
            call()
        _assert_useful(info.value)
        assert info.value.code == "mtls_pop_token_not_supported_in_imds_v1"
        assert "use_pop=False" in info.value.fix
        assert lab.count_requests(path_contains="getplatformmetadata") == 1
        assert lab.count_requests(path_contains="issuecredential") == 0
        assert lab.count_requests(path_contains=TOKEN_PATH) == 0
        bearer = acquirer.acquire_token(VAULT, use_pop=False)          # v1 still serves Bearer
        assert bearer.token_type == "Bearer"
    finally:
        acquirer.close()


@pytest.mark.parametrize("fault", ["503", "reset", "malformed_json"])
@pytest.mark.parametrize("step", ["getplatformmetadata", "issuecredential"])
def test_imds_v2_steps_are_retried(lab, world, client, fault, step):
    c = client("mi_pop")
    spec = dict(TRANSIENT[fault])
    lab.inject_fault(spec.pop("kind"), count=1, listener="imds", path_contains=step, **spec)
    result = c.acquire()
    _assert_good(world, "mi_pop", result)
    assert lab.count_requests(path_contains=step) == 2
    assert lab.count_requests(path_contains="issuecredential") <= 2


def test_fault_knobs_refuse_bad_arguments(lab):
    for call in (lambda: lab.inject_fault("meteor"), lambda: lab.inject_fault("status", count=0),
                 lambda: lab.inject_fault("status", status=200), lambda: lab.inject_fault("reset", listener="moon"),
                 lambda: lab.set_imds_mode("v3"), lambda: lab.set_delay(-1), lambda: lab.set_token_lifetime(0)):
        with pytest.raises(LabError) as info:
            call()
        _assert_useful(info.value)
    assert not lab.pending_faults
