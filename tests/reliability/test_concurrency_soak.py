"""Concurrency soak: 8 threads x 500 acquisitions across identities and flows, with random faults.

Shared acquirers (as the seed advises: create once, reuse), one per flow:
confidential client PoP and Bearer, managed identity Bearer (IMDS v1) and PoP
(IMDS v2), FIC leg 1 + leg 2 PoP and Bearer, and the SAMI both ways; four
resources. Each thread draws (seeded) a flow and a resource per iteration; with
small probabilities it also injects a one-shot fault on that flow's token
listener (503, 429, reset, malformed JSON, a slow answer, a Bearer downgrade)
or empties that flow's cache, so real fetches happen under contention.

The mix (seeded, so stable): about 90% of the acquisitions are cache hits (with a shared cache the
first caller of a key fetches and the others wait for it or find it fresh);
the rest reach the authority, some of them through a fault. See the printed
summary (``pytest -s``).

Checked: every token is for the resource asked, from the expected client, of
the requested type and, when PoP, bound to the expected certificate (``cnf``
equals the binding certificate, which is the identity's); every exception is a
``LabError``; the token requests the authority saw are exactly one clean request per
fetched token plus the requests the injected faults spoiled.

Then the same kind of load against moving parts: certificate rotation, more
resource transports than the cache keeps, IMDS appearing and disappearing, the
TLS trust store growing during handshakes, and the authority closing with
requests in flight.
"""

from __future__ import annotations

import collections
import random
import threading
import time

from mtlspop_lab.certs import Certificate
from mtlspop_lab.errors import LabError
from mtlspop_lab.flows import MtlsPopTokenAcquirer, RetryPolicy, call_resource
from mtlspop_lab.inspector import decode_token

from reliability_support import GRAPH, STORAGE, TOKEN_PATH, VAULT, World

THREADS, PER_THREAD, SEED = 8, 500, 20261126
ATTEMPTS = 3
RESOURCES = (GRAPH, VAULT, STORAGE, "api://mtlspop-lab-api")
P_FAULT, P_CLEAR = 0.006, 0.02
FAULTS = (("status", {"status": 503}), ("status", {"status": 429, "retry_after": 0}), ("reset", {}),
          ("malformed_json", {}), ("slow", {"delay_ms": 2000}), ("bearer_downgrade", {}))


class Target:
    """One shared client and what its tokens must look like."""

    def __init__(self, name, acquire, cache, listener, token_path, use_pop, client_id, binding_check):
        self.name, self.acquire, self.cache = name, acquire, cache
        self.listener, self.token_path, self.use_pop = listener, token_path, use_pop
        self.client_id, self.binding_check = client_id, binding_check


def _targets(lab, world):
    retry = RetryPolicy.fast(ATTEMPTS)
    timeout = (2.0, 1.5)          # generous: only the injected slow answers may time out
    app_x5t = world.app.certificate.x5t_s256
    uami_cid = world.uami_record.client_id
    sami_cid = lab.directory.system_assigned.client_id
    targets, closers = [], []
    for flow in World.FLOWS:
        client = world.client(flow, retry=retry, timeout=timeout)
        closers.append(client.close)
        if flow.startswith("fic"):
            leg1, leg2 = client._leg1, client._leg2

            def acquire(resource, leg1=leg1, leg2=leg2, use_pop=client.use_pop):
                assertion = leg1.acquire_assertion()
                return [assertion, leg2.exchange_assertion_for_access_token(assertion, resource, use_pop=use_pop)]
        else:
            def acquire(resource, client=client):
                return [client.acquire(resource)]
        if flow == "mi_pop":
            check = lambda cert, cid=uami_cid: f"CN={cid}" in cert.subject     # noqa: E731 - issued by IMDS v2
        else:
            check = lambda cert: cert.x5t_s256 == app_x5t                       # noqa: E731 - the app's (leg 1's)
        targets.append(Target(flow, acquire, client.cache, world.token_listener(flow), world.token_path(flow),
                              client.use_pop, world.expected_client_id(flow), check))
    sami = MtlsPopTokenAcquirer.for_managed_identity(world.sami, cloud=lab.cloud, retry=retry, timeout=timeout)
    closers.append(sami.close)
    for use_pop in (False, True):
        targets.append(Target(
            f"sami_{'pop' if use_pop else 'bearer'}", lambda r, u=use_pop: [sami.acquire_token(r, use_pop=u)],
            sami.cache, "regional" if use_pop else "imds", TOKEN_PATH if use_pop else "/metadata/identity/oauth2/token",
            use_pop, sami_cid, lambda cert, cid=sami_cid: f"CN={cid}" in cert.subject))
    return targets, closers


