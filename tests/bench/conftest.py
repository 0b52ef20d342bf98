"""One bench run against the session's embedded authority, shared by the runner and chart tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mtlspop_lab import latency as bench


@pytest.fixture(scope="session")
def plan():
    """What the shared run measures: n per scenario, the regional/global delays, the scenarios."""
    regional_ms, global_ms = 3.0, 6.0
    scenarios = (bench.standard_scenarios(0)
                 + [bench.Scenario(identity="managed_identity", state="cold_mint")]
                 + [bench.Scenario(flow="two_leg", token="bearer")]
                 + bench.region_scenarios(regional_ms, global_ms)
                 + [bench.Scenario(state="reused")]
                 + [bench.Scenario(concurrency=2)])
    return SimpleNamespace(n=4, regional_ms=regional_ms, global_ms=global_ms, scenarios=scenarios)


@pytest.fixture(scope="session")
def measured(authority, plan):
    """(BenchResult, the authority's trace of exactly that run)."""
    authority.clear_trace()
    try:
        result = bench.run(plan.scenarios, plan.n, authority=authority, warmup=1, progress=False)
        trace = authority.trace
    finally:
        authority.reset_knobs()
    return result, trace


@pytest.fixture(scope="session")
def result(measured):
    return measured[0]
