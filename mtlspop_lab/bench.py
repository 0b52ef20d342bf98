"""The latency lab: run token-acquisition scenarios, get tidy DataFrames, summarize them.

Why: the seed claims that the vanilla flow is faster than the FIC two-leg flow
(one round trip against two), that MSAL's cache and reusing an acquirer matter,
that regional endpoints lower latency and that parallel acquisitions help.
This module measures each claim with the lab's real client flows against the
embedded authority (real TLS, real signed tokens), on loopback with a delay
injected per round trip on the server side, so the numbers say what the
protocol costs rather than what this laptop's network does.

Vocabulary (the ``state`` label):

``cold``
    a new acquirer (empty token cache) and a new connection (new TLS
    handshake): what the first call of a fresh process pays. Constructing the
    acquirer is part of the cost (``setup_ms``). For a managed identity's PoP
    token the process-wide IMDS v2 certificate is kept, as MSAL does while it
    has more than 24 h left, but its kept-alive mTLS connection is closed
    (:func:`~mtlspop_lab.flows.close_issued_connections`): one token request
    over a new TLS connection, no IMDS request. Each cold managed-identity
    scenario gets one priming acquisition (``warmup=True``) so the certificate
    exists before the first measured one. With several threads the
    connections are closed once per batch, then shared by the threads (as the
    threads of one process share the certificate's connection pool).
``cold_mint``
    a managed identity's first PoP acquisition in a process: ``cold`` plus
    the process-wide IMDS v2 certificate forgotten before the call
    (:func:`~mtlspop_lab.flows.forget_issued_certificates`), so it mints one:
    platform metadata, an RSA-2048 key and CSR, issuecredential, then the
    token. Only for managed-identity PoP (vanilla PoP, or two-leg whose leg 1
    is PoP), single-threaded (a process mints once, whatever its threads).
``warm_connection``
    the acquirer's transport and its kept-alive connection are reused, but the
    token cache is bypassed (emptied before the call, outside the timing), so
    every acquisition goes to the identity provider.
``cache_hit``
    a second (or later) acquisition on the same acquirer for the same resource:
    served from the cache, no round trip. The priming acquisition is recorded
    with ``warmup=True``.
``reused``
    the seed's "create once, reuse" pattern: one acquirer for every iteration,
    nothing primed (the first iteration pays the identity provider, the others
    hit the cache). Compared with ``cold`` ("re-created each time").

One run returns a :class:`BenchResult` with two tidy frames. Every iteration is
recorded, failures included (``outcome`` is the exception type's name). Round
trips are collected with :func:`mtlspop_lab.transport.record` around each
acquisition, so a failed one keeps the requests it made. Single-thread
scenarios are interleaved round by round (see :func:`run`), so a busy machine
slows both sides of a ratio alike; the run's load average is in ``meta``.

``acquisitions`` -- one row per acquisition (see :data:`ACQUISITION_COLUMNS`):

=================  =======  ======================================================
column             dtype    meaning
=================  =======  ======================================================
run_id             str      one id per :func:`run` call
scenario           str      readable scenario name (unique within a run)
target             str      "embedded authority" or "live cloud"
identity           str      "confidential_client" | "managed_identity"
flow               str      "vanilla" | "two_leg"
token              str      "pop" | "bearer"
state              str      "cold" | "cold_mint" | "warm_connection" | "cache_hit" | "reused"
region             str      Azure region of the token endpoint, or "global"
delay              str      injected delay, e.g. "20 ms" or "5 ms regional, 20 ms mtls"
delay_ms           float    injected delay per round trip at the scenario's token endpoint
concurrency        int      threads acquiring at the same time
iteration          int      0..N-1 (warm-up rows count from -W to -1)
warmup             bool     True for warm-up/priming rows (left out of summaries)
thread             int      index of the worker thread (0 when concurrency is 1)
outcome            str      "ok" or the exception type ("AuthorityError", ...)
error_code         str      the LabError ``code`` (or MSAL/AADSTS code) when there is one
source             str      "identity_provider" | "cache" (final token); "" on failure
token_type         str      "mtls_pop" | "Bearer" as returned; "" on failure
round_trips        int      HTTP exchanges made by this acquisition (0 for a cache hit)
new_connections    int      of which opened a new connection
tls_handshake_ms   float    time spent in TLS handshakes (sum over round trips)
http_ms            float    time spent in round trips (sum of their elapsed_ms)
injected_ms        float    server-side delay injected into those round trips (sum)
setup_ms           float    constructing the acquirer(s) in this iteration (0 if reused)
acquire_ms         float    the acquire call(s), measured around them with perf_counter
total_ms           float    setup_ms + acquire_ms: what the caller waited
client_ms          float    total_ms - http_ms: time in the client (msal, JWTs, keys)
started_s          float    start of the acquisition, seconds since the run began
batch_wall_ms      float    wall time of the scenario's measured batch; NaN when interleaved
=================  =======  ======================================================

``round_trips`` -- one row per HTTP exchange (see :data:`ROUND_TRIP_COLUMNS`):
the scenario labels above (run_id .. warmup, thread) plus ``rt_index`` (order
within the acquisition), ``leg`` ("token", "leg1", "leg2", "imds"... as the
flow names it), ``step`` (a short label "leg: METHOD /path" used by charts),
``listener`` (which authority listener served it; "other" when unknown), ``endpoint`` (URL without
query), ``method``, ``status``, ``new_connection``, ``tls_handshake_ms``,
``elapsed_ms`` and ``injected_delay_ms``.

Summaries (:func:`summarize`, :func:`ratios`, :func:`speedup`) use successful,
non-warm-up rows only, and always carry ``n``.
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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import urlsplit

import pandas as pd

from .errors import ConfigurationError

__all__ = [
    "Scenario", "Identities", "BenchResult", "run", "standard_scenarios", "region_scenarios",
    "parallel_scenarios", "acquirer_scenarios", "managed_identity_scenarios", "summarize", "ratios", "speedup",
    "ACQUISITION_COLUMNS", "ROUND_TRIP_COLUMNS",
]

IDENTITIES = ("confidential_client", "managed_identity")
FLOWS = ("vanilla", "two_leg")
TOKENS = ("pop", "bearer")
STATES = ("cold", "cold_mint", "warm_connection", "cache_hit", "reused")
COLD_STATES = ("cold", "cold_mint")   # a new acquirer for every acquisition
LABEL_COLUMNS = ("identity", "flow", "token", "state", "region", "delay", "concurrency")

# column -> pandas dtype; the order is the frame's column order
ACQUISITION_COLUMNS: dict[str, str] = {
    "run_id": "object", "scenario": "object", "target": "object",
    "identity": "object", "flow": "object", "token": "object", "state": "object",
    "region": "object", "delay": "object", "delay_ms": "float64", "concurrency": "int64",
    "iteration": "int64", "warmup": "bool", "thread": "int64",
    "outcome": "object", "error_code": "object", "source": "object", "token_type": "object",
    "round_trips": "int64", "new_connections": "int64",
    "tls_handshake_ms": "float64", "http_ms": "float64", "injected_ms": "float64",
    "setup_ms": "float64", "acquire_ms": "float64", "total_ms": "float64",
    "client_ms": "float64", "started_s": "float64", "batch_wall_ms": "float64",
}
_RT_LABELS = ("run_id", "scenario", "target", "identity", "flow", "token", "state", "region",
              "delay", "delay_ms", "concurrency", "iteration", "warmup", "thread")
ROUND_TRIP_COLUMNS: dict[str, str] = {
    **{c: ACQUISITION_COLUMNS[c] for c in _RT_LABELS},
    "rt_index": "int64", "leg": "object", "step": "object", "listener": "object",
    "endpoint": "object", "method": "object", "status": "int64", "new_connection": "bool",
    "tls_handshake_ms": "float64", "elapsed_ms": "float64", "injected_delay_ms": "float64",
}


# --------------------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class Scenario:
    """One experimental condition. Every field becomes a label column.

    ``delay_ms`` is injected per round trip on every listener of the embedded
    authority; ``listener_delays`` then overrides named listeners, in order
    (e.g. ``(("regional", 5), ("mtls", 20))``). ``handshake_delay``: a new TLS
    connection pays the delay once more, as its handshake round trip would on
    a real network (the authority's ``set_delay(..., handshake=True)``).
    ``name`` defaults to a readable label built from the other fields.
    """

    identity: str = "confidential_client"
    flow: str = "vanilla"
    token: str = "pop"
    state: str = "cold"
    region: str | None = None
    delay_ms: float = 0.0
    listener_delays: tuple[tuple[str, float], ...] = ()
    handshake_delay: bool = False
    concurrency: int = 1
    resource: str = "https://graph.microsoft.com"
    name: str | None = None

    def __post_init__(self):
        for value, allowed, what in ((self.identity, IDENTITIES, "identity"), (self.flow, FLOWS, "flow"),
                                     (self.token, TOKENS, "token"), (self.state, STATES, "state")):
            if value not in allowed:
                raise ConfigurationError(f"Unknown {what} {value!r} in a bench scenario.",
                                         fix=f"Use one of: {', '.join(allowed)}.")
        if int(self.concurrency) < 1:
            raise ConfigurationError(f"concurrency must be >= 1, got {self.concurrency!r}.",
                                     fix="Pass the number of threads acquiring at the same time.")
        if self.state == "cold_mint" and not self.uses_issued_certificate:
            raise ConfigurationError(
                "state='cold_mint' only applies to a managed identity's PoP token.",
                cause="Only IMDS v2 (managed identity, PoP) mints a certificate on the first acquisition; "
                      "a confidential client brings its own and IMDS v1 (Bearer) uses none.",
                fix="Use identity='managed_identity' with token='pop' (or flow='two_leg'), or state='cold'.")
        if self.state == "cold_mint" and int(self.concurrency) != 1:
            raise ConfigurationError(
                "state='cold_mint' runs on one thread only.",
                cause="A process mints its IMDS v2 certificate once; threads racing the first acquisition "
                      "wait for that one mint and then share it.",
                fix="Use concurrency=1 for cold_mint, or state='cold' to measure threads.")
        if self.identity == "managed_identity" and self.region is not None:
            raise ConfigurationError(
                "A managed identity does not choose its region.",
                cause="IMDS v2 answers with the mTLS endpoint to use (mtls_authentication_endpoint).",
                fix="Use region=None for managed identity scenarios, or a confidential client.")
        if float(self.delay_ms) < 0 or any(float(ms) < 0 for _, ms in self.listener_delays):
            raise ConfigurationError("An injected delay cannot be negative.", fix="Pass 0 or more ms.")
        object.__setattr__(self, "listener_delays",
                           tuple((str(k), float(v)) for k, v in self.listener_delays))

    @property
    def uses_issued_certificate(self) -> bool:
        """True when the scenario's token needs the process-wide IMDS v2 certificate."""
        return self.identity == "managed_identity" and (self.token == "pop" or self.flow == "two_leg")

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        parts = [self.state.replace("_", " "), self.flow.replace("_", "-"),
                 "PoP" if self.token == "pop" else "Bearer",
                 "app" if self.identity == "confidential_client" else "MI"]
        if self.region:
            parts.append(self.region)
        elif self.listener_delays:
            parts.append("global")
        if self.concurrency > 1:
            parts.append(f"x{self.concurrency}")
        return " ".join(parts)

    @property
    def delay_label(self) -> str:
        """``"20 ms"``, or ``"5 ms regional, 20 ms mtls"`` when listeners differ."""
        text = [f"{_fmt_ms(ms)} {listener}" for listener, ms in self.listener_delays]
        if self.delay_ms or not text:
            text.insert(0, f"{_fmt_ms(self.delay_ms)}" + (" elsewhere" if text else ""))
        return ", ".join(text) + (" (+1 per new TLS connection)" if self.handshake_delay else "")

    def delay_for(self, listener: str) -> float:
        """The delay the authority injects on ``listener`` ("mtls:westus3", "login", ...)."""
        delay = float(self.delay_ms)
        for name, ms in self.listener_delays:
            if name == "all" or name == listener or (name == "regional" and listener.startswith("mtls:")):
                delay = ms
        return delay

    def token_listener(self) -> str:
        """The listener that serves this scenario's token request (for ``delay_ms``)."""
        if self.region:
            return f"mtls:{self.region}"
        if self.token == "bearer" and self.flow == "vanilla" and self.identity == "confidential_client":
            return "login"
        return "mtls"


def _fmt_ms(ms: float) -> str:
    return f"{ms:g} ms"


def standard_scenarios(delay_ms: float = 20.0) -> list[Scenario]:
    """The six core comparisons (confidential client unless said): cold vanilla PoP,
    cold two-leg PoP, warm-connection vanilla PoP, cache-hit vanilla PoP, cold
    vanilla Bearer, and cold vanilla PoP for a managed identity (its IMDS v2
    certificate reused over a new TLS connection; the mint is
    :func:`managed_identity_scenarios`' ``cold_mint``)."""
    return [
        Scenario(flow="vanilla", state="cold", delay_ms=delay_ms),
        Scenario(flow="two_leg", state="cold", delay_ms=delay_ms),
        Scenario(flow="vanilla", state="warm_connection", delay_ms=delay_ms),
        Scenario(flow="vanilla", state="cache_hit", delay_ms=delay_ms),
        Scenario(flow="vanilla", token="bearer", state="cold", delay_ms=delay_ms),
        Scenario(identity="managed_identity", flow="vanilla", state="cold", delay_ms=delay_ms),
    ]


def region_scenarios(regional_ms: float = 5.0, global_ms: float = 20.0, region: str = "westus3",
                     state: str = "cold") -> list[Scenario]:
    """Regional vs global mTLS endpoint, with the regional listeners ``regional_ms``
    and the global one ``global_ms`` away (same delay configuration for both)."""
    delays = (("regional", regional_ms), ("mtls", global_ms))
    return [Scenario(state=state, region=region, listener_delays=delays),
            Scenario(state=state, region=None, listener_delays=delays)]


def acquirer_scenarios(delay_ms: float = 20.0) -> list[Scenario]:
    """Acquirer reused for every call vs re-created for every call (the seed's advice)."""
    return [Scenario(state="reused", delay_ms=delay_ms), Scenario(state="cold", delay_ms=delay_ms)]


def managed_identity_scenarios(delay_ms: float = 20.0) -> list[Scenario]:
    """A managed identity's PoP token: the process's first acquisition (certificate minted),
    a cold one (certificate reused, new TLS connection) and one over a warm connection."""
    return [Scenario(identity="managed_identity", state=state, delay_ms=delay_ms)
            for state in ("cold_mint", "cold", "warm_connection")]


def parallel_scenarios(delay_ms: float = 20.0, threads: Sequence[int] = (1, 2, 4, 8, 16),
                       state: str = "cold") -> list[Scenario]:
    """The same acquisition run by 1..16 threads at once (speed-up curve)."""
    return [Scenario(state=state, delay_ms=delay_ms, concurrency=int(k)) for k in threads]


# --------------------------------------------------------------------------- result
@dataclass
class BenchResult:
    """What :func:`run` returns: the two frames and a description of the run."""

    acquisitions: pd.DataFrame
    round_trips: pd.DataFrame
    meta: dict = field(default_factory=dict)

    def summary(self, **kwargs) -> pd.DataFrame:
        return summarize(self.acquisitions, **kwargs)

    def ratios(self, **kwargs) -> pd.DataFrame:
        return ratios(self.acquisitions, **kwargs)

    def speedup(self) -> pd.DataFrame:
        return speedup(self.acquisitions)

    def to_csv(self, path, round_trips_path=None) -> tuple[str, str]:
        """Write the raw rows: ``path`` (acquisitions) and ``<stem>-round-trips.csv``."""
        import pathlib
        path = pathlib.Path(path)
        rt_path = pathlib.Path(round_trips_path) if round_trips_path else \
            path.with_name(f"{path.stem}-round-trips{path.suffix or '.csv'}")
        self.acquisitions.to_csv(path, index=False)
        self.round_trips.to_csv(rt_path, index=False)
        return str(path), str(rt_path)

    def __repr__(self) -> str:
        acq = self.acquisitions
        return (f"BenchResult({acq['scenario'].nunique() if len(acq) else 0} scenarios, "
                f"{len(acq)} acquisitions, {len(self.round_trips)} round trips, "
                f"target={self.meta.get('target')!r})")


def empty_acquisitions() -> pd.DataFrame:
    return _typed(pd.DataFrame(columns=list(ACQUISITION_COLUMNS)), ACQUISITION_COLUMNS)


def empty_round_trips() -> pd.DataFrame:
    return _typed(pd.DataFrame(columns=list(ROUND_TRIP_COLUMNS)), ROUND_TRIP_COLUMNS)


def _typed(frame: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    frame = frame.reindex(columns=list(schema))
    return frame.astype(schema)


# --------------------------------------------------------------------------- summaries
def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["outcome"] == "ok") & ~frame["warmup"].astype(bool)]


