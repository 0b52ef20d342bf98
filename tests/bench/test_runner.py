"""The runner against the embedded authority: frames, structural facts, summaries.

No timing thresholds: every assertion is about structure (counts, labels, which
rows exist, what sums to what) or a bound physics guarantees (a round trip the
server delayed by d ms cannot take less than d ms on the client's clock).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtlspop_lab import latency as bench
from mtlspop_lab.latency import runner
from mtlspop_lab.redact import contains_secret

def _rows(result, **labels):
    acq = result.acquisitions
    mask = ~acq["warmup"]
    for column, value in labels.items():
        mask &= acq[column] == value
    return acq[mask]


def test_frames_follow_the_schema(result):
    assert {c: str(t) for c, t in result.acquisitions.dtypes.items()} == bench.ACQUISITION_COLUMNS
    assert {c: str(t) for c, t in result.round_trips.dtypes.items()} == bench.ROUND_TRIP_COLUMNS
    assert result.meta["target"] == "embedded authority"
    assert set(result.acquisitions["target"]) == {"embedded authority"}
    assert result.acquisitions["run_id"].nunique() == 1


def test_every_iteration_is_a_row(result, plan):
    acq = result.acquisitions
    names = runner._unique_names(plan.scenarios)
    assert list(dict.fromkeys(acq["scenario"])) == names
    for name in names:
        rows = acq[acq["scenario"] == name]
        assert sorted(rows.loc[~rows["warmup"], "iteration"]) == list(range(plan.n))
        assert (rows["warmup"] & (rows["iteration"] >= 0)).sum() == 0
        assert rows["warmup"].sum() >= 1
    assert (acq["outcome"] == "ok").all(), acq.loc[acq["outcome"] != "ok", ["scenario", "outcome", "error_code"]]


def test_round_trip_rows_add_up_to_their_acquisition(result):
    acq, rts = result.acquisitions, result.round_trips
    keys = ["scenario", "iteration", "thread", "warmup"]
    grouped = rts.groupby(keys).agg(count=("rt_index", "size"), elapsed=("elapsed_ms", "sum"),
                                    injected=("injected_delay_ms", "sum"),
                                    new=("new_connection", "sum"))
    joined = acq.set_index(keys).join(grouped, how="left").fillna({"count": 0, "elapsed": 0.0,
                                                                  "injected": 0.0, "new": 0})
    assert (joined["count"] == joined["round_trips"]).all()
    assert (joined["new"] == joined["new_connections"]).all()
    assert np.allclose(joined["elapsed"], joined["http_ms"])
    assert np.allclose(joined["injected"], joined["injected_ms"])
    assert np.allclose(acq["total_ms"], acq["setup_ms"] + acq["acquire_ms"])
    assert np.allclose(acq["client_ms"], acq["total_ms"] - acq["http_ms"])
    assert (acq["http_ms"] <= acq["total_ms"] + 1e-6).all()


def test_the_authority_saw_exactly_the_recorded_round_trips(measured):
    result, trace = measured
    assert len(trace) == len(result.round_trips)
    seen = pd.Series([entry.listener for entry in trace]).value_counts().sort_index()
    recorded = result.round_trips["listener"].value_counts().sort_index()
    assert seen.to_dict() == recorded.to_dict()
    # the delay the frames say was injected is the delay the server says it injected
    server = sum(entry.injected_delay_ms for entry in trace)
    assert server == pytest.approx(result.round_trips["injected_delay_ms"].sum())


def test_cache_hits_make_no_round_trip_and_cold_acquisitions_open_connections(result, plan):
    hits = _rows(result, state="cache_hit")
    assert len(hits) == plan.n
    assert (hits["round_trips"] == 0).all() and (hits["source"] == "cache").all()
    assert (hits["http_ms"] == 0).all()
    cold = _rows(result, state="cold", concurrency=1)
    assert (cold["source"] == "identity_provider").all()
    assert (cold["round_trips"] >= 1).all() and (cold["new_connections"] >= 1).all()
    assert (cold["setup_ms"] > 0).all()


def test_warm_connection_goes_to_the_identity_provider_over_a_reused_connection(result):
    warm = _rows(result, state="warm_connection")
    assert (warm["source"] == "identity_provider").all()
    assert (warm["round_trips"] >= 1).all()
    assert (warm["new_connections"] == 0).all()
    assert (warm["setup_ms"] == 0).all()


def test_reused_acquirer_pays_once_then_hits_the_cache(result, plan):
    reused = _rows(result, state="reused").sort_values("iteration")
    assert list(reused["source"]) == ["identity_provider"] + ["cache"] * (plan.n - 1)
    assert reused["setup_ms"].iloc[0] > 0 and (reused["setup_ms"].iloc[1:] == 0).all()


def test_two_leg_makes_both_legs_and_more_token_requests_than_vanilla(result):
    rts = result.round_trips[~result.round_trips["warmup"]]
    two_leg = rts[(rts["flow"] == "two_leg") & (rts["state"] == "cold") & (rts["token"] == "pop")]
    vanilla = rts[(rts["flow"] == "vanilla") & (rts["state"] == "cold") & (rts["identity"] == "confidential_client")
                  & (rts["token"] == "pop") & (rts["region"] == "global") & (rts["concurrency"] == 1)
                  & (rts["delay"] == "0 ms")]
    assert set(two_leg["leg"]) >= {"leg1", "leg2"}
    per_acq = lambda frame: frame[frame["step"].str.endswith("token")].groupby("iteration").size()  # noqa: E731
    assert (per_acq(two_leg) == 2 * per_acq(vanilla)).all()


def test_token_types_follow_the_request(result):
    ok = result.acquisitions[result.acquisitions["outcome"] == "ok"]
    assert (ok.loc[ok["token"] == "pop", "token_type"] == "mtls_pop").all()
    assert (ok.loc[ok["token"] == "bearer", "token_type"] == "Bearer").all()


def _steps_per_acquisition(result, **labels) -> list[list[str]]:
    rts = result.round_trips[~result.round_trips["warmup"]]
    for column, value in labels.items():
        rts = rts[rts[column] == value]
    return rts.sort_values("rt_index").groupby("iteration", sort=True)["step"].apply(list).tolist()


def test_cold_managed_identity_reuses_its_certificate_over_a_new_connection(result, plan):
    """cold = new acquirer + new TLS connection; the process-wide IMDS v2 certificate is kept."""
    steps = _steps_per_acquisition(result, identity="managed_identity", state="cold")
    assert steps == [["token: token"]] * plan.n                      # no getplatformmetadata, no issuecredential
    cold = _rows(result, identity="managed_identity", state="cold")
    assert (cold["round_trips"] == 1).all() and (cold["new_connections"] == 1).all()
    assert (cold["tls_handshake_ms"] > 0).all()
    rts = result.round_trips
    cold_rts = rts[(rts["identity"] == "managed_identity") & (rts["state"] == "cold") & ~rts["warmup"]]
    assert cold_rts["listener"].str.startswith("mtls").all() and (cold_rts["status"] == 200).all()


def test_cold_mint_managed_identity_mints_once_per_acquisition_through_imds(result, plan):
    steps = _steps_per_acquisition(result, identity="managed_identity", state="cold_mint")
    assert steps == [["token: getplatformmetadata", "token: issuecredential", "token: token"]] * plan.n
    rts = result.round_trips
    mint = rts[(rts["state"] == "cold_mint") & ~rts["warmup"]]
    listeners = mint["listener"].where(mint["listener"] == "imds", "mtls")   # IMDS names a regional one
    assert listeners.value_counts().sort_index().to_dict() == {"imds": 2 * plan.n, "mtls": plan.n}
    assert (mint["status"] == 200).all()
    mint_rows = _rows(result, state="cold_mint")
    assert (mint_rows["outcome"] == "ok").all() and (mint_rows["source"] == "identity_provider").all()


def test_injected_delays_are_labelled_per_listener_and_really_applied(result, plan):
    rts = result.round_trips
    # token requests go to the mTLS hosts; discovery stays on the login host (MSAL's PoP rule)
    rts = rts[rts["method"] == "POST"]
    regional = rts[rts["delay"] == f"{plan.regional_ms:g} ms regional, {plan.global_ms:g} ms mtls"]
    assert set(regional.loc[regional["region"] == "westus3", "listener"]) == {"mtls:westus3"}
    assert set(regional.loc[regional["region"] == "global", "listener"]) == {"mtls"}
    assert (regional.loc[regional["listener"] == "mtls:westus3", "injected_delay_ms"] == plan.regional_ms).all()
    assert (regional.loc[regional["listener"] == "mtls", "injected_delay_ms"] == plan.global_ms).all()
    # the server slept that long before answering: no round trip can be quicker on the client's clock
    assert (regional["elapsed_ms"] >= regional["injected_delay_ms"]).all()
    acq = result.acquisitions
    assert set(acq.loc[acq["region"] == "westus3", "delay_ms"]) == {plan.regional_ms}
    assert set(acq.loc[(acq["delay"] == "0 ms"), "injected_ms"]) == {0.0}


def test_summary_percentiles_are_those_of_the_rows(result, plan):
    summary = result.summary().set_index("scenario")
    for name, rows in result.acquisitions.groupby("scenario"):
        ok = rows[(rows["outcome"] == "ok") & ~rows["warmup"]]["total_ms"].to_numpy()
        assert summary.loc[name, "n"] == len(ok) == plan.n
        assert summary.loc[name, "n_failed"] == 0
        for q in (50, 90, 99):
            assert summary.loc[name, f"p{q}_ms"] == pytest.approx(np.percentile(ok, q))
        assert summary.loc[name, "p50_ms"] <= summary.loc[name, "p90_ms"] <= summary.loc[name, "p99_ms"]


def test_ratios_pair_scenarios_that_differ_in_one_label(result):
    table = result.ratios()
    summary = result.summary().set_index("scenario")
    comparisons = set(table["comparison"])
    assert {"two-leg / vanilla", "cache hit / cold", "warm connection / cold",
            "acquirer reused / re-created", "westus3 / global", "PoP / Bearer",
            "managed identity / app", "certificate mint / cold"} <= comparisons
    for _, row in table.iterrows():
        num, den = summary.loc[row["numerator"]], summary.loc[row["denominator"]]
        assert row["ratio_p50"] == pytest.approx(num["p50_ms"] / den["p50_ms"])
        assert row["diff_p50_ms"] == pytest.approx(num["p50_ms"] - den["p50_ms"])
        differing = [c for c in bench.LABEL_COLUMNS if num[c] != den[c]]
        assert len(differing) == 1
    cold = table[table["comparison"] == "two-leg / vanilla"]
    assert "cold two-leg PoP app" in set(cold["numerator"])
    hit = table[(table["comparison"] == "cache hit / cold")].iloc[0]
    assert hit["denominator"] == "cold vanilla PoP app"
    mint = table[table["comparison"] == "certificate mint / cold"]
    assert list(zip(mint["numerator"], mint["denominator"])) == [("cold mint vanilla PoP MI", "cold vanilla PoP MI")]


def test_speedup_uses_batch_wall_time(result):
    table = result.speedup()
    assert sorted(table["concurrency"]) == [1, 2]
    one = table[table["concurrency"] == 1].iloc[0]
    assert one["speedup"] == pytest.approx(1.0)
    for _, row in table.iterrows():
        assert row["throughput_per_s"] == pytest.approx(row["n"] / row["wall_s"])
    two = _rows(result, concurrency=2)
    assert set(two["thread"]) == {0, 1}
    assert two["batch_wall_ms"].nunique() == 1


def test_frames_and_csv_hold_no_secret(result, tmp_path):
    acq_path, rt_path = result.to_csv(tmp_path / "results.csv")
    for path in (acq_path, rt_path):
        text = open(path, encoding="utf-8").read()
        assert not contains_secret(text)
    again = pd.read_csv(acq_path)
    assert list(again.columns) == list(bench.ACQUISITION_COLUMNS)
    assert len(again) == len(result.acquisitions)


def test_failures_are_recorded_with_their_error_type(fresh_authority):
    fresh_authority.inject_fault("status", count=50, listener="mtls", status=400)
    result = bench.run(bench.Scenario(), 3, authority=fresh_authority, warmup=0, progress=False)
    acq = result.acquisitions
    assert len(acq) == 3
    assert (acq["outcome"] != "ok").all()
    assert acq["outcome"].str.endswith("Error").all()
    assert (acq["source"] == "").all()
    # the round trips of a failed acquisition are kept: the refused token request is there
    assert (acq["round_trips"] >= 1).all()
    refused = result.round_trips[result.round_trips["status"] == 400]
    assert len(refused) == 3 and set(refused["listener"]) == {"mtls"}
    summary = result.summary()
    assert summary.loc[0, "n"] == 0 and summary.loc[0, "n_failed"] == 3
    assert np.isnan(summary.loc[0, "p50_ms"])


def test_progress_bar_can_be_shown_or_not(fresh_authority, capsys):
    bench.run(bench.Scenario(state="cache_hit"), 2, authority=fresh_authority, progress=False)
    assert "acq" not in capsys.readouterr().err
    bench.run(bench.Scenario(state="cache_hit"), 2, authority=fresh_authority, progress=True)
    assert "cache hit vanilla PoP app" in capsys.readouterr().err


def test_single_thread_scenarios_are_interleaved_round_by_round(fresh_authority):
    scenarios = [bench.Scenario(state="cache_hit", delay_ms=1), bench.Scenario(state="warm_connection")]
    result = bench.run(scenarios, 3, authority=fresh_authority, warmup=0, progress=False)
    assert result.meta["interleaved"] is True
    measured = result.acquisitions[~result.acquisitions["warmup"]].sort_values("started_s")
    rounds = measured["iteration"].tolist()
    assert rounds == [0, 0, 1, 1, 2, 2]
    order = measured["scenario"].tolist()
    assert order[0] != order[2]          # the order rotates from one round to the next
    assert measured["batch_wall_ms"].isna().all()
    # each scenario still ran under its own delay, even though they alternated
    rts = result.round_trips[~result.round_trips["warmup"]]
    assert set(rts["injected_delay_ms"]) == {0.0}          # cache hits made none; warm ran at 0 ms
    primes = result.round_trips[result.round_trips["warmup"]]
    assert set(primes.loc[primes["delay"] == "1 ms", "injected_delay_ms"]) == {1.0}
    assert (primes.loc[primes["delay"] == "1 ms", "elapsed_ms"] >= 1.0).all()
    sequential = bench.run(scenarios, 2, authority=fresh_authority, warmup=0, progress=False, interleave=False)
    assert sequential.meta["interleaved"] is False
    assert sequential.acquisitions.loc[~sequential.acquisitions["warmup"], "batch_wall_ms"].notna().all()


def test_handshake_delay_is_paid_once_more_by_new_tls_connections(fresh_authority):
    scenario = bench.Scenario(delay_ms=2, handshake_delay=True)
    assert scenario.delay_label == "2 ms (+1 per new TLS connection)"
    fresh_authority.clear_trace()
    warm = bench.Scenario(delay_ms=2, handshake_delay=True, state="warm_connection")
    result = bench.run([scenario, warm], 2, authority=fresh_authority, warmup=0, progress=False)
    rts = result.round_trips
    assert set(rts.loc[rts["new_connection"], "injected_delay_ms"]) == {4.0}
    assert set(rts.loc[~rts["new_connection"], "injected_delay_ms"]) == {2.0}
    assert (rts["elapsed_ms"] >= rts["injected_delay_ms"]).all()
    trace = fresh_authority.trace
    assert sum(e.injected_delay_ms for e in trace) == pytest.approx(rts["injected_delay_ms"].sum())


def test_identities_without_an_authority_run_where_their_cloud_points(authority):
    """The code path a live target takes (no delay injection, caller's own identities), pointed at
    the embedded authority's endpoints so it runs offline."""
    app = authority.directory.register_app("bench-own-app")
    ids = bench.Identities(app.client_id, app.tenant_id, app.certificate, cloud=authority.cloud)
    authority.set_delay(2)   # set by the caller, not by the run: it must leave it alone
    result = bench.run([bench.Scenario(), bench.Scenario(state="cache_hit")], 2, identities=ids,
                       warmup=0, progress=False)
    acq = result.acquisitions
    assert (acq["outcome"] == "ok").all()
    assert set(acq["target"]) == {"embedded authority"}
    assert authority.delays()["mtls"] == 2.0
    assert set(result.round_trips["injected_delay_ms"]) == {0.0}   # the run injected nothing itself
    rts = result.round_trips
    assert set(rts["listener"]) <= {"login", "mtls"}               # discovery on login, tokens on mTLS
    assert set(rts.loc[rts["method"] == "POST", "listener"]) == {"mtls"}


def test_identities_that_cannot_run_a_scenario_are_refused_before_any_request():
    from mtlspop_lab.certs import Certificate
    from mtlspop_lab.errors import ConfigurationError

    cert = Certificate.create_self_signed("CN=bench-refusal")
    ids = bench.Identities("11111111-2222-3333-4444-555555555555", "contoso.onmicrosoft.com", cert)
    with pytest.raises(ConfigurationError) as info:
        bench.run(bench.Scenario(delay_ms=20), 1, identities=ids, progress=False)
    assert "cannot be injected" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        bench.run(bench.Scenario(flow="two_leg"), 1, identities=ids, progress=False)
    assert "leg2_client_id" in info.value.fix
    with pytest.raises(ConfigurationError) as info:
        bench.run(bench.Scenario(identity="managed_identity"), 1, identities=ids, progress=False)
    assert "managed_identity" in info.value.fix


def test_live_endpoints_are_named_by_msal_host_rule():
    from mtlspop_lab.cloud import Cloud

    listener_of = runner._listener_map(Cloud.public())
    assert listener_of("https://login.microsoftonline.com/t/oauth2/v2.0/token") == "login"
    assert listener_of("https://mtlsauth.microsoft.com/t/oauth2/v2.0/token") == "mtls"
    assert listener_of("https://westus3.mtlsauth.microsoft.com/t/oauth2/v2.0/token") == "mtls:westus3"
    assert listener_of("http://169.254.169.254/metadata/identity/getplatformmetadata") == "imds"
    assert listener_of("https://graph.microsoft.com/v1.0/me") == "other"


def test_managed_identity_mint_cold_and_warm_states(fresh_authority):
    fresh_authority.clear_trace()
    result = bench.run(bench.managed_identity_scenarios(0), 2, authority=fresh_authority, warmup=0,
                       progress=False)
    assert result.meta["interleaved"] is False        # interleaving would make the warm one cold
    assert (result.acquisitions["outcome"] == "ok").all()
    mint = _steps_per_acquisition(result, state="cold_mint")
    assert mint == [["token: getplatformmetadata", "token: issuecredential", "token: token"]] * 2
    assert _steps_per_acquisition(result, state="cold") == [["token: token"]] * 2
    rts = result.round_trips[~result.round_trips["warmup"]]
    assert rts.loc[rts["state"] == "cold", "new_connection"].all()
    warm = rts[rts["state"] == "warm_connection"]
    assert list(warm["step"]) == ["token: token"] * 2 and not warm["new_connection"].any()
    # the cold scenario's priming acquisition (warmup=True, no warm-ups asked) found the certificate
    # the mint left, so the run minted exactly twice: the server agrees
    primes = result.acquisitions[result.acquisitions["warmup"]]
    assert sorted(primes["state"]) == ["cold", "warm_connection"]
    issued = [e for e in fresh_authority.trace if e.path.split("?")[0].endswith("/issuecredential")]
    assert len(issued) == 2


def test_a_cold_managed_identity_scenario_never_measures_a_mint(fresh_authority):
    from mtlspop_lab.flows import forget_issued_certificates

    forget_issued_certificates()       # as in a fresh process: the priming acquisition mints
    result = bench.run(bench.Scenario(identity="managed_identity"), 2, authority=fresh_authority,
                       warmup=0, progress=False)
    prime = result.round_trips[result.round_trips["warmup"]]
    assert list(prime["step"]) == ["token: getplatformmetadata", "token: issuecredential", "token: token"]
    assert _steps_per_acquisition(result) == [["token: token"]] * 2


def test_parallel_cold_managed_identity_threads_share_the_certificate_without_minting(fresh_authority):
    result = bench.run(bench.Scenario(identity="managed_identity", concurrency=3), 6,
                       authority=fresh_authority, warmup=0, progress=False)
    acq = result.acquisitions
    assert (acq["outcome"] == "ok").all(), acq["outcome"].tolist()
    rts = result.round_trips
    measured = rts[~rts["warmup"]]
    assert not measured["step"].isin(["token: getplatformmetadata", "token: issuecredential"]).any()
    assert list(measured["step"]) == ["token: token"] * 6
    # the connections are closed once, before the batch: the first token request opens one
    assert measured["new_connection"].any()
