"""LatencyPanel: run a latency experiment on the embedded authority and read the numbers.

A thin view over :func:`mtlspop_lab.latency.run` and :mod:`mtlspop_lab.latency.charts`:
choose an experiment (the guide's claims: vanilla vs two-leg and cache hits,
regional vs global, acquirer reuse, parallel acquisitions), the iterations,
the delay injected per round trip, the region and the concurrency; Run shows
the latency lab's progress bar, then the percentile table (with ``n``), the
ratios it measured side by side, and the charts (which state the delay).
"""

from __future__ import annotations

import base64

import ipywidgets as widgets

from .. import _html, latency as latency_lab
from ..errors import ConfigurationError
from ..latency import charts
from ._base import Panel, labelled
from .flow import check_open

EXPERIMENTS = {
    "standard": "Vanilla vs two-leg, cache hit, warm connection, Bearer, MI",
    "region": "Regional vs global mTLS endpoint",
    "acquirer": "Reuse the acquirer vs create one per call",
    "parallel": "Parallel acquisitions (1, 2, 4… threads)",
}


def scenarios_for(experiment: str, *, delay_ms: float, region: str, concurrency: int) -> list[latency_lab.Scenario]:
    """The latency lab's scenarios for one panel experiment."""
    if experiment == "standard":
        return latency_lab.standard_scenarios(delay_ms)
    if experiment == "region":
        return latency_lab.region_scenarios(regional_ms=max(delay_ms / 4, 1.0), global_ms=delay_ms, region=region)
    if experiment == "acquirer":
        return latency_lab.acquirer_scenarios(delay_ms)
    if experiment == "parallel":
        threads = [k for k in (1, 2, 4, 8, 16) if k <= concurrency] + (
            [concurrency] if concurrency not in (1, 2, 4, 8, 16) else [])
        if len(threads) < 2:
            raise ConfigurationError("A speed-up needs at least two thread counts.",
                                     fix="Set concurrency to 2 or more.", code="concurrency_too_low")
        return latency_lab.parallel_scenarios(delay_ms, threads=sorted(set(threads)))
    raise ConfigurationError(f"Unknown experiment {experiment!r}.", fix=f"Use one of: {', '.join(EXPERIMENTS)}.")


def percentile_table(result: latency_lab.BenchResult) -> str:
    summary = result.summary()
    data = [[row["scenario"], int(row["n"]), int(row["n_failed"]), f"{row['p50_ms']:.1f}", f"{row['p90_ms']:.1f}",
             f"{row['p99_ms']:.1f}", f"{row['round_trips_p50']:.0f}", row["delay"]]
            for _, row in summary.iterrows()]
    return ("<div class='mtlspop-percentiles'><b>Time per acquisition (ms)</b>"
            + _html.table(["Scenario", "n", "failed", "p50", "p90", "p99", "round trips", "injected delay"], data)
            + "</div>")


def ratio_table(result: latency_lab.BenchResult) -> str:
    frames = []
    ratios = result.ratios()
    if len(ratios):
        frames.append("<b>Measured side by side (p50 ratio)</b>" + _html.table(
            ["Comparison", "Numerator", "Denominator", "Ratio", "Difference (ms)"],
            [[r["comparison"], r["numerator"], r["denominator"], f"{r['ratio_p50']:.2f}×",
              f"{r['diff_p50_ms']:+.1f}"] for _, r in ratios.iterrows()]))
    speedup = result.speedup()
    if len(speedup):
        frames.append("<b>Parallel speed-up</b>" + _html.table(
            ["Threads", "n", "Throughput (/s)", "Speed-up", "p50 (ms)"],
            [[int(r["concurrency"]), int(r["n"]), f"{r['throughput_per_s']:.1f}", f"{r['speedup']:.2f}×",
              f"{r['p50_ms']:.1f}"] for _, r in speedup.iterrows()]))
    return "<div class='mtlspop-ratios'>" + "".join(frames) + "</div>" if frames else ""


def figure_output(output: widgets.Output, figure) -> None:
    """Put a matplotlib figure into an Output widget as a PNG (no pyplot, no kernel needed)."""
    png = figure._repr_png_() if hasattr(figure, "_repr_png_") else None
    if png is None:
        import io
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        png = buffer.getvalue()
    output.outputs = ({"output_type": "display_data", "metadata": {},
                       "data": {"image/png": base64.b64encode(png).decode("ascii"),
                                "text/plain": "<latency charts>"}},)


class LatencyPanel(Panel):
    """Experiment, iterations, delay, region, concurrency -> percentiles, ratios, charts."""

    title = "Latency lab"
    intro = ("Each acquisition runs for real against the local authority, with the chosen delay "
             "added per round trip to stand in for the network. Numbers are per acquisition.")

    def __init__(self, authority, *, experiment: str = "standard", iterations: int = 20, delay_ms: int = 20):
        self.authority = authority
        regions = list(authority.regional_urls) or ["westus3"]
        self.experiment = widgets.Dropdown(options=[(label, key) for key, label in EXPERIMENTS.items()],
                                           value=experiment, layout=widgets.Layout(width="420px"))
        self.iterations = widgets.IntSlider(value=iterations, min=1, max=200, step=1,
                                            layout=widgets.Layout(width="360px"))
        self.delay = widgets.IntSlider(value=delay_ms, min=0, max=100, step=1,
                                       layout=widgets.Layout(width="360px"))
        self.region = widgets.Dropdown(options=regions, value=regions[0], layout=widgets.Layout(width="200px"))
        self.concurrency = widgets.IntSlider(value=4, min=1, max=16, step=1, layout=widgets.Layout(width="360px"))
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.progress_out = widgets.Output(layout=widgets.Layout(width="100%"))
        self.table = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.ratios = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.chart = widgets.Output(layout=widgets.Layout(width="100%"))
        self.result: latency_lab.BenchResult | None = None
        super().__init__([labelled("Experiment", self.experiment), labelled("Iterations", self.iterations),
                          labelled("Delay per round trip (ms)", self.delay, width="190px"),
                          labelled("Region", self.region), labelled("Concurrency (threads)", self.concurrency,
                                                                    width="190px"),
                          self.run_button, self.progress_out],
                         [self.table, self.ratios, self.chart])
        self.run_button.on_click(self._on_run)
        self.experiment.observe(self._relevant_controls, names="value")
        self._relevant_controls()

    def _relevant_controls(self, _change=None) -> None:
        """Region and concurrency only matter to one experiment each: grey them out elsewhere."""
        self.region.disabled = self.experiment.value != "region"
        self.concurrency.disabled = self.experiment.value != "parallel"

    def measure(self) -> latency_lab.BenchResult:
        """What Run does: the chosen experiment, run by the latency lab."""
        check_open(self.authority)
        scenarios = scenarios_for(self.experiment.value, delay_ms=float(self.delay.value),
                                  region=self.region.value, concurrency=int(self.concurrency.value))
        self.progress_out.outputs = ()
        with self.progress_out:   # in a notebook, the latency lab's tqdm bar lands here
            return latency_lab.run(scenarios, iterations=int(self.iterations.value), authority=self.authority,
                             warmup=1, progress=True)

    def _on_run(self, _button=None) -> None:
        self.table.value = self.ratios.value = ""
        self.chart.outputs = ()
        result = self.run(self.measure, busy="Measuring… (the bar below shows progress)")
        if result is None:
            return
        self.result = result
        self.table.value = percentile_table(result)
        self.ratios.value = ratio_table(result)
        figure = charts.dashboard(result.acquisitions, result.round_trips,
                                  title=EXPERIMENTS[self.experiment.value])
        figure_output(self.chart, figure)