def summarize(acquisitions: pd.DataFrame, value: str = "total_ms",
              by: str | Sequence[str] = "scenario") -> pd.DataFrame:
    """p50/p90/p99/mean/min/max and ``n`` per scenario, over successful, non-warm-up rows.

    ``n_failed`` counts the failed (non-warm-up) iterations, so a fast but
    failing scenario cannot hide. Label columns are carried along.
    """
    by = [by] if isinstance(by, str) else list(by)
    measured = acquisitions[~acquisitions["warmup"].astype(bool)]
    rows = []
    for key, group in measured.groupby(by, sort=False):
        ok = group[group["outcome"] == "ok"]
        values = ok[value].astype(float)
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row.update({c: group[c].iloc[0] for c in LABEL_COLUMNS if c in group and c not in by})
        row.update({
            "n": int(len(ok)), "n_failed": int(len(group) - len(ok)),
            "p50_ms": values.quantile(0.50) if len(ok) else float("nan"),
            "p90_ms": values.quantile(0.90) if len(ok) else float("nan"),
            "p99_ms": values.quantile(0.99) if len(ok) else float("nan"),
            "mean_ms": values.mean() if len(ok) else float("nan"),
            "min_ms": values.min() if len(ok) else float("nan"),
            "max_ms": values.max() if len(ok) else float("nan"),
            "round_trips_p50": ok["round_trips"].median() if len(ok) else float("nan"),
            "new_connections_p50": ok["new_connections"].median() if len(ok) else float("nan"),
        })
        rows.append(row)
    return pd.DataFrame(rows)


