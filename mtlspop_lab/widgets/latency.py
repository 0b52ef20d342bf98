"""LatencyPanel: run a latency experiment on the embedded authority and read the numbers.

A thin view over :func:`mtlspop_lab.latency.run`, :mod:`mtlspop_lab.latency.charts` and
:mod:`mtlspop_lab.latency.explain`: choose an experiment (the guide's claims: vanilla vs
two-leg and cache hits, regional vs global, acquirer reuse, parallel acquisitions), the
iterations, the delay injected per round trip, the region and the concurrency. Before Run
the panel says how long the run should take; during it a progress bar and a Stop button
(the run stops between iterations and shows what it measured); after it the percentile
table (small ``n`` marked noisy), the ratios measured side by side, a p50/p90 bar chart
with the headline ratio (the ECDF as a second view) and a footnote per scenario mechanism.

The measurement runs in a background thread so that the kernel still hears the Stop
button (a click is a message the kernel handles only when it is not busy). Tests call
:meth:`LatencyPanel.wait`.
"""

from __future__ import annotations

import base64
import threading

import ipywidgets as widgets

from .. import _html, latency as latency_lab
from ..errors import ConfigurationError
from ..latency import charts, explain as latency_explain
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
    data = [[row["scenario"],
             _html.Raw(_html.esc(int(row["n"])) + (" " + _html.badge("noisy", "warn")
                                                    if latency_explain.is_noisy(row["n"]) else "")),
             int(row["n_failed"]), f"{row['p50_ms']:.1f}", f"{row['p90_ms']:.1f}",
             f"{row['p99_ms']:.1f}", f"{row['round_trips_p50']:.0f}", row["delay"]]
            for _, row in summary.iterrows()]
    noisy = any(latency_explain.is_noisy(n) for n in summary["n"])
    note = (f"<div style='font-size:12px'>⚠ noisy: fewer than {latency_explain.NOISY_BELOW} acquisitions per "
            "scenario; a p90 from so few samples is noise. Quote numbers from 30 or more.</div>" if noisy else "")
    stopped = (f"<div style='font-size:12px'><b>Stopped early:</b> {int(summary['n'].min())}-{int(summary['n'].max())} "
               "acquisitions per scenario were measured.</div>" if result.meta.get("stopped") else "")
    return ("<div class='mtlspop-percentiles'><b>Time per acquisition (ms)</b>"
            + _html.table(["Scenario", "n", "failed", "p50", "p90", "p99", "round trips", "injected delay"], data)
            + note + stopped + "</div>")


def headline(result: latency_lab.BenchResult) -> str:
    """The first ratio measured side by side, in words: 'two-leg / vanilla: 1.93× at p50'."""
    ratios = result.ratios()
    if not len(ratios):
        return ""
    row = ratios.iloc[0]
    return f"{row['comparison']}: {row['ratio_p50']:.2f}× at p50 (measured side by side)"


def footnote_html(scenarios) -> str:
    notes = latency_explain.footnotes(scenarios)
    if not notes:
        return ""
    items = "".join(f"<li>{_html.esc(n)}</li>" for n in notes)
    return (f"<div class='mtlspop-footnotes' style='font-size:12px;color:{_html.MUTED}'><b>What the scenario "
            f"names mean</b><ul style='margin:2px 0 0 18px;padding:0'>{items}</ul></div>")


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


BARS, ECDF = "bars", "ecdf"


