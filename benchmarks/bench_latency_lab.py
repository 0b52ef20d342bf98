"""Latency lab benchmark: the seed's performance claims, measured side by side in one run.

    python3 benchmarks/bench_latency_lab.py [--iterations 60] [--speed-iterations 200] [--charts DIR]

Prints (no assertions; the targets are the issue's, shown next to the numbers):
1. 20 ms injected per round trip: median cold two-leg / cold vanilla (target 1.8-2.2),
   cache hit / cold (target < 1%), warm connection / cold, acquirer reused / re-created.
2. Regional endpoint 5 ms vs global 20 ms: the median difference next to the
   difference of injected delay the two scenarios actually met.
3. Parallel speed-up for 1..16 threads (20 ms injected).
4. No injected delay: 6 scenarios x 200 iterations, wall time (target < 30 s).
5. Managed identity, 20 ms injected: the process's first acquisition (IMDS v2
   certificate minted) vs cold (certificate reused, new TLS connection) vs warm.
Everything runs against one embedded authority on loopback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import pandas as pd  # noqa: E402

from mtlspop_lab import latency as bench  # noqa: E402
from mtlspop_lab.latency import charts  # noqa: E402
from mtlspop_lab.authority import LocalAuthority  # noqa: E402


def _median(result, scenario):
    rows = result.acquisitions
    rows = rows[(rows["scenario"] == scenario) & (rows["outcome"] == "ok") & ~rows["warmup"]]
    return rows["total_ms"].median(), len(rows), rows["injected_ms"].median()


def _median_of(result, scenario, column):
    rows = result.acquisitions
    return rows[(rows["scenario"] == scenario) & (rows["outcome"] == "ok") & ~rows["warmup"]][column].median()


def _breakdown(result, scenarios) -> pd.DataFrame:
    rows = result.acquisitions
    rows = rows[rows["scenario"].isin(scenarios) & (rows["outcome"] == "ok") & ~rows["warmup"]]
    table = rows.groupby("scenario", sort=False)[["total_ms", "setup_ms", "http_ms", "tls_handshake_ms",
                                                  "injected_ms", "client_ms", "round_trips"]].median()
    return table.round(2)


def _failures(result) -> str:
    failed = result.acquisitions[result.acquisitions["outcome"] != "ok"]
    if failed.empty:
        return "failures: none"
    return "failures: " + ", ".join(f"{k} x{v}" for k, v in failed["outcome"].value_counts().items())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=60, help="per scenario, delayed runs")
    parser.add_argument("--speed-iterations", type=int, default=200, help="per scenario, no-delay run")
    parser.add_argument("--parallel-iterations", type=int, default=96, help="per thread count")
    parser.add_argument("--charts", metavar="DIR", help="write PNG charts there")
    parser.add_argument("--sections", default="1,2,3,4,5", help="which parts to run, e.g. 4")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    pd.set_option("display.width", 160)
    n = args.iterations
    sections = {part.strip() for part in args.sections.split(",")}
    first = second = third = None

    with LocalAuthority() as authority:
        print(f"mtlspop-lab latency benchmark; python {sys.version.split()[0]}, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}, target: embedded authority on 127.0.0.1\n")

        if "1" in sections:
            first = _section_one(authority, n, args)
        if "2" in sections:
            second = _section_two(authority, n, args)
        if "3" in sections:
            third = _section_three(authority, args)
        if "4" in sections:
            _section_four(authority, args)
        if "5" in sections:
            _section_five(authority, n, args)
        if args.charts and first is not None and second is not None and third is not None:
            os.makedirs(args.charts, exist_ok=True)
            for name, fig in (("ecdf", charts.ecdf(first.acquisitions)),
                              ("box", charts.boxplot(first.acquisitions)),
                              ("breakdown", charts.time_breakdown(first.acquisitions, first.round_trips)),
                              ("regions", charts.boxplot(second.acquisitions)),
                              ("speedup", charts.speedup_curve(third.acquisitions))):
                print("wrote", charts.save(fig, os.path.join(args.charts, f"{name}.png")))
    return 0


def _section_one(authority, n, args):
    """1. vanilla vs two-leg, cache, connection, acquirer reuse (20 ms per round trip)."""
    scenarios = [bench.Scenario(flow="vanilla", state="cold", delay_ms=20),
                 bench.Scenario(flow="two_leg", state="cold", delay_ms=20),
                 bench.Scenario(flow="vanilla", state="warm_connection", delay_ms=20),
                 bench.Scenario(flow="vanilla", state="cache_hit", delay_ms=20),
                 bench.Scenario(flow="vanilla", state="reused", delay_ms=20)]
    first = bench.run(scenarios, n, authority=authority, progress=args.progress)
    print("== 1. 20 ms injected per round trip ==")
    print(first.summary()[["scenario", "n", "n_failed", "p50_ms", "p90_ms", "p99_ms",
                           "round_trips_p50", "new_connections_p50"]].to_string(index=False))
    print(first.ratios()[["comparison", "numerator", "denominator", "ratio_p50", "diff_p50_ms"]]
          .to_string(index=False))
    cold_v, n_v, _ = _median(first, scenarios[0].label)
    cold_2, n_2, _ = _median(first, scenarios[1].label)
    hit, n_h, _ = _median(first, scenarios[3].label)
    print(f"\nRESULT two-leg / vanilla (cold, median): {cold_2 / cold_v:.2f}   "
          f"[{cold_2:.1f} ms n={n_2} / {cold_v:.1f} ms n={n_v}]   target 1.8-2.2")
    print(f"RESULT cache hit / cold (median): {100 * hit / cold_v:.3f} %   "
          f"[{hit:.4f} ms n={n_h} / {cold_v:.1f} ms]   target < 1 %")
    print(_failures(first))
    print("\nwhere the cold time goes (medians, ms):")
    print(_breakdown(first, [s.label for s in scenarios[:3]]).to_string())
    http_ratio = (_median_of(first, scenarios[1].label, "http_ms")
                  / _median_of(first, scenarios[0].label, "http_ms"))
    print(f"two-leg / vanilla on time in round trips only (http_ms, median): {http_ratio:.2f}")

    # the same, when a new TLS connection also pays its handshake round trip
    handshake = [bench.Scenario(flow="vanilla", state="cold", delay_ms=20, handshake_delay=True),
                 bench.Scenario(flow="two_leg", state="cold", delay_ms=20, handshake_delay=True)]
    extra = bench.run(handshake, n, authority=authority, progress=args.progress)
    (hv, hv_n, hv_inj), (h2, h2_n, h2_inj) = (_median(extra, s.label) for s in handshake)
    print(f"with the handshake round trip delayed too: two-leg / vanilla (cold, median) {h2 / hv:.2f}  "
          f"[{h2:.1f} ms n={h2_n} / {hv:.1f} ms n={hv_n}; injected {h2_inj:g} vs {hv_inj:g} ms]")
    return first


def _section_two(authority, n, args):
    """2. regional 5 ms vs global 20 ms, cold and over a warm connection."""
    regional = bench.region_scenarios(5, 20) + bench.region_scenarios(5, 20, state="warm_connection")
    second = bench.run(regional, n, authority=authority, progress=args.progress)
    print("\n== 2. regional (5 ms) vs global (20 ms) mTLS endpoint: a network MODEL, not a measurement ==")
    print(second.summary()[["scenario", "n", "p50_ms", "p90_ms", "round_trips_p50", "delay"]]
          .to_string(index=False))
    for state in ("cold", "warm connection"):
        r_name, g_name = (f"{state} vanilla PoP app {where} (model)" for where in ("westus3", "global"))
        (r_ms, r_n, r_inj), (g_ms, g_n, g_inj) = _median(second, r_name), _median(second, g_name)
        print(f"RESULT {state}: regional - global (median): {r_ms - g_ms:+.1f} ms  [{r_ms:.1f} ms n={r_n} "
              f"vs {g_ms:.1f} ms n={g_n}]; injected-delay difference met: {r_inj - g_inj:+.1f} ms; "
              f"ratio {r_ms / g_ms:.2f}")
    print(_failures(second))
    return second


def _section_three(authority, args):
    """3. parallel speed-up, 1..16 threads, cold acquisitions, 20 ms injected."""
    third = bench.run(bench.parallel_scenarios(20, (1, 2, 4, 8, 16)), args.parallel_iterations,
                      authority=authority, progress=args.progress)
    print("\n== 3. parallel cold acquisitions, 20 ms injected ==")
    print(third.speedup()[["scenario", "concurrency", "n", "wall_s", "throughput_per_s", "speedup",
                           "p50_ms"]].to_string(index=False))
    print(_failures(third))
    return third


def _section_four(authority, args):
    """4. the lab's own speed: the six standard scenarios, no injected delay."""
    six = bench.standard_scenarios(0)
    start = time.perf_counter()
    fourth = bench.run(six, args.speed_iterations, authority=authority, progress=args.progress)
    wall = time.perf_counter() - start
    print(f"\n== 4. no injected delay: {len(six)} scenarios x {args.speed_iterations} iterations ==")
    print(fourth.summary()[["scenario", "n", "n_failed", "p50_ms", "p90_ms", "p99_ms",
                            "round_trips_p50"]].to_string(index=False))
    print(f"RESULT wall time: {wall:.1f} s for {len(fourth.acquisitions)} recorded acquisitions "
          f"(incl. warm-ups)   target < 30 s")
    spent = fourth.acquisitions.groupby("scenario", sort=False)["total_ms"].sum() / 1000
    print("time spent acquiring, per scenario (s): "
          + ", ".join(f"{name} {seconds:.1f}" for name, seconds in spent.items()))
    print(f"load average after the run: {fourth.meta.get('load_average')} on {os.cpu_count()} cores")
    print(_failures(fourth))
    return fourth


def _section_five(authority, n, args):
    """5. managed identity: certificate mint vs cold vs warm connection, 20 ms injected."""
    fifth = bench.run(bench.managed_identity_scenarios(20), n, authority=authority, progress=args.progress)
    print("\n== 5. managed identity PoP, 20 ms injected: certificate mint vs cold vs warm ==")
    print(fifth.summary()[["scenario", "n", "n_failed", "p50_ms", "p90_ms", "round_trips_p50",
                           "new_connections_p50"]].to_string(index=False))
    print(fifth.ratios()[["comparison", "numerator", "denominator", "ratio_p50", "diff_p50_ms"]]
          .to_string(index=False))
    print("where the time goes (medians, ms):")
    print(_breakdown(fifth, list(fifth.acquisitions["scenario"].unique())).to_string())
    print(_failures(fifth))
    return fifth


if __name__ == "__main__":
    sys.exit(main())