# (comparison name, label that differs, numerator value, denominator value)
COMPARISONS: tuple[tuple[str, str, Any, Any], ...] = (
    ("two-leg / vanilla", "flow", "two_leg", "vanilla"),
    ("cache hit / cold", "state", "cache_hit", "cold"),
    ("certificate mint / cold", "state", "cold_mint", "cold"),
    ("warm connection / cold", "state", "warm_connection", "cold"),
    ("acquirer reused / re-created", "state", "reused", "cold"),
    ("regional / global", "region", "*", "global"),
    ("PoP / Bearer", "token", "pop", "bearer"),
    ("managed identity / app", "identity", "managed_identity", "confidential_client"),
)


def ratios(acquisitions: pd.DataFrame, value: str = "total_ms") -> pd.DataFrame:
    """The ratios that answer the seed's claims, for every pair of scenarios that
    differ in exactly the compared label (all other labels equal).

    Columns: comparison, numerator, denominator (scenario names), their p50 and
    n, ``ratio_p50`` (numerator p50 / denominator p50), ``diff_p50_ms``, and
    ``delay`` (both sides ran with it). Parallel speed-up is :func:`speedup`.
    """
    summary = summarize(acquisitions, value=value)
    out = []
    if summary.empty:
        return pd.DataFrame(columns=_RATIO_COLUMNS)
    for name, label, num_value, den_value in COMPARISONS:
        others = [c for c in LABEL_COLUMNS if c != label]
        dens = summary[summary[label] == den_value]
        nums = summary[summary[label] != den_value] if num_value == "*" else summary[summary[label] == num_value]
        for _, num in nums.iterrows():
            for _, den in dens.iterrows():
                if all(num[c] == den[c] for c in others):
                    out.append({
                        "comparison": name if num_value != "*" else name.replace("regional", str(num[label])),
                        "numerator": num["scenario"], "denominator": den["scenario"],
                        "num_p50_ms": num["p50_ms"], "den_p50_ms": den["p50_ms"],
                        "ratio_p50": num["p50_ms"] / den["p50_ms"] if den["p50_ms"] else float("nan"),
                        "diff_p50_ms": num["p50_ms"] - den["p50_ms"],
                        "num_n": num["n"], "den_n": den["n"], "delay": num["delay"],
                    })
    return pd.DataFrame(out, columns=_RATIO_COLUMNS)


