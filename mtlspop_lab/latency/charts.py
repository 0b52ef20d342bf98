"""Charts for the latency lab: matplotlib only, no pyplot, figures returned.

Why no pyplot: pyplot keeps global state (the "current figure", an open-figure
registry) that leaks between notebook cells and tests, and it needs a GUI
backend decision. Every function here builds a :class:`LabFigure` (a plain
``matplotlib.figure.Figure`` that renders itself as PNG in Jupyter) or draws
into an ``ax`` you give it, so it works headless (Agg) and in notebooks alike.

Honesty rules every chart follows (design.md, "Honest measurement"):
- each chart states ``n``, the injected delay and the target (embedded
  authority or live cloud) in a caption under the axes;
- only successful, non-warm-up acquisitions are plotted, and the caption says
  how many failed;
- cold, warm-connection and cache-hit scenarios are separate series, never pooled.

Inputs are the frames of :class:`mtlspop_lab.latency.BenchResult`.
"""

from __future__ import annotations

import io
import os
from typing import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .summary import speedup as _speedup

_MPL_VERSION = tuple(int(p) for p in matplotlib.__version__.split(".")[:2] if p.isdigit())

__all__ = ["LabFigure", "ecdf", "boxplot", "time_breakdown", "speedup_curve", "dashboard", "percentile_bars", "save",
           "caption_text"]

CAPTION_GID = "mtlspop-caption"
_COMPONENTS = (("tls_handshake_ms", "TLS handshake", "#4c72b0"),
               ("injected_ms", "injected delay (simulated network)", "#dd8452"),
               ("server_ms", "rest of round trip (server work, transfer)", "#55a868"),
               ("client_ms", "client (msal, JWTs, key generation, setup)", "#8172b3"))