class LatencyPanel(Panel):
    """Experiment, iterations, delay, region, concurrency -> estimate, percentiles, ratios, charts; Stop."""

    title = "Latency lab"
    intro = ("Each acquisition runs for real against the local authority, with the chosen delay "
             "added per round trip to stand in for the network. Numbers are per acquisition.")

    def __init__(self, authority, *, experiment: str = "standard", iterations: int = 20, delay_ms: int = 20,
                 background: bool = True):
        self.authority = authority
        self.background = background
        regions = list(authority.regional_urls) or ["westus3"]
        self.experiment = widgets.Dropdown(options=[(label, key) for key, label in EXPERIMENTS.items()],
                                           value=experiment, layout=widgets.Layout(width="420px"))
        self.iterations = widgets.IntSlider(value=iterations, min=1, max=200, step=1,
                                            layout=widgets.Layout(width="360px"))
        self.delay = widgets.IntSlider(value=delay_ms, min=0, max=100, step=1,
                                       layout=widgets.Layout(width="360px"))
        self.region = widgets.Dropdown(options=regions, value=regions[0], layout=widgets.Layout(width="200px"))
        self.concurrency = widgets.IntSlider(value=4, min=1, max=16, step=1, layout=widgets.Layout(width="360px"))
        self.estimate = widgets.HTML()
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True,
                                          tooltip="Stop after the acquisitions under way")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="300px",
                                                                                          visibility="hidden"))
        self.progress_label = widgets.HTML()
        self.table = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.ratios = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.view = widgets.ToggleButtons(options=[("p50 / p90 bars", BARS), ("ECDF (whole distribution)", ECDF)],
                                          value=BARS, style={"button_width": "200px"},
                                          layout=widgets.Layout(display="none"))
        self.chart = widgets.Output(layout=widgets.Layout(width="100%"))
        self.footnotes = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.result: latency_lab.BenchResult | None = None
        self.figures: dict = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__([labelled("Experiment", self.experiment), labelled("Iterations", self.iterations),
                          labelled("Delay per round trip (ms)", self.delay, width="190px"),
                          labelled("Region", self.region), labelled("Concurrency (threads)", self.concurrency,
                                                                    width="190px"),
                          self.estimate,
                          widgets.HBox([self.run_button, self.stop_button, self.progress, self.progress_label],
                                       layout=widgets.Layout(align_items="center", flex_flow="row wrap"))],
                         [self.table, self.ratios, self.view, self.chart, self.footnotes])
        self.run_button.on_click(self._on_run)
        self.stop_button.on_click(lambda _b: self.stop())
        self.view.observe(lambda _c: self._show_view(), names="value")
        self.experiment.observe(self._relevant_controls, names="value")
        for control in (self.experiment, self.iterations, self.delay, self.concurrency):
            control.observe(lambda _c: self._update_estimate(), names="value")
        self._relevant_controls()
        self._update_estimate()

    @property
    def buttons(self) -> list[widgets.Button]:
        """Run is disabled while measuring; Stop must stay usable."""
        return [b for b in super().buttons if b is not self.stop_button]

    def _relevant_controls(self, _change=None) -> None:
        """Region and concurrency only matter to one experiment each: grey them out elsewhere."""
        self.region.disabled = self.experiment.value != "region"
        self.concurrency.disabled = self.experiment.value != "parallel"

    def scenarios(self) -> list[latency_lab.Scenario]:
        return scenarios_for(self.experiment.value, delay_ms=float(self.delay.value),
                             region=self.region.value, concurrency=int(self.concurrency.value))

    def estimated_seconds(self) -> float:
        return latency_explain.estimate_seconds(self.scenarios(), int(self.iterations.value))

    def _update_estimate(self) -> None:
        try:
            seconds = self.estimated_seconds()
        except Exception:   # e.g. one thread for the parallel experiment: Run will say why
            self.estimate.value = ""
            return
        n = int(self.iterations.value)
        noisy = (f" · n = {n} per scenario is small: results will be marked noisy"
                 if latency_explain.is_noisy(n) else "")
        self.estimate.value = (f"<div class='mtlspop-estimate' style='font-size:13px'>Estimated duration: "
                               f"<b>{_html.esc(latency_explain.estimate_text(seconds))}</b>{_html.esc(noisy)}</div>")

    # -- running ------------------------------------------------------------------------------
    def _report(self, done: int, total: int, scenario: str) -> None:
        self.progress.max, self.progress.value = max(1, total), min(done, total)
        self.progress_label.value = _html.esc(f"{done}/{total} {scenario}")

    def measure(self) -> latency_lab.BenchResult:
        """What Run does: the chosen experiment, run by the latency lab (stoppable)."""
        check_open(self.authority)
        scenarios = self.scenarios()
        return latency_lab.run(scenarios, iterations=int(self.iterations.value), authority=self.authority,
                               warmup=1, progress=self._report, stop=self._stop)

    def stop(self) -> None:
        """Ask the run to stop between iterations; it then shows what it measured."""
        self._stop.set()
        self.stop_button.disabled = True
        self.progress_label.value = _html.esc("stopping after the acquisitions under way…")

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background run has finished (tests, scripts)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _on_run(self, _button=None) -> None:
        if self.busy or (self._thread is not None and self._thread.is_alive()):
            return
        self.table.value = self.ratios.value = self.footnotes.value = ""
        self.chart.outputs = ()
        self.view.layout.display = "none"
        self.result, self.figures = None, {}
        self._stop.clear()
        if self.background:
            self._thread = threading.Thread(target=self._measure_and_show, name="mtlspop-latency-panel",
                                            daemon=True)
            self._thread.start()
        else:
            self._measure_and_show()

    def _measure_and_show(self) -> None:
        self.stop_button.disabled = False
        self.progress.layout.visibility = "visible"
        try:
            result = self.run(self.measure, busy="Measuring… (progress beside the Run button; Stop ends it "
                                                 "between iterations)")
        finally:
            self.stop_button.disabled = True
            self.progress.layout.visibility = "hidden"
            self.progress_label.value = ""
        if result is None:
            return
        self.result = result
        self.table.value = percentile_table(result)
        self.ratios.value = ratio_table(result)
        self.footnotes.value = footnote_html(self.scenarios())
        measured = result.acquisitions[~result.acquisitions["warmup"].astype(bool)]
        if not len(measured):
            return
        self.figures = {
            BARS: charts.percentile_bars(result.acquisitions, headline=headline(result),
                                         noisy_below=latency_explain.NOISY_BELOW,
                                         title=EXPERIMENTS[self.experiment.value]),
            ECDF: charts.ecdf(result.acquisitions, title=EXPERIMENTS[self.experiment.value] + " (ECDF)"),
        }
        self.view.layout.display = ""
        self._show_view()

    def _show_view(self) -> None:
        figure = self.figures.get(self.view.value)
        if figure is not None:
            figure_output(self.chart, figure)
