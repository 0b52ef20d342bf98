"""The latency lab: run token-acquisition scenarios, get tidy DataFrames, summarize them.

Why: the guide claims that the vanilla flow is faster than the FIC two-leg flow
(one round trip against two), that MSAL's cache and reusing an acquirer matter,
that regional endpoints lower latency and that parallel acquisitions help.
This package measures each claim with the lab's real client flows against the
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
    the guide's "create once, reuse" pattern: one acquirer for every iteration,
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

Regional numbers come from a stated network model (:mod:`.network_model`:
round-trip times per host and their sources); their scenarios say "model"
in their label and delay.

Modules: :mod:`.schema` (the frames' columns), :mod:`.scenarios`, :mod:`.network_model`, :mod:`.runner`
(:func:`run`), :mod:`.summary` (:class:`BenchResult`, :func:`summarize`,
:func:`ratios`, :func:`speedup`) and :mod:`.charts`.
"""

from .identities import Identities
from .network_model import AZURE_SAME_REGION, NetworkModel
from .runner import run
from .scenarios import (
                        Scenario,
                        acquirer_scenarios,
                        managed_identity_scenarios,
                        parallel_scenarios,
                        region_scenarios,
                        standard_scenarios,
)
from .schema import (
                        ACQUISITION_COLUMNS,
                        COLD_STATES,
                        FLOWS,
                        IDENTITIES,
                        LABEL_COLUMNS,
                        ROUND_TRIP_COLUMNS,
                        STATES,
                        TOKENS,
                        empty_acquisitions,
                        empty_round_trips,
)
from .summary import BenchResult, ratios, speedup, summarize

__all__ = [
    "Scenario", "Identities", "NetworkModel", "AZURE_SAME_REGION", "BenchResult", "run", "standard_scenarios", "region_scenarios",
    "parallel_scenarios", "acquirer_scenarios", "managed_identity_scenarios", "summarize", "ratios",
    "speedup", "ACQUISITION_COLUMNS", "ROUND_TRIP_COLUMNS", "LABEL_COLUMNS", "STATES", "COLD_STATES",
    "IDENTITIES", "FLOWS", "TOKENS", "empty_acquisitions", "empty_round_trips",
]