class LabFigure(Figure):
    """A matplotlib Figure that shows itself as PNG in Jupyter, without pyplot."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def save(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> str:
    """Write a figure; the format follows the suffix (.png, .svg, .pdf)."""
    path = os.fspath(path)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


# --------------------------------------------------------------------------- helpers
def _measured(acquisitions: pd.DataFrame, scenarios: Sequence[str] | None) -> pd.DataFrame:
    frame = acquisitions[~acquisitions["warmup"].astype(bool)]
    if scenarios is not None:
        frame = frame[frame["scenario"].isin(list(scenarios))]
    return frame


def _order(frame: pd.DataFrame, scenarios: Sequence[str] | None) -> list[str]:
    present = list(dict.fromkeys(frame["scenario"]))
    return [s for s in scenarios if s in present] if scenarios is not None else present


def _new_figure(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    fig = LabFigure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _n_text(counts: Sequence[int]) -> str:
    counts = [int(c) for c in counts]
    if not counts:
        return "n = 0"
    lo, hi = min(counts), max(counts)
    return f"n = {lo} per scenario" if lo == hi else f"n = {lo}-{hi} per scenario"


def caption_text(acquisitions: pd.DataFrame, scenarios: Sequence[str] | None = None,
                 n_text: str | None = None) -> str:
    """``n = 200 per scenario · injected delay: 20 ms per round trip · target: embedded authority``."""
    frame = _measured(acquisitions, scenarios)
    ok = frame[frame["outcome"] == "ok"]
    if n_text is None:
        n_text = _n_text(ok.groupby("scenario").size().tolist())
    delays = list(dict.fromkeys(frame["delay"].astype(str))) or ["none"]
    targets = list(dict.fromkeys(frame["target"].astype(str))) or ["unknown"]
    failed = int((frame["outcome"] != "ok").sum())
    if targets == ["live cloud"]:     # nothing is injected on a real network: say so, not "0 ms"
        delay_text = "injected delay: none (real network latency)"
    else:
        delay_text = f"injected delay: {' | '.join(delays)} per round trip"
    parts = [n_text, delay_text, f"target: {', '.join(targets)}"]
    if failed:
        parts.append(f"{failed} failed acquisitions not plotted")
    return " · ".join(parts)


def _caption(fig: Figure, text: str) -> None:
    """One caption per figure, under the axes (replaced when a chart is redrawn)."""
    for existing in [t for t in fig.texts if t.get_gid() == CAPTION_GID]:
        existing.remove()
    fig.text(0.5, -0.01, text, ha="center", va="top", fontsize=10, color="#333333", gid=CAPTION_GID,
             wrap=True)


# --------------------------------------------------------------------------- charts
def ecdf(acquisitions: pd.DataFrame, *, value: str = "total_ms", scenarios: Sequence[str] | None = None,
         ax=None, title: str = "Token acquisition latency (ECDF)") -> Figure:
    """Empirical CDF per scenario on a log time axis: the whole distribution, tails included.

    A curve further left is faster; its steepness is its consistency. The
    legend gives each scenario's n and median.
    """
    fig, ax = _new_figure(ax, (8, 4.8))
    frame = _measured(acquisitions, scenarios)
    ok = frame[frame["outcome"] == "ok"]
    for name in _order(ok, scenarios):
        values = np.sort(ok.loc[ok["scenario"] == name, value].astype(float).to_numpy())
        values = np.maximum(values, 1e-3)  # a log axis cannot show 0 ms
        y = np.arange(1, len(values) + 1) / len(values)
        ax.step(values, y, where="post", label=f"{name} (n={len(values)}, p50 {np.median(values):.3g} ms)")
    ax.set_xscale("log")
    ax.set_xlabel(f"{_value_label(value)} (ms, log scale)")
    ax.set_ylabel("fraction of acquisitions ≤ x")
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=10, loc="lower right")
    _caption(fig, caption_text(acquisitions, scenarios))
    return fig


def boxplot(acquisitions: pd.DataFrame, *, value: str = "total_ms", scenarios: Sequence[str] | None = None,
            ax=None, log: bool | None = None,
            title: str = "Token acquisition latency (box: quartiles, whiskers: 5th-95th percentile)") -> Figure:
    """Box per scenario (quartiles, median), whiskers from the 5th to the 95th percentile,
    the observations beyond them as dots. As matplotlib draws it, a whisker ends at the
    most extreme observation inside that range.

    ``log=None`` picks a log axis when the fastest and slowest medians are
    more than 20x apart (a cache hit next to a cold acquisition).
    """
    fig, ax = _new_figure(ax, (8, 0.9 + 0.55 * max(1, acquisitions["scenario"].nunique())))
    frame = _measured(acquisitions, scenarios)
    ok = frame[frame["outcome"] == "ok"]
    names = _order(ok, scenarios)
    data = [np.maximum(ok.loc[ok["scenario"] == n, value].astype(float).to_numpy(), 1e-3) for n in names]
    if data:
        orientation = ({"orientation": "horizontal"} if _MPL_VERSION >= (3, 10) else {"vert": False})
        artists = ax.boxplot(data, whis=(5, 95), showfliers=True, widths=0.6,
                             flierprops={"markersize": 2, "alpha": 0.4}, **orientation)
        for index, line in enumerate(artists["whiskers"]):   # two per box, low then high
            line.set_gid(f"whisker-{index // 2}-{'low' if index % 2 == 0 else 'high'}")
        ax.set_yticks(range(1, len(names) + 1), [f"{n} (n={len(d)})" for n, d in zip(names, data)])
        ax.invert_yaxis()
        medians = [np.median(d) for d in data if len(d)]
        if log or (log is None and medians and max(medians) / max(min(medians), 1e-3) > 20):
            ax.set_xscale("log")
    ax.set_xlabel(f"{_value_label(value)} (ms{', log scale' if ax.get_xscale() == 'log' else ''})")
    ax.set_title(title)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    _caption(fig, caption_text(acquisitions, scenarios))
    return fig


def time_breakdown(acquisitions: pd.DataFrame, round_trips: pd.DataFrame, *,
                   scenarios: Sequence[str] | None = None,
                   title: str = "Where the time goes (mean per acquisition)") -> Figure:
    """Two stacked bars per scenario: by round trip (which request cost what) and
    by component (TLS handshake, injected delay, rest of the round trip, client).

    Means, not medians, so that the segments add up to the bar: the bar's length
    is the mean ``total_ms`` of the scenario's successful acquisitions.
    """
    frame = _measured(acquisitions, scenarios)
    ok = frame[frame["outcome"] == "ok"]
    names = _order(ok, scenarios)
    fig = LabFigure(figsize=(11, 1.6 + 0.6 * max(1, len(names))), layout="constrained")
    ax_rt, ax_comp = fig.subplots(1, 2, sharey=True)
    keys = ["run_id", "scenario", "iteration", "thread"]
    rts = round_trips.merge(ok[keys], on=keys, how="inner") if len(ok) else round_trips.iloc[0:0]
    steps = list(dict.fromkeys(rts.sort_values("rt_index", kind="stable")["step"])) if len(rts) else []
    color_of = dict(zip(steps, _colors(len(steps))))
    y = np.arange(len(names))
    drawn: set[str] = set()
    for j, name in enumerate(names):
        n_ok = max(1, int((ok["scenario"] == name).sum()))
        mine = rts[rts["scenario"] == name]
        # this scenario's own order of requests (IMDS before token, leg 1 before leg 2)
        order = mine.groupby("step")["rt_index"].median().sort_values(kind="stable").index
        left = 0.0
        for step in order:
            width = mine.loc[mine["step"] == step, "elapsed_ms"].sum() / n_ok
            ax_rt.barh(j, width, left=left, color=color_of[step], edgecolor="white", linewidth=0.5,
                       label=None if step in drawn else step)
            drawn.add(step)
            left += width
        outside = max(0.0, ok.loc[ok["scenario"] == name, "total_ms"].mean() - left)
        ax_rt.barh(j, outside, left=left, color="#bbbbbb", edgecolor="white", linewidth=0.5,
                   label=None if "outside" in drawn else "outside HTTP (client work, key generation, setup)")
        drawn.add("outside")
    ax_rt.set_yticks(y, [f"{n} (n={int((ok['scenario'] == n).sum())})" for n in names])
    ax_rt.invert_yaxis()
    ax_rt.set_xlabel("ms per acquisition (mean), by round trip")
    ax_rt.set_title("by round trip")
    handles, labels = ax_rt.get_legend_handles_labels()
    rank = {label: i for i, label in enumerate(steps)}
    pairs = sorted(zip(handles, labels), key=lambda hl: rank.get(hl[1], len(rank)))  # "outside" last
    if pairs:
        ax_rt.legend(*zip(*pairs), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2,
                     frameon=False)

    per_scenario = ok.groupby("scenario").agg(total_ms=("total_ms", "mean"), http_ms=("http_ms", "mean"),
                                              tls_handshake_ms=("tls_handshake_ms", "mean"),
                                              injected_ms=("injected_ms", "mean"),
                                              client_ms=("client_ms", "mean")).reindex(names)
    per_scenario["server_ms"] = (per_scenario["http_ms"] - per_scenario["tls_handshake_ms"]
                                 - per_scenario["injected_ms"]).clip(lower=0)
    stacked_left = np.zeros(len(names))
    for column, label, color in _COMPONENTS:
        widths = per_scenario[column].fillna(0).clip(lower=0).to_numpy(dtype=float)
        ax_comp.barh(y, widths, left=stacked_left, color=color, label=label, edgecolor="white", linewidth=0.5)
        stacked_left += widths
    ax_comp.set_xlabel("ms per acquisition (mean), by component")
    ax_comp.set_title("by component")
    ax_comp.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    for ax in (ax_rt, ax_comp):
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(title)
    _caption(fig, caption_text(acquisitions, scenarios))
    return fig


def speedup_curve(acquisitions: pd.DataFrame, *, ax=None,
                  title: str = "Parallel acquisitions: speed-up vs threads") -> Figure:
    """Throughput speed-up against the number of threads, with the ideal (linear) line.

    Speed-up is throughput(k threads) / throughput(1 thread), throughput being
    successful acquisitions per second of wall time for the whole batch.
    """

    fig, ax = _new_figure(ax, (6.5, 4.5))
    table = _speedup(acquisitions)
    counts = []
    for name, group in table.groupby(table["scenario"].str.replace(r" x\d+$", "", regex=True), sort=False):
        group = group.sort_values("concurrency")
        counts += group["n"].tolist()
        ax.plot(group["concurrency"], group["speedup"], marker="o", label=f"{name}")
        for _, row in group.iterrows():
            ax.annotate(f"{row['throughput_per_s']:.0f}/s", (row["concurrency"], row["speedup"]),
                        textcoords="offset points", xytext=(4, -10), fontsize=7)
    if len(table):
        top = int(table["concurrency"].max())
        ax.plot([1, top], [1, top], linestyle="--", color="grey", label="ideal (linear)")
        ax.set_xscale("log", base=2)
        ticks = sorted(table["concurrency"].unique())
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_yscale("log", base=2)
        ax.legend(fontsize=8)
    ax.set_xlabel("threads acquiring at the same time")
    ax.set_ylabel("speed-up (throughput vs 1 thread)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    scenarios = table["scenario"].tolist() if len(table) else None
    _caption(fig, caption_text(acquisitions, scenarios, n_text=_n_text(counts).replace("scenario", "point")))
    return fig


def percentile_bars(acquisitions: pd.DataFrame, *, headline: str = "", scenarios: Sequence[str] | None = None,
                    value: str = "total_ms", noisy_below: int = 0,
                    title: str = "Time per acquisition: p50 and p90") -> Figure:
    """p50 and p90 per scenario as horizontal bars, the headline ratio written on the chart.

    Readable at 1024 px: 9.5 in wide, every text 10 pt or more. A scenario with fewer than
    ``noisy_below`` samples is labelled "(noisy)".
    """
    frame = _measured(acquisitions, scenarios)
    ok = frame[frame["outcome"] == "ok"]
    names = _order(ok, scenarios)
    fig = LabFigure(figsize=(9.5, 1.6 + 0.55 * max(1, len(names))), layout="constrained")
    ax = fig.add_subplot()
    p50s, p90s, labels = [], [], []
    for name in names:
        values = ok.loc[ok["scenario"] == name, value].astype(float).to_numpy()
        p50s.append(float(np.percentile(values, 50)))
        p90s.append(float(np.percentile(values, 90)))
        labels.append(f"{name} (n={len(values)}{', noisy' if len(values) < noisy_below else ''})")
    y = np.arange(len(names))
    ax.barh(y + 0.2, p50s, height=0.38, label="p50 (median)", color="#4c72b0")
    ax.barh(y - 0.2, p90s, height=0.38, label="p90", color="#dd8452")
    for yy, a, b in zip(y, p50s, p90s):
        ax.text(a, yy + 0.2, f" {a:.1f}", va="center", fontsize=10)
        ax.text(b, yy - 0.2, f" {b:.1f}", va="center", fontsize=10)
    ax.set_yticks(y, labels, fontsize=10)
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=10)
    ax.set_xlabel(f"{_value_label(value)} (ms)", fontsize=11)
    ax.set_xlim(0, (max(p90s) if p90s else 1) * 1.18)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=10, loc="lower right")
    ax.set_title(title + (f"\n{headline}" if headline else ""), fontsize=12)
    _caption(fig, caption_text(acquisitions, scenarios))
    return fig


def dashboard(acquisitions: pd.DataFrame, round_trips: pd.DataFrame | None = None, *,
              title: str = "mtlspop-lab latency") -> Figure:
    """ECDF, box plot and (when the run had them) the parallel speed-up, in one figure.

    For the CLI's ``--plot``: one file that still states n, delay and target.
    """

    has_speedup = len(_speedup(acquisitions)) > 0
    fig = LabFigure(figsize=(14, 5.2 if not has_speedup else 5.0), layout="constrained")
    axes = fig.subplots(1, 3 if has_speedup else 2)
    ecdf(acquisitions, ax=axes[0], title="ECDF (log time axis)")
    boxplot(acquisitions, ax=axes[1], title="box: quartiles, whiskers 5-95th pct")
    if has_speedup:
        speedup_curve(acquisitions, ax=axes[2], title="parallel speed-up")
    fig.suptitle(title)
    _caption(fig, caption_text(acquisitions))
    return fig


def _value_label(value: str) -> str:
    return {"total_ms": "time per acquisition", "acquire_ms": "acquire call",
            "http_ms": "time in round trips", "client_ms": "client time"}.get(value, value)


def _colors(n: int):
    """Distinct colours without the palettes' greys (grey means "outside HTTP")."""
    from matplotlib import colormaps
    if n <= 9:
        cmap = colormaps["tab10"]
        return [cmap(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)][:max(n, 1)]
    cmap = colormaps["tab20"]
    palette = [cmap(i) for i in range(20) if i not in (14, 15)]
    return [palette[i % len(palette)] for i in range(n)]