_RATIO_COLUMNS = ["comparison", "numerator", "denominator", "num_p50_ms", "den_p50_ms",
                  "ratio_p50", "diff_p50_ms", "num_n", "den_n", "delay"]


def speedup(acquisitions: pd.DataFrame) -> pd.DataFrame:
    """Throughput and speed-up per thread count, for scenarios that differ only in
    ``concurrency``. Throughput = successful acquisitions / wall time of the
    batch; speed-up = throughput(k threads) / throughput(1 thread) of the same
    group (NaN when the group has no single-thread run)."""
    measured = acquisitions[~acquisitions["warmup"].astype(bool)]
    if measured.empty:
        return pd.DataFrame(columns=_SPEEDUP_COLUMNS)
    group_cols = [c for c in LABEL_COLUMNS if c != "concurrency"]
    rows = []
    for _, group in measured.groupby(group_cols, sort=False):
        per_k = []
        for k, batch in group.groupby("concurrency"):
            ok = batch[batch["outcome"] == "ok"]
            wall_s = float(batch["batch_wall_ms"].max()) / 1000.0
            per_k.append({"scenario": batch["scenario"].iloc[0], "concurrency": int(k),
                          "n": int(len(ok)), "n_failed": int(len(batch) - len(ok)),
                          "wall_s": wall_s,
                          "throughput_per_s": len(ok) / wall_s if wall_s > 0 else float("nan"),
                          "p50_ms": ok["total_ms"].median() if len(ok) else float("nan"),
                          "delay": batch["delay"].iloc[0]})
        if len(per_k) < 2:
            continue
        base = next((r["throughput_per_s"] for r in per_k if r["concurrency"] == 1), float("nan"))
        for r in per_k:
            r["speedup"] = r["throughput_per_s"] / base if base == base and base else float("nan")
            rows.append(r)
    return pd.DataFrame(rows, columns=_SPEEDUP_COLUMNS)