def _check(target: Target, resource: str, result, problems: list, audiences: dict | None = None) -> None:
    claims = decode_token(result.access_token).claims
    leg1 = result.flow == "fic_leg1"
    # a v2.0 API (the lab's own) is named by its application id in aud; Microsoft's resources by their URI
    expected_aud = "api://AzureADTokenExchange" if leg1 else (audiences or {}).get(resource, resource)
    use_pop = True if leg1 else target.use_pop
    client = claims.get("appid", claims.get("azp"))     # v1.0 tokens (Microsoft's resources) name it appid
    client_id = target.client_id if not leg1 else client
    if claims.get("aud") != expected_aud or client != client_id:
        problems.append(f"{target.name}: token for {claims.get('aud')}/{client}")
    if use_pop:
        cert = result.binding_certificate
        if result.token_type != "mtls_pop" or cert is None:
            problems.append(f"{target.name}: asked PoP, got {result.token_type}")
        elif claims.get("cnf", {}).get("x5t#S256") != cert.x5t_s256 or not target.binding_check(cert):
            problems.append(f"{target.name}: bound to the wrong certificate")
    elif result.token_type != "Bearer" or result.binding_certificate is not None or "cnf" in claims:
        problems.append(f"{target.name}: asked Bearer, got {result.token_type} with cnf={claims.get('cnf')}")


def test_soak(lab, world):
    audiences = {r: lab.directory.find_resource(r).audience for r in RESOURCES}
    targets, closers = _targets(lab, world)
    for target in targets:                                         # discovery, IMDS v2 certificates, leg 1
        target.acquire(STORAGE)
        target.cache.clear()
    lab.clear_trace()
    outcomes = collections.Counter()
    problems: list[str] = []
    unexpected: list[BaseException] = []
    errors: list[LabError] = []
    lock = threading.Lock()
    faults_injected = collections.Counter()
    barrier = threading.Barrier(THREADS)

    def worker(index: int):
        rng = random.Random(SEED + index)
        barrier.wait()
        for _ in range(PER_THREAD):
            target = rng.choice(targets)
            resource = rng.choice(RESOURCES)
            if rng.random() < P_FAULT:
                kind, extra = rng.choice(FAULTS)
                lab.inject_fault(kind, count=1, listener=target.listener, path_contains=target.token_path, **extra)
                with lock:
                    faults_injected[kind] += 1
            if rng.random() < P_CLEAR:
                target.cache.clear()
            try:
                results = target.acquire(resource)
            except LabError as error:
                with lock:
                    errors.append(error)
                    outcomes[f"error {type(error).__name__}"] += 1
                continue
            except BaseException as error:  # noqa: BLE001 - the test is about this
                with lock:
                    unexpected.append(error)
                continue
            found = []
            for result in results:
                _check(target, resource, result, found, audiences)
            with lock:
                problems.extend(found)
                for result in results:
                    outcomes[result.source] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,), name=f"soak-{i}") for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - started
    unconsumed_slow = sum(f.remaining for f in lab.pending_faults if f.kind == "slow")
    lab.clear_faults()
    consumed_slow = faults_injected["slow"] - unconsumed_slow     # their answers reach the trace late
    deadline = time.monotonic() + 5
    while sum(1 for e in lab.trace if e.fault == "slow") < consumed_slow and time.monotonic() < deadline:
        time.sleep(0.05)
    for close in closers:
        close()

    entries = [e for e in lab.trace if e.method != "TLS" and (
        TOKEN_PATH in e.path or "/metadata/identity/oauth2/token" in e.path)]
    faulted = [e for e in entries if e.fault]
    # a downgrade fault on a Bearer request is harmless: that faulted request is the successful fetch
    harmless = [e for e in faulted if e.fault == "bearer_downgrade" and "mtls_pop" not in (e.request_body or "")]
    fetched = outcomes["identity_provider"]
    print(f"\nsoak: {THREADS}x{PER_THREAD} in {elapsed:.1f} s; outcomes {dict(outcomes)}; faults "
          f"{dict(faults_injected)}; token requests {len(entries)} (faulted {len(faulted)}, fetches {fetched})")
    assert not any(t.is_alive() for t in threads)
    assert unexpected == [], [f"{type(e).__name__}: {e}" for e in unexpected[:5]]
    assert problems == [], problems[:10]
    acquisitions = sum(outcomes.values())
    assert acquisitions >= THREADS * PER_THREAD
    assert outcomes["cache"] > acquisitions * 0.5 and fetched > 50        # both paths were exercised
    assert sum(faults_injected.values()) > 5
    assert all(isinstance(e, LabError) for e in errors)
    # the request count is exactly accounted for: one clean request per fetched token, plus the
    # requests the injected faults spoiled (each fault spoils at most one request)
    assert len(entries) - len(faulted) + len(harmless) == fetched
    assert len(faulted) <= sum(faults_injected.values())
    assert len(entries) <= fetched + sum(faults_injected.values())
    # failures only where a fault can cause one: a PoP request downgraded, or every attempt spoiled
    harmful = len(faulted) - len(harmless)
    assert (not errors) or harmful > 0
    assert {type(e).__name__ for e in errors} <= {"TokenTypeMismatchError", "AuthorityError", "TransportError",
                                                  "ManagedIdentityError"}


