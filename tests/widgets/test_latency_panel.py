"""LatencyPanel, headless: each experiment measured for real, tables with n, charts, errors."""

from __future__ import annotations

import base64
import re

import pytest

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.widgets import LatencyPanel
from mtlspop_lab.widgets.latency import scenarios_for

PNG = b"\x89PNG\r\n\x1a\n"


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("experiment, rows, ratio", [
    ("standard", 6, "two-leg / vanilla"),
    ("region", 2, "westus3 / global"),
    ("acquirer", 2, "acquirer reused / re-created"),
    ("parallel", 3, "Parallel speed-up"),
])
def test_each_experiment_shows_percentiles_ratios_and_a_chart(authority, experiment, rows, ratio):
    panel = LatencyPanel(authority, experiment=experiment, iterations=2, delay_ms=2)
    panel.concurrency.value = 4
    panel.run_button.click()
    panel.wait()
    assert panel.last_error is None, panel.status.value
    summary = panel.result.summary()
    assert len(summary) == rows and (summary["n"] == 2).all() and (summary["n_failed"] == 0).all()
    table = text(panel.table.value)
    for name in summary["scenario"]:
        assert name in table
    assert "p50" in table and "p99" in table and "injected delay" in table and "2 ms" in table
    assert ratio in text(panel.ratios.value)
    (output,) = panel.chart.outputs
    assert base64.b64decode(output["data"]["image/png"]).startswith(PNG)
    assert "noisy" in table, "n = 2 is marked noisy"
    assert panel.footnotes.value and "cold" in text(panel.footnotes.value)
    panel.view.value = "ecdf"
    (ecdf_output,) = panel.chart.outputs
    assert ecdf_output["data"]["image/png"] != output["data"]["image/png"]
    assert authority.delays() and all(ms == 0 for ms in authority.delays().values()), "delays reset after a run"


def test_the_delay_and_region_reach_the_scenarios():
    (regional, global_) = scenarios_for("region", delay_ms=40, region="eastus2", concurrency=1)
    assert regional.region == "eastus2" and global_.region is None
    assert regional.delay_for("mtls:eastus2") == 10 and regional.delay_for("mtls") == 40
    threads = [s.concurrency for s in scenarios_for("parallel", delay_ms=0, region="x", concurrency=6)]
    assert threads == [1, 2, 4, 6]
    assert all(s.delay_ms == 15 for s in scenarios_for("standard", delay_ms=15, region="x", concurrency=1))


def test_region_and_concurrency_are_enabled_only_where_they_matter(authority):
    panel = LatencyPanel(authority)
    assert (panel.region.disabled, panel.concurrency.disabled) == (True, True)
    panel.experiment.value = "region"
    assert (panel.region.disabled, panel.concurrency.disabled) == (False, True)
    panel.experiment.value = "parallel"
    assert (panel.region.disabled, panel.concurrency.disabled) == (True, False)


def test_parallel_with_one_thread_is_a_readable_error(authority):
    panel = LatencyPanel(authority, experiment="parallel", iterations=1)
    panel.concurrency.value = 1
    panel.run_button.click()
    panel.wait()
    assert "concurrency_too_low" in panel.status.value and "Set concurrency to 2 or more" in panel.status.value
    assert panel.result is None and panel.table.value == "" and panel.chart.outputs == ()


def test_run_button_is_disabled_while_measuring(authority):
    panel = LatencyPanel(authority, experiment="acquirer", iterations=1, delay_ms=0)
    seen = []
    panel.run_button.observe(lambda change: seen.append(change.new), names="disabled")
    panel.run_button.click()
    panel.wait()
    assert seen == [True, False] and panel.result is not None


def test_a_closed_authority_says_what_to_do():
    authority = LocalAuthority()
    panel = LatencyPanel(authority)
    authority.close()
    panel.run_button.click()
    panel.wait()
    assert "authority_closed" in panel.status.value


def _texts(figure):
    """Every text artist of a figure (titles, labels, ticks, legend, caption)."""
    from matplotlib.text import Text
    return [t for t in figure.findobj(Text) if t.get_text().strip()]


def test_the_charts_are_readable_at_1024_px_and_write_the_headline(authority):
    panel = LatencyPanel(authority, experiment="standard", iterations=3, delay_ms=1, background=False)
    panel.run_button.click()
    bars = panel.figures["bars"]
    assert bars.get_figwidth() <= 10, "fits a 1024 px notebook column at 100 dpi"
    assert min(t.get_fontsize() for t in _texts(bars)) >= 10
    assert min(t.get_fontsize() for t in _texts(panel.figures["ecdf"])) >= 10
    shown = " ".join(t.get_text() for t in _texts(bars))
    assert "two-leg / vanilla" in shown and "× at p50" in shown and "noisy" in shown
    notes = text(panel.footnotes.value)
    assert "process keeps it" in notes and "two token requests" in notes


def test_the_estimate_is_shown_before_a_run_and_follows_the_sliders(authority):
    panel = LatencyPanel(authority, experiment="standard", iterations=10, delay_ms=10)
    first = panel.estimated_seconds()
    assert "Estimated duration" in panel.estimate.value and "noisy" in panel.estimate.value
    panel.iterations.value, panel.delay.value = 200, 100
    assert panel.estimated_seconds() > 10 * first and "min" in text(panel.estimate.value)
    assert "noisy" not in panel.estimate.value


def test_stop_ends_the_run_between_iterations(authority):
    panel = LatencyPanel(authority, experiment="acquirer", iterations=200, delay_ms=20)
    panel.run_button.click()
    assert not panel.stop_button.disabled or panel._thread is not None
    import time
    deadline = time.monotonic() + 20
    while panel.progress.value < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    panel.stop_button.click()
    panel.wait(30)
    assert panel.last_error is None, panel.status.value
    assert panel.result.meta["stopped"] is True
    assert panel.result.summary()["n"].max() < 200
    assert "Stopped early" in text(panel.table.value)
    assert panel.stop_button.disabled and not panel.run_button.disabled
