"""The runner: executes scenarios against an authority and records every acquisition and round trip.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import urlsplit

import pandas as pd

from ..authority import LocalAuthority
from ..cloud import Cloud
from ..errors import ConfigurationError
from ..flows import (
    FicLeg1Acquirer,
    FicLeg2Exchanger,
    MtlsPopTokenAcquirer,
    close_issued_connections,
    forget_issued_certificates,
)
from ..transport import record
from .identities import Identities
from .scenarios import Scenario
from .schema import ACQUISITION_COLUMNS, COLD_STATES, ROUND_TRIP_COLUMNS, _typed, empty_acquisitions, empty_round_trips
from .summary import BenchResult


# --------------------------------------------------------------------------- the runner
class _Client:
    """One scenario's acquirer (vanilla) or leg-1 acquirer + leg-2 exchanger (two-leg).

    ``acquire()`` returns ``[(leg, TokenResult), ...]`` in call order.
    """

    def __init__(self, scenario: Scenario, ids: Identities, cloud):

        self.scenario = scenario
        self.use_pop = scenario.token == "pop"
        self.resource = scenario.resource
        if scenario.flow == "vanilla":
            if scenario.identity == "confidential_client":
                self.acquirer = MtlsPopTokenAcquirer.for_confidential_client(
                    ids.client_id, ids.tenant_id, ids.certificate, cloud=cloud,
                    region=scenario.region)
            else:
                self.acquirer = MtlsPopTokenAcquirer.for_managed_identity(ids.managed_identity, cloud=cloud)
            self.leg1 = self.leg2 = None
        else:
            if scenario.identity == "confidential_client":
                self.leg1 = FicLeg1Acquirer.for_confidential_client(
                    ids.client_id, ids.tenant_id, ids.certificate, cloud=cloud,
                    region=scenario.region)
            else:
                self.leg1 = FicLeg1Acquirer.for_managed_identity(ids.managed_identity, cloud=cloud)
            self.leg2 = FicLeg2Exchanger.create(ids.leg2_client_id, ids.tenant_id,
                                                cloud=cloud, region=scenario.region)
            self.acquirer = None

    def acquire(self) -> list[tuple[str, Any]]:
        if self.acquirer is not None:
            return [("token", self.acquirer.acquire_token(self.resource, use_pop=self.use_pop))]
        assertion = self.leg1.acquire_assertion()
        final = self.leg2.exchange_assertion_for_access_token(assertion, self.resource, use_pop=self.use_pop)
        return [("leg1", assertion), ("leg2", final)]

    def clear_cache(self) -> None:
        """Bypass the token cache for the next acquisition; transports and connections stay."""
        for cache in self._caches():
            cache.clear()

    def _caches(self):
        if self.acquirer is not None:
            return [self.acquirer.cache]
        return [self.leg1.acquirer.cache, self.leg2.cache]

    def close(self) -> None:
        for part in (self.acquirer, self.leg1, self.leg2):
            if part is not None:
                part.close()

    @staticmethod
    def reset_process_state(scenario: Scenario) -> None:
        """What a cold acquisition must not inherit from the process, for a managed identity's PoP:
        ``cold`` closes the IMDS v2 certificate's kept-alive mTLS connection (the certificate
        stays); ``cold_mint`` forgets the certificate too, so it is minted again."""
        if not scenario.uses_issued_certificate:
            return
        if scenario.state == "cold_mint":
            forget_issued_certificates()
        elif scenario.state == "cold":
            close_issued_connections()


def _progress_bar(total: int):
    """A tqdm.auto bar: a widget in notebooks, text in terminals."""
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="bench", unit="acq", leave=True)


class _NoBar:
    """Stands in for the bar when progress is off (tqdm, even disabled, starts a thread)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_description(self, desc: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


class _CallbackBar:
    """Progress reported to a function ``(done, total, scenario)`` (a panel's own progress bar)."""

    def __init__(self, total: int, report: Callable[[int, int, str], None]):
        self.total, self.report, self.done, self.desc = total, report, 0, ""
        self._lock = threading.Lock()

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            done = self.done
        self.report(done, self.total, self.desc)

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def close(self) -> None:
        pass


class _Recorder:
    """Collects rows from worker threads; owns the progress bar and the stop flag."""

    def __init__(self, run_id: str, target: str, listener_of: Callable[[str], str], total: int,
                 progress, stop: threading.Event | None = None):
        self.run_id, self.target, self.listener_of = run_id, target, listener_of
        self.delays: dict[str, dict[str, float]] = {}   # scenario -> listener -> ms (authority's word)
        self.acq_rows: list[dict] = []
        self.rt_rows: list[dict] = []
        self.lock = threading.Lock()
        self.t0 = time.perf_counter()
        # No bar at all without progress: even a disabled tqdm starts a monitor thread
        # that outlives the run by up to 10 s.
        self.bar = _CallbackBar(total, progress) if callable(progress) else (
            _progress_bar(total) if progress else _NoBar())
        self.stop = stop if stop is not None else threading.Event()

    def labels(self, scenario: Scenario, name: str, iteration: int, warmup: bool, thread: int) -> dict:
        return {"run_id": self.run_id, "scenario": name, "target": self.target,
                "identity": scenario.identity, "flow": scenario.flow, "token": scenario.token,
                "state": scenario.state, "region": scenario.region or "global",
                "delay": scenario.delay_label, "delay_ms": self.delay_of(scenario, name, scenario.token_listener()),
                "concurrency": int(scenario.concurrency), "iteration": iteration,
                "warmup": warmup, "thread": thread}

    def record(self, scenario: Scenario, name: str, iteration: int, warmup: bool, thread: int,
               started: float, setup_ms: float, acquire_ms: float, trips, legs,
               error: BaseException | None):
        labels = self.labels(scenario, name, iteration, warmup, thread)
        rt_rows = []
        for index, rt in enumerate(trips):
            leg = getattr(rt, "leg", None) or "-"
            new_connection = bool(getattr(rt, "new_connection", False))
            endpoint = str(getattr(rt, "endpoint", "") or "")
            listener = self.listener_of(endpoint)
            method = str(getattr(rt, "method", "") or "")
            rt_rows.append({**labels, "rt_index": index, "leg": str(leg),
                            "step": f"{leg}: {getattr(rt, 'kind', None) or method + ' ' + _path_tail(endpoint)}",
                            "listener": listener, "endpoint": endpoint.split("?")[0], "method": method,
                            "status": int(getattr(rt, "status", 0) or 0),
                            "new_connection": new_connection,
                            "tls_handshake_ms": float(getattr(rt, "tls_handshake_ms", 0.0) or 0.0),
                            "elapsed_ms": float(getattr(rt, "elapsed_ms", 0.0) or 0.0),
                            "injected_delay_ms": self.injected(scenario, name, listener, new_connection,
                                                              endpoint)})
        http_ms = sum(r["elapsed_ms"] for r in rt_rows)
        total_ms = setup_ms + acquire_ms
        if error is None:
            sources = {getattr(result, "source", "") for _, result in legs}
            source = sources.pop() if len(sources) == 1 else "mixed"
            token_type = str(getattr(legs[-1][1], "token_type", "") or "")
            outcome, code = "ok", ""
        else:
            source, token_type = "", ""
            outcome = type(error).__name__
            code = str(getattr(error, "code", None) or getattr(error, "error", None) or "")
        row = {**labels, "outcome": outcome, "error_code": code, "source": str(source),
               "token_type": token_type, "round_trips": len(rt_rows),
               "new_connections": sum(r["new_connection"] for r in rt_rows),
               "tls_handshake_ms": sum(r["tls_handshake_ms"] for r in rt_rows),
               "http_ms": http_ms, "injected_ms": sum(r["injected_delay_ms"] for r in rt_rows),
               "setup_ms": setup_ms, "acquire_ms": acquire_ms, "total_ms": total_ms,
               "client_ms": total_ms - http_ms, "started_s": started - self.t0,
               "batch_wall_ms": float("nan")}
        with self.lock:
            self.acq_rows.append(row)
            self.rt_rows.extend(rt_rows)
            self.bar.update(1)

    def delay_of(self, scenario: Scenario, name: str, listener: str) -> float:
        """The delay the authority says it injects on ``listener`` (else the scenario's own rule)."""
        reported = self.delays.get(name, {})
        if listener in reported:
            return float(reported[listener])
        return scenario.delay_for(listener) if listener != "other" else 0.0

    def injected(self, scenario: Scenario, name: str, listener: str, new_connection: bool,
                 endpoint: str) -> float:
        """Server-side delay met by one round trip: the listener's delay, twice on a new TLS
        connection when the scenario asks for handshake delays."""
        delay = self.delay_of(scenario, name, listener)
        if scenario.handshake_delay and new_connection and endpoint.startswith("https:"):
            delay *= 2
        return delay

    def close(self):
        self.bar.close()


def _path_tail(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    return "/" + path.rsplit("/", 1)[-1] if path else "/"


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - start) * 1000.0


def _one(recorder: _Recorder, scenario: Scenario, name: str, iteration: int, warmup: bool, thread: int,
         client: _Client | None, ids: Identities, cloud) -> _Client | None:
    """One recorded acquisition.

    ``client=None``: build a new client first (its construction timed as
    ``setup_ms``). Otherwise reuse ``client``; for ``warm_connection`` its
    cache is cleared first (not timed). Returns the client for reuse (None
    when it could not be built).
    """
    if client is None and scenario.state in COLD_STATES and scenario.concurrency == 1:
        _Client.reset_process_state(scenario)
    elif client is not None and scenario.state == "warm_connection":
        client.clear_cache()

    started = time.perf_counter()
    setup_ms = acquire_ms = 0.0
    legs, error = None, None
    # every HTTP exchange of this thread inside the block, failed acquisitions included; each
    # RoundTrip keeps the leg the flow gave it ("setup" only if construction made requests)
    with record("setup") as trips:
        try:
            if client is None:
                try:
                    client, setup_ms = _timed(lambda: _Client(scenario, ids, cloud))
                except Exception:
                    setup_ms = (time.perf_counter() - started) * 1000.0
                    raise
            legs, acquire_ms = _timed(client.acquire)
        except Exception as exc:  # every iteration is recorded, failures included
            error = exc
            acquire_ms = max(0.0, (time.perf_counter() - started) * 1000.0 - setup_ms)
    recorder.record(scenario, name, iteration, warmup, thread, started, setup_ms, acquire_ms, list(trips),
                    legs, error)
    return client


class _Plan:
    """One scenario inside a run: its name, the authority delays it needs, its clients."""

    def __init__(self, recorder: _Recorder, scenario: Scenario, name: str, authority, ids: Identities,
                 cloud):
        self.recorder, self.scenario, self.name = recorder, scenario, name
        self.authority, self.ids, self.cloud = authority, ids, cloud
        self.clients: list[_Client | None] = [None] * int(scenario.concurrency)

    def apply_delays(self) -> None:
        if self.authority is None:       # a live target: nothing to inject (checked by run())
            self.recorder.delays[self.name] = {}
            return
        _apply_delays(self.authority, self.scenario)
        reported = self.authority.delays() if hasattr(self.authority, "delays") else {}
        self.recorder.delays[self.name] = dict(reported)

    def once(self, iteration: int, warmup: bool, thread: int, client: _Client | None = None):
        return _one(self.recorder, self.scenario, self.name, iteration, warmup, thread, client,
                    self.ids, self.cloud)

    def prepare(self, warmup: int) -> None:
        """Warm-up acquisitions (throwaway, cold) and, for warm_connection/cache_hit, one
        priming acquisition per worker (opens its connection, fills its cache); for a cold
        managed-identity PoP scenario, one priming acquisition that leaves an IMDS v2
        certificate for the measured ones to reuse. All recorded with ``warmup=True``."""
        for w in range(warmup):
            _close(self.once(w - warmup, True, 0))
        if self.scenario.state == "cold" and self.scenario.uses_issued_certificate:
            _close(self.once(-warmup - 1, True, 0))
        if self.scenario.state in ("warm_connection", "cache_hit"):
            for t in range(len(self.clients)):
                self.clients[t] = self.once(-warmup - 1 - t, True, t)

    def step(self, iteration: int, thread: int) -> None:
        """One measured acquisition in this scenario's state."""
        if self.scenario.state in COLD_STATES:
            _close(self.once(iteration, False, thread))
        else:  # reused / warm_connection / cache_hit: one client per worker, built on first need
            self.clients[thread] = self.once(iteration, False, thread, self.clients[thread])

    def close(self) -> None:
        for client in self.clients:
            _close(client)
        self.clients = [None] * len(self.clients)


def _run_batch(plan: _Plan, iterations: int) -> None:
    """All iterations of one scenario, by ``concurrency`` worker threads; records the batch wall time."""
    threads = len(plan.clients)
    share = [[i for i in range(iterations) if i % threads == t] for t in range(threads)]

    def worker(t: int):
        for i in share[t]:
            if plan.recorder.stop.is_set():   # Stop: between iterations, never inside one
                return
            plan.step(i, t)

    if threads > 1 and plan.scenario.state == "cold":
        # closing the IMDS v2 certificate's connections while other threads use them would break
        # them: with several threads they are closed once, before the batch, and then shared
        _Client.reset_process_state(plan.scenario)
    start = time.perf_counter()
    if threads == 1:
        worker(0)
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mtlspop-bench") as pool:
            for future in [pool.submit(worker, t) for t in range(threads)]:
                future.result()
    wall_ms = (time.perf_counter() - start) * 1000.0
    with plan.recorder.lock:
        for row in plan.recorder.acq_rows:
            if row["scenario"] == plan.name and not row["warmup"]:
                row["batch_wall_ms"] = wall_ms


def _run_interleaved(plans: list[_Plan], iterations: int) -> None:
    """Iteration i of every scenario, then i+1..., the order rotating each round.

    Why: on a shared machine the background load drifts; run one scenario
    after the other and the drift lands on one side of every ratio.
    Interleaved, both sides of a comparison see the same conditions.
    ``batch_wall_ms`` stays NaN (there is no batch).
    """
    for i in range(iterations):
        if plans and plans[0].recorder.stop.is_set():   # Stop: between rounds, never inside one
            return
        shift = i % len(plans)
        for plan in plans[shift:] + plans[:shift]:
            plan.recorder.bar.set_description(plan.name, refresh=False)
            plan.apply_delays()
            plan.step(i, 0)


def _forgetting_conflicts(scenarios: Sequence[Scenario]) -> bool:
    """A cold managed-identity PoP scenario closes the process-wide IMDS v2 certificate's
    connection (cold_mint forgets the certificate); interleaved with a warm, cached or reused
    managed-identity PoP scenario it would make that one cold too."""
    certified = [s for s in scenarios if s.uses_issued_certificate]
    return any(s.state in COLD_STATES for s in certified) and \
        any(s.state not in COLD_STATES for s in certified)


def _close(client: _Client | None) -> None:
    """Close a client's transports (outside the timed region): no idle connection piles up."""
    if client is not None:
        try:
            client.close()
        except Exception:  # closing is housekeeping; a failure here must not hide the measurement
            pass


def _listener_map(cloud) -> Callable[[str], str]:
    """endpoint URL -> the listener (local) or host role (live) that serves it:
    "login", "mtls", "mtls:<region>", "imds", "resource", else "other"."""
    bases = {}

    def add(url, name):
        if url:
            parts = urlsplit(url)
            bases[(parts.scheme, parts.hostname, parts.port)] = name

    add(getattr(cloud, "login_url", None), "login")
    add(getattr(cloud, "mtls_url", None), "mtls")
    for region, url in (getattr(cloud, "regional_mtls_urls", None) or {}).items():
        add(url, f"mtls:{region}")
    add(getattr(cloud, "imds_url", None), "imds")
    add(getattr(cloud, "resource_url", None), "resource")

    def listener_of(endpoint: str) -> str:
        parts = urlsplit(endpoint)
        found = bases.get((parts.scheme, parts.hostname, parts.port))
        if found:
            return found
        host = parts.hostname or ""
        if host.startswith("mtlsauth."):          # live: MSAL's login.X -> mtlsauth.X rule
            return "mtls"
        if ".mtlsauth." in host:
            return f"mtls:{host.split('.', 1)[0]}"
        return "other"

    return listener_of


def _apply_delays(authority, scenario: Scenario) -> None:
    extra = {"handshake": True} if scenario.handshake_delay else {}
    authority.set_delay(float(scenario.delay_ms), listener="all", **extra)
    for listener, ms in scenario.listener_delays:
        authority.set_delay(float(ms), listener=listener, **extra)


def _unique_names(scenarios: Sequence[Scenario]) -> list[str]:
    names = [s.label for s in scenarios]
    if len(set(names)) < len(names):
        names = [f"{s.label} @{s.delay_label}" for s in scenarios]
    if len(set(names)) < len(names):
        seen: dict[str, int] = {}
        out = []
        for n in names:
            seen[n] = seen.get(n, 0) + 1
            out.append(n if seen[n] == 1 else f"{n} #{seen[n]}")
        names = out
    return names


def run(scenarios: Iterable[Scenario] | Scenario, iterations: int = 50, *, authority=None,
        identities: Identities | None = None, warmup: int = 1, progress=True,
        interleave: bool = True, stop: threading.Event | None = None) -> BenchResult:
    """Run each scenario ``iterations`` times and return every acquisition as rows.

    Targets:
    - ``authority``: a running :class:`~mtlspop_lab.authority.LocalAuthority`.
      The run registers two apps (and federated credentials) in its directory
      unless ``identities`` is given, sets each scenario's injected delays,
      and resets every delay to 0 at the end.
    - neither: a LocalAuthority is started for the run and closed after it.
    - ``identities`` only: whatever ``identities.cloud`` points at (None: the
      live public cloud). Nothing can be injected there: scenarios must have
      no delay. Not exercised against Azure by the lab's tests.

    ``warmup`` throwaway cold acquisitions per scenario are recorded with
    ``warmup=True``. ``progress`` shows a tqdm bar (a widget in notebooks); a callable
    ``progress(done, total, scenario)`` is called after each acquisition instead.
    ``stop``: a :class:`threading.Event`; once set, the run ends after the acquisitions under
    way (between iterations) and returns what it measured, with ``meta["stopped"] = True``.

    ``interleave`` (default): when every scenario runs on one thread, the
    measured iterations are interleaved (round i of every scenario, in a
    rotating order), so background load hits all sides of a comparison alike.
    With any ``concurrency > 1`` scenario, or ``interleave=False``, scenarios
    run one batch after another and ``batch_wall_ms`` gives their throughput
    (also when a cold managed-identity scenario would spoil a warm one).
    """
    scenarios = [scenarios] if isinstance(scenarios, Scenario) else list(scenarios)
    if not scenarios or not all(isinstance(s, Scenario) for s in scenarios):
        raise ConfigurationError("No scenario to run, or something that is not a Scenario.",
                                 fix="Pass latency.standard_scenarios() or a list of latency.Scenario "
                                     "(from mtlspop_lab import latency).")
    if int(iterations) < 1:
        raise ConfigurationError(f"iterations must be >= 1, got {iterations!r}.",
                                 fix="Pass how many acquisitions to measure per scenario.")
    if int(warmup) < 0:
        raise ConfigurationError(f"warmup must be >= 0, got {warmup!r}.", fix="Pass 0 or more.")
    iterations, warmup = int(iterations), int(warmup)
    if authority is None and identities is not None:
        delayed = [s.label for s in scenarios if s.delay_ms or s.listener_delays or s.handshake_delay]
        if delayed:
            raise ConfigurationError(
                f"Delays cannot be injected on this target ({', '.join(delayed)}).",
                cause="Only the embedded authority can add a server-side delay per round trip.",
                fix="Use delay_ms=0 and no listener_delays, or run against a LocalAuthority.",
                code="delay_needs_local_authority")
        identities.check(scenarios)
    own = authority is None and identities is None
    if own:
        regions = sorted({s.region for s in scenarios if s.region}) or ["westus3", "eastus2"]
        authority = LocalAuthority(regions=tuple(regions))
    try:
        if identities is None:
            identities = Identities.register(authority)
        if authority is not None and identities.cloud is None:
            identities = dataclasses.replace(identities, cloud=authority.cloud)
        cloud = identities.cloud
        if cloud is None:
            cloud = Cloud.public()
        target = "embedded authority" if getattr(cloud, "is_local", False) else "live cloud"
        names = _unique_names(scenarios)
        primes = sum(s.concurrency for s in scenarios if s.state in ("warm_connection", "cache_hit")) + \
            sum(1 for s in scenarios if s.state == "cold" and s.uses_issued_certificate)
        total = len(scenarios) * (iterations + warmup) + primes
        run_id = uuid.uuid4().hex[:8]
        started_at = _dt.datetime.now(_dt.timezone.utc)
        recorder = _Recorder(run_id, target, _listener_map(cloud), total, progress, stop)
        plans = [_Plan(recorder, s, n, authority, identities, cloud) for s, n in zip(scenarios, names)]
        interleaved = interleave and len(plans) > 1 and all(s.concurrency == 1 for s in scenarios) \
            and not _forgetting_conflicts(scenarios)
        try:
            for plan in plans:
                if recorder.stop.is_set():
                    break
                recorder.bar.set_description(plan.name)
                plan.apply_delays()
                plan.prepare(warmup)
                if not interleaved:
                    _run_batch(plan, iterations)
                    plan.close()
            if interleaved:
                _run_interleaved(plans, iterations)
        finally:
            for plan in plans:
                plan.close()
            recorder.close()
            if authority is not None:
                authority.set_delay(0.0, listener="all")
        acquisitions = _typed(pd.DataFrame(recorder.acq_rows), ACQUISITION_COLUMNS) \
            if recorder.acq_rows else empty_acquisitions()
        round_trips = _typed(pd.DataFrame(recorder.rt_rows), ROUND_TRIP_COLUMNS) \
            if recorder.rt_rows else empty_round_trips()
        acquisitions = acquisitions.sort_values(["started_s"], kind="stable").reset_index(drop=True)
        meta = {"run_id": run_id, "target": target, "cloud": cloud.describe(),
                "started_at": started_at.isoformat(),
                "wall_s": time.perf_counter() - recorder.t0, "iterations": iterations, "warmup": warmup,
                "interleaved": interleaved, "stopped": recorder.stop.is_set(),
                "scenarios": [dataclasses.asdict(s) | {"name": n} for s, n in zip(scenarios, names)],
                "python": platform.python_version(), "machine": platform.machine(),
                "cpus": os.cpu_count(), "load_average": _load_average(),
                "msal": _version("msal")}
        return BenchResult(acquisitions, round_trips, meta)
    finally:
        if own:
            authority.close()


def _load_average() -> tuple | None:
    """1/5/15-minute load average at the end of the run: a busy machine stretches every number."""
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except (AttributeError, OSError):  # Windows has no load average
        return None


def _version(package: str) -> str:
    try:
        from importlib.metadata import version
        return version(package)
    except Exception:  # metadata missing in an odd install: not worth failing a run
        return "unknown"