def test_certificate_rotation_under_load(lab):
    """Six threads acquire (emptying the cache now and then) while the app's certificate is rotated
    30 times: every token is bound to the certificate its result names, one of the app's two, and
    after the last rotation a new token is bound to the last certificate."""
    app = lab.directory.register_app("soak-rotation")
    second = Certificate.create_self_signed("CN=soak-rotation-2")
    lab.directory.add_certificate(app, second)
    allowed = {app.certificate.x5t_s256, second.x5t_s256}
    acquirer = MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                            cloud=lab.cloud, retry=RetryPolicy.fast(ATTEMPTS))
    acquirer.acquire_token(GRAPH)
    stop = threading.Event()
    problems, errors, done = [], [], collections.Counter()

    def worker(index):
        rng = random.Random(SEED + 100 + index)
        while not stop.is_set():
            if rng.random() < 0.2:
                acquirer.cache.clear()
            try:
                result = acquirer.acquire_token(rng.choice((GRAPH, VAULT)))
            except BaseException as error:  # noqa: BLE001 - none expected
                errors.append(error)
                continue
            cnf = decode_token(result.access_token).claims["cnf"]["x5t#S256"]
            if cnf != result.binding_certificate.x5t_s256 or cnf not in allowed:
                problems.append(cnf)
            done[result.source] += 1

    threads = [threading.Thread(target=worker, args=(i,), name=f"rotation-{i}") for i in range(6)]
    for t in threads:
        t.start()
    try:
        for k in range(30):
            acquirer.rotate_certificate(second if k % 2 == 0 else app.certificate)
            time.sleep(0.03)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    final = acquirer.acquire_token(STORAGE)
    acquirer.close()
    assert errors == [] and problems == []
    assert done["identity_provider"] > 10 and done["cache"] > 10
    assert final.binding_certificate.x5t_s256 == app.certificate.x5t_s256          # the last rotation (k=29)


