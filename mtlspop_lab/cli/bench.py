"""``mtlspop-lab bench``: run the latency experiments, print the numbers, write CSV and charts.

    mtlspop-lab bench --iterations 100 --delay 20 --out results.csv --plot latency.png

The run starts its own embedded authority (loopback, real TLS), injects
``--delay`` ms per round trip on the server side, runs the chosen suites and
prints p50/p90/p99/n per scenario and the ratios that answer the guide's claims.
``--out`` writes the raw rows (one per acquisition, plus ``<stem>-round-trips.csv``);
``--plot`` writes a chart (PNG or SVG by suffix) that states n, the delay and
the target.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys

import pandas as pd

from .. import latency
from ..errors import ConfigurationError, LabError
from ..latency import charts

SUITES = ("standard", "regions", "acquirer", "parallel", "managed_identity")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtlspop-lab bench",
        description="Measure vanilla vs two-leg, cache hits, regional endpoints and parallel "
                    "acquisitions against the embedded authority.")
    parser.add_argument("--iterations", "-n", type=int, default=50,
                        help="measured acquisitions per scenario (default 50)")
    parser.add_argument("--delay", type=float, default=20.0,
                        help="ms injected per round trip on every listener (default 20); the "
                             "'regions' suite uses --regional-delay and --global-delay instead")
    parser.add_argument("--regional-delay", type=float, default=5.0, help="regions suite: regional ms (5)")
    parser.add_argument("--global-delay", type=float, default=20.0, help="regions suite: global ms (20)")
    parser.add_argument("--handshake-delay", action="store_true",
                        help="a new TLS connection pays the delay once more (its handshake round trip)")
    parser.add_argument("--suite", action="append", choices=SUITES + ("all",),
                        help="which experiments (repeatable; default: standard)")
    parser.add_argument("--threads", default="1,2,4,8,16",
                        help="parallel suite: thread counts, comma-separated (default 1,2,4,8,16)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up acquisitions per scenario (1)")
    parser.add_argument("--out", metavar="CSV", help="write the raw rows as CSV")
    parser.add_argument("--plot", metavar="FILE", help="write a chart (.png or .svg)")
    parser.add_argument("--breakdown", metavar="FILE",
                        help="also write the where-the-time-goes chart (.png or .svg)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def scenarios_for(args) -> list:

    suites = args.suite or ["standard"]
    if "all" in suites:
        suites = list(SUITES)
    chosen = []
    for suite in dict.fromkeys(suites):
        if suite == "standard":
            chosen += latency.standard_scenarios(args.delay)
        elif suite == "regions":
            chosen += latency.region_scenarios(args.regional_delay, args.global_delay)
        elif suite == "acquirer":
            chosen += [s for s in latency.acquirer_scenarios(args.delay)
                       if s not in chosen]
        elif suite == "managed_identity":
            chosen += [s for s in latency.managed_identity_scenarios(args.delay) if s not in chosen]
        elif suite == "parallel":
            chosen += [s for s in latency.parallel_scenarios(args.delay, _threads(args.threads))
                       if s not in chosen]
    if args.handshake_delay:
        chosen = [dataclasses.replace(s, handshake_delay=True) for s in chosen]
    return chosen


def _threads(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ConfigurationError(f"--threads {text!r} is not a list of thread counts.",
                                 fix="Pass positive integers separated by commas, e.g. 1,2,4,8,16.")
    return values


def report(result) -> str:
    """The printed part: summary per scenario, ratios, and speed-up when measured."""
    with pd.option_context("display.width", 160, "display.max_columns", 20,
                           "display.float_format", "{:.3g}".format):
        summary = result.summary()[["scenario", "n", "n_failed", "p50_ms", "p90_ms", "p99_ms",
                                    "round_trips_p50", "delay"]]
        lines = [f"target: {result.meta.get('target')}  run {result.meta.get('run_id')}  "
                 f"wall {result.meta.get('wall_s', 0):.1f} s", "", summary.to_string(index=False)]
        table = result.ratios()
        if len(table):
            lines += ["", table[["comparison", "numerator", "denominator", "ratio_p50",
                                 "diff_p50_ms"]].to_string(index=False)]
        speed = result.speedup()
        if len(speed):
            lines += ["", speed[["scenario", "concurrency", "n", "throughput_per_s", "speedup"]]
                      .to_string(index=False)]
    return "\n".join(lines)


def check_outputs(args) -> None:
    """Fail before the run, not after a minute of measuring, on an output that cannot be written."""

    for option, path, suffixes in (("--out", args.out, (".csv",)),
                                   ("--plot", args.plot, (".png", ".svg", ".pdf")),
                                   ("--breakdown", args.breakdown, (".png", ".svg", ".pdf"))):
        if not path:
            continue
        target = pathlib.Path(path)
        if target.suffix.lower() not in suffixes:
            raise ConfigurationError(f"{option} {path!r}: unsupported file type.",
                                     fix=f"Use a name ending in {' or '.join(suffixes)}.",
                                     code="unsupported_file_type")
        folder = target.parent if str(target.parent) else pathlib.Path(".")
        if not folder.is_dir():
            raise ConfigurationError(f"{option} {path!r}: the folder {str(folder)!r} does not exist.",
                                     fix="Create it first, or write to an existing folder.",
                                     code="folder_not_found")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:

        check_outputs(args)
        scenarios = scenarios_for(args)
        result = latency.run(scenarios, args.iterations, warmup=args.warmup, progress=not args.no_progress)
    except LabError as exc:
        print(f"mtlspop-lab bench: {exc}", file=sys.stderr)
        return 2
    print(report(result))
    if args.out:
        paths = result.to_csv(args.out)
        print(f"\nwrote {paths[0]} and {paths[1]}")
    if args.plot:
        figure = charts.dashboard(result.acquisitions, result.round_trips)
        print(f"wrote {charts.save(figure, args.plot)}")
    if args.breakdown:
        figure = charts.time_breakdown(result.acquisitions, result.round_trips)
        print(f"wrote {charts.save(figure, args.breakdown)}")
    ok = (result.acquisitions["outcome"] == "ok").any()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
