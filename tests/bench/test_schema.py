"""The bench frames' schema is documented in the module docstring; these tests keep
the documentation, the constants and the frames in step, and check scenario validation."""

from __future__ import annotations

import re

import pytest

from mtlspop_lab import latency as bench
from mtlspop_lab.latency import runner
from mtlspop_lab.cli import bench as bench_cli
from mtlspop_lab.errors import ConfigurationError

_DTYPE_WORDS = {"str": "object", "float": "float64", "int": "int64", "bool": "bool"}


def _documented_columns() -> dict[str, str]:
    """Rows of the docstring's acquisition table: ``name  dtype  meaning``."""
    doc = bench.__doc__
    table = doc.split("``acquisitions``", 1)[1].split("``round_trips``", 1)[0]
    rows = {}
    for line in table.splitlines():
        match = re.match(r"^([a-z_0-9]+)\s+(str|float|int|bool)\s+\S", line)
        if match:
            rows[match.group(1)] = _DTYPE_WORDS[match.group(2)]
    return rows


def test_docstring_table_lists_every_acquisition_column_with_its_dtype():
    documented = _documented_columns()
    assert list(documented) == list(bench.ACQUISITION_COLUMNS)
    assert documented == bench.ACQUISITION_COLUMNS


def test_round_trip_columns_are_documented():
    doc = bench.__doc__.split("``round_trips``", 1)[1]
    own = [c for c in bench.ROUND_TRIP_COLUMNS if c not in bench.ACQUISITION_COLUMNS]
    assert own, "the round-trip frame has columns of its own"
    for column in own:
        assert f"``{column}``" in doc, column


def test_empty_frames_have_the_schema():
    acq = bench.empty_acquisitions()
    rts = bench.empty_round_trips()
    assert list(acq.columns) == list(bench.ACQUISITION_COLUMNS)
    assert {c: str(t) for c, t in acq.dtypes.items()} == bench.ACQUISITION_COLUMNS
    assert {c: str(t) for c, t in rts.dtypes.items()} == bench.ROUND_TRIP_COLUMNS
    assert bench.summarize(acq).empty
    assert list(bench.ratios(acq).columns)[:3] == ["comparison", "numerator", "denominator"]
    assert bench.speedup(acq).empty


@pytest.mark.parametrize("kwargs, word", [
    ({"identity": "robot"}, "identity"), ({"flow": "three_leg"}, "flow"),
    ({"token": "dpop"}, "token"), ({"state": "lukewarm"}, "state"),
    ({"concurrency": 0}, "concurrency"), ({"delay_ms": -1}, "negative"),
    ({"identity": "managed_identity", "region": "westus3"}, "region"),
    ({"state": "cold_mint"}, "managed identity"),
    ({"identity": "managed_identity", "token": "bearer", "state": "cold_mint"}, "PoP"),
    ({"identity": "managed_identity", "state": "cold_mint", "concurrency": 2}, "one thread"),
])
def test_bad_scenarios_raise_configuration_errors_that_say_what_to_do(kwargs, word):
    with pytest.raises(ConfigurationError) as info:
        bench.Scenario(**kwargs)
    assert word in str(info.value)
    assert info.value.fix


def test_scenario_labels_and_delays():
    regional, global_ = bench.region_scenarios(5, 20)
    assert regional.label == "cold vanilla PoP app westus3"
    assert global_.label == "cold vanilla PoP app global"
    assert regional.delay_label == global_.delay_label == "5 ms regional, 20 ms mtls"
    assert regional.delay_for(regional.token_listener()) == 5.0
    assert global_.delay_for(global_.token_listener()) == 20.0
    assert global_.delay_for("imds") == 0.0
    plain = bench.Scenario(delay_ms=20)
    assert plain.delay_label == "20 ms"
    assert plain.delay_for("login") == plain.delay_for("mtls:eastus2") == 20.0
    assert bench.Scenario(state="cache_hit", concurrency=4).label == "cache hit vanilla PoP app x4"


def test_standard_scenarios_are_six_distinct_conditions():
    scenarios = bench.standard_scenarios(20)
    assert len(scenarios) == 6
    assert len({s.label for s in scenarios}) == 6
    assert {s.state for s in scenarios} == {"cold", "warm_connection", "cache_hit"}
    assert all(s.delay_ms == 20 for s in scenarios)


def test_managed_identity_scenarios_set_the_mint_apart_from_cold():
    scenarios = bench.managed_identity_scenarios(20)
    assert [s.state for s in scenarios] == ["cold_mint", "cold", "warm_connection"]
    assert all(s.identity == "managed_identity" and s.token == "pop" and s.delay_ms == 20 for s in scenarios)
    assert scenarios[0].label == "cold mint vanilla PoP MI"
    # two-leg's leg 1 is a PoP token from IMDS v2 even when the final token is Bearer
    assert bench.Scenario(identity="managed_identity", flow="two_leg", token="bearer",
                          state="cold_mint").uses_issued_certificate
    assert "cold_mint" in bench.__doc__ and "cold_mint" in bench.STATES


def test_duplicate_labels_are_made_unique_with_the_delay():
    names = runner._unique_names([bench.Scenario(delay_ms=0), bench.Scenario(delay_ms=20)])
    assert names == ["cold vanilla PoP app @0 ms", "cold vanilla PoP app @20 ms"]
    names = runner._unique_names([bench.Scenario(), bench.Scenario()])
    assert len(set(names)) == 2


def test_run_refuses_bad_arguments_before_starting_anything():
    with pytest.raises(ConfigurationError):
        bench.run([], 10)
    with pytest.raises(ConfigurationError):
        bench.run(bench.Scenario(), 0)


def test_cli_reports_bad_thread_list_as_a_usage_error(capsys):
    code = bench_cli.main(["--suite", "parallel", "--threads", "1,zero", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--threads" in err and "fix:" in err


def test_cli_suites_select_the_scenarios():
    args = bench_cli.build_parser().parse_args(["--suite", "all", "--delay", "7", "--threads", "1,3"])
    scenarios = bench_cli.scenarios_for(args)
    labels = [s.label for s in scenarios]
    assert len(labels) == len(set(labels))
    assert {s.concurrency for s in scenarios} == {1, 3}
    assert any(s.state == "reused" for s in scenarios)
    assert any(s.region == "westus3" for s in scenarios)


def test_cli_handshake_delay_applies_to_every_scenario():
    args = bench_cli.build_parser().parse_args(["--suite", "all", "--handshake-delay"])
    assert all(s.handshake_delay for s in bench_cli.scenarios_for(args))


def test_cli_refuses_unwritable_outputs_before_measuring(tmp_path, capsys):
    assert bench_cli.main(["--plot", str(tmp_path / "missing" / "x.png"), "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert bench_cli.main(["--plot", str(tmp_path / "x.gif"), "--no-progress"]) == 2
    assert "unsupported file type" in capsys.readouterr().err
    assert bench_cli.main(["--out", str(tmp_path / "x.xlsx"), "--no-progress"]) == 2
