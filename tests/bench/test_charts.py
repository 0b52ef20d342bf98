"""Charts drawn from a real run render to PNG/SVG and state n, the injected delay and the target."""

from __future__ import annotations

import pytest

from mtlspop_lab.latency import charts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _all_text(fig) -> str:
    texts = [t.get_text() for t in fig.texts]
    if fig._suptitle is not None:
        texts.append(fig._suptitle.get_text())
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        texts += [t.get_text() for t in ax.get_yticklabels()]
        legend = ax.get_legend()
        if legend is not None:
            texts += [t.get_text() for t in legend.get_texts()]
    return "\n".join(texts)


def _caption(fig) -> str:
    return "\n".join(t.get_text() for t in fig.texts if t.get_gid() == charts.CAPTION_GID)


def _saved(fig, path) -> bytes:
    charts.save(fig, path)
    data = path.read_bytes()
    assert len(data) > 5000
    return data


def test_charts_do_not_load_pyplot():
    """No global figure state: importing and drawing never loads pyplot (Agg-safe, notebook-safe)."""
    import subprocess
    import sys
    code = ("import sys, pandas as pd; import mtlspop_lab.latency.charts as c, mtlspop_lab.latency as b; "
            "c.ecdf(b.empty_acquisitions()); print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ecdf_has_a_log_time_axis_and_states_n_delay_target(result, plan, tmp_path):
    fig = charts.ecdf(result.acquisitions)
    data = _saved(fig, tmp_path / "ecdf.png")
    assert data.startswith(PNG_MAGIC)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert "ms, log scale" in ax.get_xlabel()
    assert ax.get_ylabel() == "fraction of acquisitions ≤ x"
    assert "ECDF" in ax.get_title()
    caption = _caption(fig)
    assert f"n = {plan.n} per scenario" in caption
    assert "injected delay: " in caption and "0 ms" in caption
    assert "target: embedded authority" in caption
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == result.acquisitions["scenario"].nunique()
    assert all(f"n={plan.n}" in label for label in labels)


def test_boxplot_whiskers_are_the_5th_and_95th_percentiles(result, plan, tmp_path):
    cold = [s for s in result.acquisitions["scenario"].unique() if s.startswith("cold")][:3]
    fig = charts.boxplot(result.acquisitions, scenarios=cold)
    _saved(fig, tmp_path / "box.png")
    ax = fig.axes[0]
    assert "whiskers: 5th-95th percentile" in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{s} (n={plan.n})" for s in cold]
    assert f"n = {plan.n} per scenario" in _caption(fig)
    # the whisker ends of the first box are those of a 5-95 percentile box (not 1.5 IQR)
    import matplotlib.cbook
    rows = result.acquisitions
    values = rows[(rows["scenario"] == cold[0]) & ~rows["warmup"]]["total_ms"].to_numpy()
    stats = matplotlib.cbook.boxplot_stats(values, whis=(5, 95))[0]
    ends = {line.get_gid(): line.get_xdata()[1] for line in ax.lines
            if (line.get_gid() or "").startswith("whisker-0")}
    assert ends["whisker-0-low"] == pytest.approx(stats["whislo"])
    assert ends["whisker-0-high"] == pytest.approx(stats["whishi"])
    assert stats["whislo"] >= values.min() and stats["whishi"] <= values.max()


def test_boxplot_switches_to_log_when_a_cache_hit_sits_beside_cold(result, tmp_path):
    fig = charts.boxplot(result.acquisitions, scenarios=["cold vanilla PoP app", "cache hit vanilla PoP app"])
    assert fig.axes[0].get_xscale() == "log"
    assert "log scale" in fig.axes[0].get_xlabel()


def test_time_breakdown_stacks_round_trips_and_components(result, tmp_path):
    names = ["cold vanilla PoP app", "cold two-leg PoP app", "cache hit vanilla PoP app"]
    fig = charts.time_breakdown(result.acquisitions, result.round_trips, scenarios=names)
    data = _saved(fig, tmp_path / "breakdown.svg")
    assert b"<svg" in data[:500]
    by_rt, by_component = fig.axes
    assert by_rt.get_title() == "by round trip" and by_component.get_title() == "by component"
    assert "ms per acquisition" in by_rt.get_xlabel()
    legend = [t.get_text() for t in by_rt.get_legend().get_texts()]
    assert "leg1: token" in legend and "leg2: token" in legend
    components = [t.get_text() for t in by_component.get_legend().get_texts()]
    assert components[0] == "TLS handshake" and any("injected delay" in c for c in components)
    # each bar's segments add up to the mean total_ms of its scenario
    acq = result.acquisitions
    for index, name in enumerate(names):
        mean = acq[(acq["scenario"] == name) & ~acq["warmup"]]["total_ms"].mean()
        for ax in (by_rt, by_component):
            widths = [p.get_width() for p in ax.patches if abs(p.get_y() + p.get_height() / 2 - index) < 1e-6]
            assert sum(widths) == pytest.approx(mean, rel=1e-6, abs=1e-6)
    assert "target: embedded authority" in _caption(fig)


def test_speedup_curve_has_the_ideal_line(result, tmp_path):
    fig = charts.speedup_curve(result.acquisitions)
    _saved(fig, tmp_path / "speedup.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "threads acquiring at the same time"
    assert "speed-up" in ax.get_ylabel()
    assert "ideal (linear)" in [t.get_text() for t in ax.get_legend().get_texts()]
    caption = _caption(fig)
    assert "per point" in caption and "injected delay" in caption


def test_dashboard_and_png_repr(result):
    fig = charts.dashboard(result.acquisitions, result.round_trips)
    assert len(fig.axes) == 3   # the run has a 1- and a 2-thread scenario: speed-up panel shown
    png = fig._repr_png_()
    assert png.startswith(PNG_MAGIC)
    text = _all_text(fig)
    assert "ECDF" in text and "whiskers 5-95" in text and "speed-up" in text
    assert "embedded authority" in _caption(fig)


def test_a_live_run_is_captioned_as_such(result):
    live = result.acquisitions.assign(target="live cloud")
    caption = _caption(charts.ecdf(live))
    assert "target: live cloud" in caption
    assert "injected delay: none (real network latency)" in caption
    failed = result.acquisitions.copy()
    failed.loc[failed.index[~failed["warmup"]][0], "outcome"] = "TransportError"
    assert "1 failed acquisitions not plotted" in _caption(charts.boxplot(failed))


def test_charts_of_regional_scenarios_say_model(result, tmp_path):
    regional = [name for name in result.acquisitions["scenario"].unique() if name.endswith("(model)")]
    assert len(regional) == 2
    fig = charts.boxplot(result.acquisitions, scenarios=regional)
    _saved(fig, tmp_path / "regions.png")
    assert "injected delay: model custom:" in _caption(fig)
    names = [t.get_text() for t in fig.axes[0].get_xticklabels() + fig.axes[0].get_yticklabels()
             if "vanilla" in t.get_text()]
    assert len(names) == 2 and all("(model)" in name for name in names)
    table = result.ratios()
    row = table[table["comparison"] == "westus3 / global"].iloc[0]
    assert row["delay"].startswith("model ")
