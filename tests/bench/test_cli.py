"""``mtlspop-lab bench`` end to end: its own authority, CSV rows and a chart file."""

from __future__ import annotations

import pandas as pd

from mtlspop_lab import cli
from mtlspop_lab import latency as bench


def test_bench_verb_writes_csv_and_plot(tmp_path, capsys):
    out, plot = tmp_path / "results.csv", tmp_path / "latency.png"
    code = cli.main(["bench", "--iterations", "2", "--delay", "1", "--out", str(out), "--plot", str(plot),
                     "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "target: embedded authority" in printed
    assert "p50_ms" in printed and "two-leg / vanilla" in printed and "cache hit / cold" in printed
    rows = pd.read_csv(out)
    assert list(rows.columns) == list(bench.ACQUISITION_COLUMNS)
    assert (rows["outcome"] == "ok").all()
    assert set(rows["delay"]) == {"1 ms"}
    assert rows.loc[~rows["warmup"]].groupby("scenario").size().tolist() == [2] * 6
    round_trips = pd.read_csv(tmp_path / "results-round-trips.csv")
    assert list(round_trips.columns) == list(bench.ROUND_TRIP_COLUMNS)
    assert len(round_trips) == rows["round_trips"].sum()
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_managed_identity_suite_measures_mint_cold_and_warm(tmp_path, capsys):
    out = tmp_path / "mi.csv"
    code = cli.main(["bench", "--suite", "managed_identity", "--iterations", "2", "--delay", "0",
                     "--out", str(out), "--no-progress"])
    assert code == 0 and "certificate mint / cold" in capsys.readouterr().out
    rows = pd.read_csv(out)
    measured = rows.loc[~rows["warmup"]]
    assert set(measured["state"]) == {"cold_mint", "cold", "warm_connection"}
    assert (measured["identity"] == "managed_identity").all() and (measured["outcome"] == "ok").all()
    # a mint is three round trips (platform metadata, issuecredential, token); cold is the token alone
    by_state = measured.groupby("state")["round_trips"].max().to_dict()
    assert by_state["cold_mint"] == 3 and by_state["cold"] == 1