def test_resource_calls_keep_each_certificate_on_its_own_connection(lab):
    """20 identities (more than the 16 cached resource transports) called from 8 threads: every call
    presents the right certificate, even while transports are evicted and closed."""
    results = []
    for i in range(20):
        app = lab.directory.register_app(f"soak-resource-{i}")
        with MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                          cloud=lab.cloud) as acquirer:
            results.append(acquirer.acquire_token(GRAPH))
    problems, errors = [], []

    def caller(index):
        rng = random.Random(SEED + 200 + index)
        for _ in range(100):
            result = rng.choice(results)
            try:
                answer = call_resource(lab.resource_url, result)
            except BaseException as error:  # noqa: BLE001 - none expected
                errors.append(error)
                continue
            if answer.status_code != 200 or answer.json()["x5t#S256"] != result.binding_certificate.x5t_s256:
                problems.append(answer.status_code)

    threads = [threading.Thread(target=caller, args=(i,), name=f"caller-{i}") for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and problems == []


def _hammer(calls, chaos, threads=6):
    """Run ``calls`` (picked at random) from ``threads`` threads while ``chaos()`` runs; tally outcomes."""
    stop = threading.Event()
    ok, errors, unexpected = collections.Counter(), collections.Counter(), []

    def worker(index):
        rng = random.Random(SEED + 300 + index)
        while not stop.is_set():
            try:
                rng.choice(calls)()
                ok["ok"] += 1
            except LabError as error:
                errors[f"{type(error).__name__}:{error.code}"] += 1
            except BaseException as error:  # noqa: BLE001 - the test is about this
                unexpected.append(f"{type(error).__name__}: {error}")

    workers = [threading.Thread(target=worker, args=(i,), name=f"hammer-{i}") for i in range(threads)]
    for t in workers:
        t.start()
    try:
        chaos()
    finally:
        stop.set()
        for t in workers:
            t.join(30)
    assert not any(t.is_alive() for t in workers), "a client hung"
    assert unexpected == [], unexpected[:5]
    return ok["ok"], errors


def test_imds_appearing_and_disappearing_under_load(lab, world):
    """IMDS toggled between v2, absent and v1-only while managed identity flows run: only the
    documented errors, and everything works again once IMDS is back."""
    acquirers = [MtlsPopTokenAcquirer.for_managed_identity(world.sami, cloud=lab.cloud,
                                                           retry=RetryPolicy.fast(2)) for _ in range(2)]
    calls = [lambda a=a, p=p: (a.cache.clear(), a.acquire_token(GRAPH, use_pop=p))
             for a in acquirers for p in (False, True)]

    def chaos():
        for k in range(24):
            lab.set_imds_mode(("absent", "v2", "v1_only", "v2")[k % 4])
            time.sleep(0.05)
        lab.set_imds_mode("v2")

    ok, errors = _hammer(calls, chaos)
    assert ok > 20
    assert set(errors) <= {"ManagedIdentityError:imds_unreachable", "ManagedIdentityError:not_found",
                           "ManagedIdentityError:mtls_pop_token_not_supported_in_imds_v1",
                           "TransportError:connection_reset"}, errors
    for acquirer in acquirers:
        acquirer.cache.clear()
        assert acquirer.acquire_token(VAULT, use_pop=True).token_type == "mtls_pop"
        acquirer.close()


def test_trust_store_grows_during_handshakes(lab):
    """Registering apps adds certificates to the live TLS trust store while other clients shake hands."""
    app = lab.directory.register_app("soak-trust")

    def fresh_client():
        with MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                          cloud=lab.cloud, retry=RetryPolicy.fast(2)) as acquirer:
            acquirer.acquire_token(GRAPH)

    registered = []

    def chaos():
        while len(registered) < 8:
            registered.append(lab.directory.register_app(f"soak-trust-{len(registered)}"))

    ok, errors = _hammer([fresh_client], chaos)
    assert ok > 5 and not errors, errors
    last = registered[-1]
    with MtlsPopTokenAcquirer.for_confidential_client(last.client_id, last.tenant_id, last.certificate,
                                                      cloud=lab.cloud) as acquirer:
        assert acquirer.acquire_token(GRAPH).token_type == "mtls_pop"


def test_closing_the_authority_with_requests_in_flight():
    """close() with six threads mid-acquisition: it returns promptly, every client gets a LabError
    (connection refused or reset), nobody hangs, and no thread survives."""
    from mtlspop_lab.authority import LocalAuthority
    before = set(threading.enumerate())
    authority = LocalAuthority()
    authority.set_delay(50)
    app = authority.directory.register_app("soak-closing")
    acquirers = [MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                              cloud=authority.cloud, retry=RetryPolicy.fast(2))
                 for _ in range(3)]
    calls = [lambda a=a: (a.cache.clear(), a.acquire_token(GRAPH)) for a in acquirers]
    took = []

    def chaos():
        time.sleep(0.5)
        started = time.monotonic()
        authority.close()
        took.append(time.monotonic() - started)
        time.sleep(0.5)

    try:
        ok, errors = _hammer(calls, chaos)
    finally:
        authority.close()
        for acquirer in acquirers:
            acquirer.close()
    assert ok > 3 and errors and took[0] < 5
    # in flight: the connection goes; afterwards: the closed authority says so (a typed LabError)
    assert set(errors) <= {"TransportError:connection_refused", "TransportError:connection_reset",
                           "ConfigurationError:authority_closed"}, errors
    deadline = time.monotonic() + 5
    while [t for t in set(threading.enumerate()) - before if t.is_alive()] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [t.name for t in set(threading.enumerate()) - before if t.is_alive()] == []
