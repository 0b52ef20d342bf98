"""What a latency experiment will cost and what its numbers mean: estimate, noise, footnotes.

Why: a room of 30 presses Run at once on small machines. Before a run the learner sees how
long it should take (a run at the sliders' maxima once took almost four minutes with no
warning); after it, small samples are marked noisy instead of looking precise, and every
scenario whose name hides a mechanism (certificate reuse, cold vs warm) gets a footnote.
"""

from __future__ import annotations

from typing import Sequence

from .scenarios import Scenario

NOISY_BELOW = 20   # fewer measured acquisitions per scenario than this: p90 is noise

# rough costs on the embedded authority, per acquisition, besides the injected delay:
# (round trips, client + server work in ms). Measured on a 2-core machine; an estimate only.
_COST = {"cold": (2, 30.0), "cold_mint": (3, 150.0), "warm_connection": (1, 8.0), "reused": (1, 8.0),
         "cache_hit": (0, 1.0)}
_FIXED_S = 2.0   # registering identities, warm-up bookkeeping, drawing the charts

FOOTNOTES = {
    "cold": "cold: a new acquirer for every acquisition - discovery, a new TLS handshake and a token "
            "request each time.",
    "cold_mint": "cold_mint: the process also forgets its IMDS certificate, so each acquisition makes a new "
                 "key and CSR (issuecredential) before the token request.",
    "warm_connection": "warm connection: the acquirer's token cache is emptied, its TLS connection kept: "
                       "one token request, no handshake.",
    "cache_hit": "cache hit: the token is served from the acquirer's cache - no request at all.",
    "reused": "reused: one acquirer for every call (the guide's 'create once, reuse'): cache and connection kept.",
    "managed_identity": "managed identity: IMDS issues the certificate once per process and the process "
                        "keeps it, so a 'cold' managed-identity acquisition skips the certificate request; "
                        "that is why it can beat the app.",
    "two_leg": "two-leg: leg 1 gets an assertion, leg 2 exchanges it - two token requests where vanilla "
               "sends one.",
    "bearer": "Bearer: the same request without token_type=mtls_pop; it is bound to nothing.",
    "region": "regional: the token request goes to {region}.mtlsauth, closer than the global host "
              "(the lab gives it a smaller delay).",
    "concurrency": "threads: several acquisitions at once; look at throughput and speed-up, not p50.",
}


def estimate_seconds(scenarios: Sequence[Scenario], iterations: int, *, warmup: int = 1,
                     delay_ms: float | None = None) -> float:
    """About how long :func:`mtlspop_lab.latency.run` will take for these scenarios (seconds).

    ``delay_ms`` overrides each scenario's own delay (for listener-specific delays the largest).
    A planning figure, shown before Run; never a test's pass/fail number.
    """
    total_ms = 0.0
    for scenario in scenarios:
        trips, work = _COST.get(scenario.state, (2, 30.0))
        if scenario.flow == "two_leg":
            trips, work = trips * 2, work * 2
        delay = delay_ms if delay_ms is not None else max(
            [scenario.delay_ms] + [d for _listener, d in scenario.listener_delays])
        per_acquisition = work + trips * (delay + 1.5)
        if scenario.handshake_delay and scenario.state in ("cold", "cold_mint"):
            per_acquisition += trips * delay
        count = iterations + warmup + (scenario.concurrency if scenario.state in ("warm_connection",
                                                                                  "cache_hit") else 0)
        total_ms += count * per_acquisition / max(1, min(scenario.concurrency, 4))
    return _FIXED_S + total_ms / 1000.0


def estimate_text(seconds: float) -> str:
    if seconds < 60:
        return f"about {max(1, round(seconds))} s"
    return f"about {seconds / 60:.1f} min"


def is_noisy(n: int) -> bool:
    return int(n) < NOISY_BELOW


def footnotes(scenarios: Sequence[Scenario]) -> list[str]:
    """One footnote per mechanism the scenarios' names stand for, in a stable order."""
    keys: list[str] = []
    for scenario in scenarios:
        keys.append(scenario.state)
        if scenario.identity == "managed_identity":
            keys.append("managed_identity")
        if scenario.flow == "two_leg":
            keys.append("two_leg")
        if scenario.token == "bearer":
            keys.append("bearer")
        if scenario.region:
            keys.append("region")
        if scenario.concurrency > 1:
            keys.append("concurrency")
    return [FOOTNOTES[k] for k in dict.fromkeys(keys) if k in FOOTNOTES]