_SPEEDUP_COLUMNS = ["scenario", "concurrency", "n", "n_failed", "wall_s", "throughput_per_s",
                    "speedup", "p50_ms", "delay"]


# --------------------------------------------------------------------------- the runner
@dataclass
class Identities:
    """Who the runner acquires as, and where.

    Against the embedded authority :func:`run` registers these itself
    (:meth:`register`). For a live target (a real app registration, a real
    VM's managed identity) build one and pass ``identities=`` without an
    authority: ``cloud=None`` means the public cloud. The runner cannot
    inject delays there, so scenarios must have none.

    ``certificate``: the app's lab Certificate with its private key (vanilla
    and FIC leg 1). ``leg2_client_id``: the app that exchanges the assertion
    (it needs a federated credential trusting the leg-1 identity).
    ``managed_identity``: a ManagedIdentityId for the managed identity scenarios.
    """

    client_id: str | None = None
    tenant_id: str | None = None
    certificate: Any = None
    leg2_client_id: str | None = None
    managed_identity: Any = None
    cloud: Any = None

    @classmethod
    def register(cls, authority) -> "Identities":
        """Two fresh apps in the authority's directory; leg 2's app trusts the first app and the
        system-assigned managed identity (federated credentials)."""
        from .flows import ManagedIdentityId

        directory = authority.directory
        suffix = uuid.uuid4().hex[:6]
        app = directory.register_app(f"bench-app-{suffix}")
        leg2 = directory.register_app(f"bench-leg2-{suffix}")
        mi = ManagedIdentityId.system_assigned()
        directory.add_federated_credential(leg2, trusted=app)
        directory.add_federated_credential(leg2, trusted=mi)
        return cls(app.client_id, app.tenant_id, app.certificate, leg2.client_id, mi, authority.cloud)

    def check(self, scenarios: Sequence[Scenario]) -> None:
        """Refuse, before any request, a scenario these identities cannot run."""
        need_app = any(s.identity == "confidential_client" for s in scenarios)
        if need_app and not (self.client_id and self.tenant_id and self.certificate is not None):
            raise ConfigurationError("A confidential-client scenario needs client_id, tenant_id and certificate.",
                                     fix="Pass Identities(client_id=..., tenant_id=..., certificate=...).")
        if any(s.flow == "two_leg" for s in scenarios) and not (self.leg2_client_id and self.tenant_id):
            raise ConfigurationError("A two-leg scenario needs the leg-2 app (leg2_client_id).",
                                     cause="FIC leg 2 is a confidential client with a federated credential "
                                           "trusting the leg-1 identity.",
                                     fix="Pass Identities(leg2_client_id=..., tenant_id=...).")
        if any(s.identity == "managed_identity" for s in scenarios) and self.managed_identity is None:
            raise ConfigurationError("A managed identity scenario needs managed_identity=.",
                                     fix="Pass Identities(managed_identity=ManagedIdentityId.system_assigned()).")


