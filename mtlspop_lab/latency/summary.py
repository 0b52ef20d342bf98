"""Summaries of a run: medians and percentiles per scenario, ratios side by side, parallel speed-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from .schema import LABEL_COLUMNS


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




# --------------------------------------------------------------------------- summaries
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
    """The ratios that answer the guide's claims, for every pair of scenarios that
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