class _Client:
    """One scenario's acquirer (vanilla) or leg-1 acquirer + leg-2 exchanger (two-leg).

    ``acquire()`` returns ``[(leg, TokenResult), ...]`` in call order.
    """

    def __init__(self, scenario: Scenario, ids: Identities, cloud):
        from .flows import FicLeg1Acquirer, FicLeg2Exchanger, MtlsPopTokenAcquirer

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
        from .flows import close_issued_connections, forget_issued_certificates
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


class _Recorder:
    """Collects rows from worker threads; owns the progress bar."""

    def __init__(self, run_id: str, target: str, listener_of: Callable[[str], str], total: int,
                 progress: bool):
        self.run_id, self.target, self.listener_of = run_id, target, listener_of
        self.delays: dict[str, dict[str, float]] = {}   # scenario -> listener -> ms (authority's word)
        self.acq_rows: list[dict] = []
        self.rt_rows: list[dict] = []
        self.lock = threading.Lock()
        self.t0 = time.perf_counter()
        # No bar at all without progress: even a disabled tqdm starts a monitor thread
        # that outlives the run by up to 10 s.
        self.bar = _progress_bar(total) if progress else _NoBar()

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
    from .transport import record

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
        identities: Identities | None = None, warmup: int = 1, progress: bool = True,
        interleave: bool = True) -> BenchResult:
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
    ``warmup=True``. ``progress`` shows a tqdm bar (a widget in notebooks).

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
                                 fix="Pass bench.standard_scenarios() or a list of bench.Scenario.")
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
                fix="Use delay_ms=0 and no listener_delays, or run against a LocalAuthority.")
        identities.check(scenarios)
    own = authority is None and identities is None
    if own:
        from .authority import LocalAuthority
        regions = sorted({s.region for s in scenarios if s.region}) or ["westus3", "eastus2"]
        authority = LocalAuthority(regions=tuple(regions))
    try:
        if identities is None:
            identities = Identities.register(authority)
        if authority is not None and identities.cloud is None:
            identities = dataclasses.replace(identities, cloud=authority.cloud)
        cloud = identities.cloud
        if cloud is None:
            from .cloud import Cloud
            cloud = Cloud.public()
        target = "embedded authority" if getattr(cloud, "is_local", False) else "live cloud"
        names = _unique_names(scenarios)
        primes = sum(s.concurrency for s in scenarios if s.state in ("warm_connection", "cache_hit")) + \
            sum(1 for s in scenarios if s.state == "cold" and s.uses_issued_certificate)
        total = len(scenarios) * (iterations + warmup) + primes
        run_id = uuid.uuid4().hex[:8]
        started_at = _dt.datetime.now(_dt.timezone.utc)
        recorder = _Recorder(run_id, target, _listener_map(cloud), total, progress)
        plans = [_Plan(recorder, s, n, authority, identities, cloud) for s, n in zip(scenarios, names)]
        interleaved = interleave and len(plans) > 1 and all(s.concurrency == 1 for s in scenarios) \
            and not _forgetting_conflicts(scenarios)
        try:
            for plan in plans:
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
                "interleaved": interleaved,
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
