"""Forecasting: baselines and metrics on toy data, the train/forecast commands, bad input.

CLI tests run the real commands on a tiny user file (a few seconds); bad input must give one
line on stderr and exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from _helpers import invoke, one_line_error, write_series_csv

from rnnkit.data.series import detect_period
from rnnkit.models.classical import (
    ar_forecast,
    auto_arima,
    auto_ets,
    fit_ar,
    max_ar_lag,
    persistence,
    seasonal_naive,
    state_space_forecasts,
)
from rnnkit.models.forecaster import MemberAverage, conformal_minimum, truth_matrix
from rnnkit.tasks import forecast
from rnnkit.tasks.metrics import mase_scale, metrics
from rnnkit.tasks.options import OptionError

# ---- baselines and metrics on toy data ---------------------------------------------------


def test_persistence_and_seasonal_naive():
    y = np.arange(20, dtype=float)
    o = np.array([9, 10])
    assert persistence(y, o, 3).tolist() == [[9, 9, 9], [10, 10, 10]]
    # m = 4: y[o+h-4·ceil(h/4)]
    assert seasonal_naive(y, o, 5, 4).tolist() == [[6, 7, 8, 9, 6], [7, 8, 9, 10, 7]]
    truth = truth_matrix(y, o, 3, n_end=12)
    assert truth[0, :2].tolist() == [10, 11] and np.isnan(truth[0, 2])
    assert truth[1, 0] == 11 and np.isnan(truth[1, 1:]).all()


def test_ar_recovers_a_known_process_and_forecasts_recursively():
    rng = np.random.default_rng(0)
    y = np.zeros(600)
    for t in range(2, 600):
        y[t] = 1.0 + 0.6 * y[t - 1] - 0.3 * y[t - 2] + 0.1 * rng.normal()
    params, p = fit_ar(y, max_lag=4)
    assert p == 2
    np.testing.assert_allclose(params, [1.0, 0.6, -0.3], atol=0.05)
    f = ar_forecast(np.array([1.0, 0.5, 0.2]), np.array([0.0, 1.0, 2.0]), np.array([2]), 2)
    step1 = 1.0 + 0.5 * 2.0 + 0.2 * 1.0
    np.testing.assert_allclose(f, [[step1, 1.0 + 0.5 * step1 + 0.2 * 2.0]])


def test_the_ar_reaches_one_season():
    assert [max_ar_lag(221, 11), max_ar_lag(7007, 24), max_ar_lag(80), max_ar_lag(100, 52)] == [
        20, 25, 16, 20]  # fmt: skip
    rng = np.random.default_rng(0)  # a season of 24 steps and nothing else: y[t] = 0.8 y[t-24]
    y = rng.normal(size=300)
    for t in range(24, 300):
        y[t] += 0.8 * y[t - 24]
    assert fit_ar(y)[1] < 24 <= fit_ar(y, period=24)[1]


def test_metrics_and_mase():
    train = np.array([0.0, 2.0, 0.0, 2.0])
    assert mase_scale(train) == 2.0
    m = metrics(np.array([[1.0], [3.0]]), np.array([[2.0], [1.0]]), 2.0)[0]
    assert (m["mae"], m["mse"], m["mase"], m["n"]) == (1.5, 2.5, 0.75, 2)
    assert m["rmse"] == pytest.approx(2.5**0.5)


def test_period_detection_finds_the_season_and_refuses_noise():
    rng = np.random.default_rng(1)
    t = np.arange(400)
    assert detect_period(0.02 * t + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, 400)) == 12
    assert detect_period(np.cumsum(rng.normal(size=400))) is None  # a random walk: no season
    assert detect_period(rng.normal(size=300)) is None
    # the size cap: only the last max_points are read
    assert detect_period(np.r_[rng.normal(size=5000), np.sin(2 * np.pi * t / 7)], 400) == 7


def test_auto_baselines_forecast_every_origin_like_a_refit_filter():
    rng = np.random.default_rng(2)
    y = np.zeros(150)
    for i in range(1, 150):
        y[i] = 0.7 * y[i - 1] + rng.normal()
    origins = np.array([119, 130, 148])
    for fitter in (auto_arima, auto_ets):
        res, name = fitter(y[:120])
        assert name.startswith(("AutoARIMA(", "AutoETS("))
        f = state_space_forecasts(res, y, origins, 3)
        for i, o in enumerate(origins):  # the one-pass filter equals filtering up to o alone
            np.testing.assert_allclose(f[i], res.apply(y[: o + 1]).forecast(3), atol=1e-8)
    assert auto_arima(y[:120])[1].startswith("AutoARIMA(1,0,")  # an AR(1) process


def test_conformal_minimum():
    assert (conformal_minimum(0.9), conformal_minimum(0.95), conformal_minimum(0.5)) == (9, 19, 1)


# ---- CLI ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory):
    return write_series_csv(tmp_path_factory.mktemp("series") / "load.csv")


@pytest.fixture(scope="module")
def forecast_run(series_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "fc"
    r = invoke("train", "forecast", "--data", series_csv, "--target", "load", "--time", "month",
               "--period", 12, "--window", 12, "--hidden", 8, "--steps", 15, "--horizon", 3,
               "--arima-order", "1,0,0", "--no-auto-baselines", "--hybrid", "off", "--out", out,
               "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    return out


def test_cli_forecast_run_and_future(forecast_run, tmp_path):
    res = json.loads((forecast_run / "results.json").read_text())
    assert {"rnnkit", "persistence", "seasonal naive (m=12)", "ARIMA(1, 0, 0)"} <= set(
        res["metrics"]
    )
    assert res["gaps_filled"] == 1 and len(res["metrics"]["rnnkit"]) == 3
    # seasonal naive must beat persistence on a clean 12-step seasonal signal
    sn, pe = res["metrics"]["seasonal naive (m=12)"][0], res["metrics"]["persistence"][0]
    assert sn["mae"] < pe["mae"]
    r = invoke("forecast", forecast_run, "--horizon", 4)
    assert r.exit_code == 0, r.output
    rows = [line.split("\t") for line in r.stdout.strip().splitlines()]
    assert len(rows) == 5 and rows[1][0] == "160"
    lo, mid, hi = (float(rows[1][i]) for i in (2, 1, 3))
    assert lo < mid < hi
    assert (forecast_run / "forecast.png").exists()
    # --plot into folders that do not exist yet: they are created
    plot = tmp_path / "new" / "dir" / "f.png"
    assert invoke("forecast", forecast_run, "--plot", plot).exit_code == 0 and plot.exists()


def test_covariates_and_forecasting_from_new_data(tmp_path):
    t = np.arange(120)
    x = np.sin(2 * np.pi * t / 12)
    y = 5 + np.r_[0, x[:-1]] + 0.05 * np.random.default_rng(3).normal(size=120)
    rows = ["month,load,temp"] + [f"{i},{a:.3f},{b:.3f}" for i, a, b in zip(t, y, x, strict=True)]
    data = tmp_path / "cov.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    r = invoke("train", "forecast", "--data", data, "--target", "load", "--time", "month",
               "--covariates", "temp", "--window", 12, "--hidden", 8, "--steps", 5,
               "--horizon", 2, "--val-fraction", 0.08, "--no-auto-baselines", "--out", out,
               "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["split"]["covariates"] == ["temp"] and res["split"]["period"] == 12
    assert res["split"]["period_detected"] and "smape" in res["metrics"]["rnnkit"][1]
    assert set(res["mean_over_leads"]["rnnkit"]) == {"mae", "rmse", "mase", "smape"}
    # the calibration set (8% of 96 points) is below the 9 a 90% conformal interval needs
    assert "calibration set has" in res["notes"]
    new = tmp_path / "new.csv"
    new.write_text("\n".join(rows[:1] + rows[60:80]) + "\n")
    r = invoke("forecast", out, "--data", new, "--horizon", 2)
    assert r.exit_code == 0, r.output
    assert [line.split("\t")[0] for line in r.stdout.strip().splitlines()] == [
        "month", "79", "80"]  # rows 60-79 hold months 59-78
    missing = tmp_path / "missing.csv"
    missing.write_text("\n".join(row.rsplit(",", 1)[0] for row in rows) + "\n")
    one_line_error(invoke("forecast", out, "--data", missing), "no column 'temp'")
    short = tmp_path / "short.csv"
    short.write_text("\n".join(rows[:6]) + "\n")
    one_line_error(invoke("forecast", out, "--data", short), "needs at least 12")
    one_line_error(invoke("train", "forecast", "--data", data, "--target", "load",
                          "--covariates", "temp,,x", "--out", tmp_path / "n"), "--covariates")


def test_member_average_is_the_moment_matched_mixture():
    class Fixed(torch.nn.Module):  # (B, T, 1) -> mean m, log-variance log v at every step
        def __init__(self, m, v):
            super().__init__()
            self.m, self.v = m, v

        def forward(self, x, state=None):
            out = torch.tensor([self.m, math.log(self.v)]).expand(*x.shape[:2], 2)
            return out, (0 if state is None else state + 1)

    out, state = MemberAverage([Fixed(1.0, 1.0), Fixed(3.0, 4.0)])(torch.zeros(2, 3, 1))
    # mean (1 + 3)/2 = 2; variance E[v + m²] - 2² = (1 + 1 + 4 + 9)/2 - 4 = 3.5
    assert torch.allclose(out[..., 0], torch.tensor(2.0))
    assert torch.allclose(out[..., 1], torch.tensor(math.log(3.5)))
    _, state = MemberAverage([Fixed(1.0, 1.0), Fixed(3.0, 4.0)])(torch.zeros(1, 1, 1), state)
    assert state == (1, 1)  # each member continues its own state


def test_python_api_loads_the_run(forecast_run):
    f = forecast.load(forecast_run)
    assert isinstance(f, forecast.Forecaster) and f.window == 12
    # 15 updates are under 40 passes over the windows: one model, refitted
    res = json.loads((forecast_run / "results.json").read_text())
    assert res["split"]["members"] == 1 and len(res["split"]["refit_steps"]) == 1


def test_an_ensemble_run_trains_saves_and_loads_every_member(series_csv, tmp_path):
    out = tmp_path / "ens"
    r = invoke("train", "forecast", "--data", series_csv, "--target", "load", "--time", "month",
               "--period", 12, "--window", 12, "--hidden", 4, "--steps", 100, "--batch", 128,
               "--members", 2, "--no-auto-baselines", "--hybrid", "off", "--out", out,
               "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["split"]["members"] == 2 and len(res["split"]["refit_steps"]) == 2
    assert not (out / "validation-stage").exists() and (out / "member-1").is_dir()
    f = forecast.load(out)
    assert isinstance(f.model, MemberAverage) and len(f.model.members) == 2
    ahead = f.future(3)
    assert (ahead.lower < ahead.mean).all() and (ahead.mean < ahead.upper).all()
    ahead = f.future(5)
    assert ahead.mean.shape == (5,) and (ahead.lower < ahead.upper).all()
    with pytest.raises(OptionError, match="horizon"):
        f.future(forecast.options.MAX_HORIZON + 1)


@pytest.mark.parametrize("keep", ["hybrid", "network"])
def test_auto_keeps_the_better_on_validation_and_a_hybrid_reloads(keep, series_csv, tmp_path,
                                                                   monkeypatch):  # fmt: skip
    from rnnkit.data.text import DataError
    from rnnkit.models.forecaster import HybridForecaster, detect
    from rnnkit.tasks.forecast import task
    from rnnkit.tasks.forecast.hybrid import Classical

    score = task.validation_mase  # the real scores are recorded; `keep` wins the choice
    monkeypatch.setattr(task, "validation_mase", lambda fc, d, H: score(fc, d, H) + (
        0 if (d.classical is not None) == (keep == "hybrid") else 100))  # fmt: skip
    out = tmp_path / "run"
    r = invoke("train", "forecast", "--data", series_csv, "--target", "load", "--time", "month",
               "--period", 12, "--window", 12, "--hidden", 4, "--steps", 10, "--horizon", 3,
               "--no-auto-baselines", "--no-hybrid-arima-mean", "--quiet",
               "--out", out)  # fmt: skip
    # (--no-hybrid-arima-mean: its AutoARIMA fit takes ~5 s; the rule has its own test below)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    model = res["split"]["model"]
    assert model["chosen"] == keep and set(model["validation_mase"]) == {"network", "hybrid"}
    assert model["classical"].startswith("AR(") and not (out / "validation-stage").exists()
    f = forecast.load(out)
    values = np.asarray(f.series["values"])
    origins = np.arange(f.series["n_train"] - 1, f.series["n_end"] - 1)
    mean, lo, hi = f.forecast(values, origins, 3)  # reloaded: the evaluation's forecasts
    np.testing.assert_allclose(mean[:, 0], res["one_step"]["rnnkit"], rtol=1e-5)
    assert (lo < mean).all() and (mean < hi).all()
    assert detect(f, values).flags.shape == values.shape  # the network alone, for a hybrid
    assert isinstance(f, HybridForecaster) == (keep == "hybrid") == (out / "network").is_dir()
    if keep == "network":
        return
    # the classical part is the AR baseline of the same run (both fitted on the training part)
    assert f.strategy == "direct" and f.classical.name in res["metrics"]

    class Zero(torch.nn.Module):  # a network that corrects nothing: mean 0, log-variance 0
        def forward(self, x, state=None):
            return torch.zeros(*x.shape[:2], 6), state

    f.model = Zero()
    classical = Classical(**json.loads(json.dumps(vars(f.classical))))  # as in forecaster.json
    np.testing.assert_allclose(f.forecast(values, origins, 3)[0],
                               classical.forecasts(values, origins, 3))  # fmt: skip
    r = invoke("forecast", out, "--plot", tmp_path / "f.png", "--horizon", 3)  # the head's
    assert r.exit_code == 0 and len(r.stdout.strip().splitlines()) == 4 and "note" not in r.stderr
    # past the head's 3 steps: the network alone, recursive, says so (default 12 steps)
    r = invoke("forecast", out, "--plot", tmp_path / "f.png")
    assert r.exit_code == 0 and len(r.stdout.strip().splitlines()) == 13, r.output
    assert "network-alone forecast" in r.stderr
    assert f.reach() is None and f.network.strategy == "recursive"
    np.testing.assert_array_equal(f.forecast(values, origins, 5)[0],
                                  f.network.forecast(values, origins, 5)[0])  # fmt: skip
    f.network = None  # as after --hybrid on
    with pytest.raises(DataError, match="at most 3 steps"):
        f.forecast(values, origins, 5)
    with pytest.raises(DataError, match="--hybrid on"):
        detect(f, values)


def test_forecast_horizon_and_plot_errors(forecast_run, tmp_path):
    # a million steps would run for hours: refused at once, in one line
    one_line_error(invoke("forecast", forecast_run, "--horizon", 1_000_000), "--horizon", "10000")
    for bad in (0, -1, "abc", "nan"):
        one_line_error(invoke("forecast", forecast_run, "--horizon", bad), "horizon")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(invoke("forecast", forecast_run, "--plot", blocker / "f.png"), "--plot")
    one_line_error(invoke("forecast", forecast_run, "--plot", tmp_path), "--plot", "directory")


def test_progress_bar_counts_optimiser_steps(forecast_run):
    logs = [json.loads(line) for line in (forecast_run / "metrics.jsonl").read_text().split("\n")
            if line.strip()]  # fmt: skip
    train = [m for m in logs if m.get("split") == "train" and "steps_per_s" in m]
    assert train
    # 15 updates took at least a few ms: optimiser steps per second stay far below the
    # B·W = 32·12 time steps a batch holds per update
    config = json.loads((forecast_run / "config.json").read_text())
    assert config["extra"]["task"] == "forecast"
    assert all(m["steps_per_s"] < 1e5 for m in train)


def test_cli_bad_input_one_line_exit_2(series_csv, tmp_path):
    out = tmp_path / "x"
    fc = ["train", "forecast", "--out", out, "--quiet", "--steps", 1]
    one_line_error(invoke(*fc, "--data", series_csv, "--target", "nope"), "no column 'nope'")
    bad = tmp_path / "bad.csv"
    bad.write_text("t,v\n0,1\n1,two\n2,3\n")
    one_line_error(invoke(*fc, "--data", bad, "--target", "v"), "non-numeric")
    short = tmp_path / "short.csv"
    short.write_text("v\n" + "\n".join(str(i) for i in range(30)) + "\n")
    one_line_error(invoke(*fc, "--data", short, "--window", 40), "needs at least")
    one_line_error(invoke(*fc, "--data", "sunspotz"), "no such file or series")
    one_line_error(invoke(*fc, "--data", "stocks"), "--series", "MSFT")
    one_line_error(invoke(*fc, "--data", "stocks", "--series", "XYZ"), "no series 'XYZ'")
    one_line_error(invoke(*fc, "--data", series_csv, "--target", "load", "--covariates",
                          "nope"), "no column 'nope'")  # fmt: skip
    flat = tmp_path / "flat.csv"
    flat.write_text("v\n" + "\n".join("5" for _ in range(200)) + "\n")
    one_line_error(invoke(*fc, "--data", flat), "constant")
    for order in ("1,2", "a,b,c", "-1,0,0"):
        one_line_error(invoke(*fc, "--data", series_csv, "--target", "load",
                              "--arima-order", order), "--arima-order")  # fmt: skip
    one_line_error(invoke("forecast", tmp_path, "--horizon", 2), "run directory")


def test_a_run_of_another_task_is_named(forecast_run, tmp_path):
    from rnnkit.tasks import sentiment

    with pytest.raises(ValueError, match="a forecast run, not a sentiment run"):
        sentiment.load(forecast_run)


# ---- every numeric option of `train forecast`, swept ----------------------------------------

NUMERIC = {  # flag -> a legal value (the default's neighbourhood)
    "--hidden": 8, "--layers": 2, "--steps": 10, "--epochs": 0.5, "--minutes": 0.5,
    "--lr": 0.01, "--batch": 16, "--seed": 3, "--threads": 1, "--period": 12, "--window": 12,
    "--horizon": 3, "--level": 0.8, "--dropout": 0.1, "--weight-decay": 0.01,
    "--test-fraction": 0.3, "--val-fraction": 0.2, "--samples": 50, "--members": 2,
}  # fmt: skip
# a value that is legal for a flag is left out of its illegal cases
LEGAL = {"--dropout": {0}, "--weight-decay": {0}, "--val-fraction": {0}, "--seed": {0}}
BAD = (0, -1, "nan", "inf", "1e30", "abc")


@pytest.mark.parametrize("flag", sorted(NUMERIC))
def test_every_numeric_option_rejects_bad_values(flag, tmp_path):
    for value in BAD:
        if value in LEGAL.get(flag, ()):
            continue
        # a missing --data file: a value wrongly taken fails at once, without naming the flag
        r = invoke("train", "forecast", flag, value, "--data", tmp_path / "none.csv",
                   "--out", tmp_path / "never", "--quiet")  # fmt: skip
        one_line_error(r, flag)
        assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("flag", sorted(NUMERIC))
def test_every_numeric_option_takes_a_legal_value(flag):
    value = NUMERIC[flag]
    field = flag[2:].replace("-", "_")
    options = forecast.Options(**{field: value})  # validated when made; nothing is trained
    assert math.isclose(getattr(options, field), value)
    for zero in LEGAL.get(flag, ()):
        assert getattr(forecast.Options(**{field: zero}), field) == zero


def test_numeric_sweep_covers_every_numeric_option():
    from rnnkit.tasks.options import base_type, field_specs

    numeric = {"--" + f.name.replace("_", "-") for f, tp in field_specs(forecast.Options)
               if base_type(tp)[0] in (int, float)}  # fmt: skip
    assert numeric == set(NUMERIC)


def test_the_forecast_run_exports_to_onnx(forecast_run, tmp_path):
    from onnx_roundtrip import assert_run_exports

    assert_run_exports(forecast_run, tmp_path)


def test_the_classical_part_is_chosen_over_rolling_origins(monkeypatch):
    from rnnkit.tasks.forecast import hybrid
    from rnnkit.tasks.metrics import origins_for

    assert hybrid.fold_starts(68, 80) == [68, 56, 44]  # n_val 12 back, keeping half to fit
    assert hybrid.fold_starts(30, 40) == [30, 20]
    # white noise, then from t = 68 a slow random walk from 0.3: persistence wins on the last
    # fold alone, the mean (0) on the two before it, and on average
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(size=68), 0.3 + np.cumsum(0.05 * rng.normal(size=12))])
    seen = []

    def fixed(name, coef):
        def fit(train):
            seen.append(len(train))
            return hybrid.Classical(name, {"kind": "ar", "params": [0.0, coef]})
        return fit

    monkeypatch.setattr(hybrid, "fitters", lambda period, auto: {
        "zero": fixed("zero", 0.0), "walk": fixed("walk", 1.0)})  # fmt: skip
    part, full, scores = hybrid.choose(values, 68, 80, 2, None, False)

    def fold_mase(start, *coefs):  # the MASE of the mean forecast of these AR(1)s
        origins = origins_for(start, start + 12)
        pred = np.mean([hybrid.Classical("", {"kind": "ar", "params": [0.0, c]}).forecasts(
            values, origins, 2) for c in coefs], axis=0)  # fmt: skip
        truth = truth_matrix(values, origins, 2, start + 12)
        return np.mean([r["mase"] for r in metrics(pred, truth, mase_scale(values[:start]))])

    assert fold_mase(68, 1.0) < fold_mase(68, 0.0)  # one validation tail would keep the walk
    assert scores["zero"] == pytest.approx(np.mean([fold_mase(s, 0.0) for s in (68, 56, 44)]))
    assert scores["zero"] < scores["walk"]
    # the combinations, scored from their parts' fold forecasts (the median of two: the mean)
    both = np.mean([fold_mase(s, 0.0, 1.0) for s in (68, 56, 44)])
    assert scores["mean(zero, walk)"] == scores["median(zero, walk)"] == pytest.approx(both)
    assert part.name == full.name == min(scores, key=scores.get)
    refits = [80] * (2 if part.spec["kind"] == "combination" else 1)
    assert seen == [68, 68, 56, 56, 44, 44, *refits]  # one fit per candidate and fold
    median = hybrid.combination("median", [fixed(n, c)(values) for n, c in
                                            (("a", 0.2), ("b", 0.9), ("c", 0.5))])  # fmt: skip
    again = hybrid.Classical(**json.loads(json.dumps(dataclasses.asdict(median))))
    np.testing.assert_allclose(again.forecasts(values, np.arange(5, 9), 1)[:, 0],
                               0.5 * values[5:9])  # fmt: skip


def test_the_hybrids_weight_shrinks_its_correction_towards_the_classical_forecast():
    from rnnkit.data.scaling import StandardScaler
    from rnnkit.models.forecaster import HybridForecaster
    from rnnkit.tasks.forecast.hybrid import Classical

    class One(torch.nn.Module):  # corrects every lead by +1 error scale, log-variance 0
        def forward(self, x, state=None):
            return torch.cat([torch.ones(*x.shape[:2], 3), torch.zeros(*x.shape[:2], 3)], 2), state

    values = np.sin(np.arange(40) / 3.0)
    origins = np.arange(10, 39)
    classical = Classical("AR(1)", {"kind": "ar", "params": [0.0, 0.9]})
    c = classical.forecasts(values, origins, 3)
    for w in (1.0, 0.5, 0.0):
        fc = HybridForecaster(One(), StandardScaler([0.0], [1.0]), classical, 2.0, 5, 0.9, 3,
                              weight=w)  # fmt: skip
        mean, lo, hi = fc.forecast(values, origins, 3)
        np.testing.assert_allclose(mean, c + 2.0 * w, atol=1e-6)
        np.testing.assert_allclose(hi - lo, 2 * fc.z * 2.0, rtol=1e-5)  # the widths stay


def test_each_lead_time_can_come_from_its_own_classical_candidate(monkeypatch):
    from rnnkit.tasks.forecast import hybrid

    # y[t] = 0.9 y[t-2] + noise: from y[t] alone, 0 is the best one-step forecast and
    # 0.9 y[t] the best two-step one; of the AR(1)s "zero" (0) and "walk" (0.95: 0.9025 y[t]
    # two steps ahead) each wins one lead time, and the per-lead choice beats both
    rng = np.random.default_rng(1)
    values = np.zeros(1500)
    for t in range(2, 1500):
        values[t] = 0.9 * values[t - 2] + rng.normal()

    def fixed(coef):
        return lambda train: hybrid.Classical(f"c{coef}", {"kind": "ar", "params": [0.0, coef]})

    monkeypatch.setattr(hybrid, "fitters", lambda period, auto: {
        "zero": fixed(0.0), "walk": fixed(0.95)})  # fmt: skip
    assert hybrid.choose(values, 1275, 1500, 2, None, False)[0].spec["kind"] != "per_lead"
    part, full, scores = hybrid.choose(values, 1275, 1500, 2, None, False, per_lead=True)
    assert part.spec["kind"] == full.spec["kind"] == "per_lead"
    assert [p["name"] for p in part.spec["parts"]] == ["c0.0", "c0.95"]
    assert part.spec["leads"] == [0, 1] and part.name == "per lead(h=1: c0.0, h=2: c0.95)"
    assert scores[part.name] == min(scores.values()) < min(scores["c0.0"], scores["c0.95"])
    origins = np.arange(10, 20)
    again = hybrid.Classical(**json.loads(json.dumps(dataclasses.asdict(full))))
    f = again.forecasts(values, origins, 3)  # past the chosen leads: the last lead's part
    walk = fixed(0.95)(values).forecasts(values, origins, 3)
    np.testing.assert_allclose(f[:, 0], 0.0)
    np.testing.assert_allclose(f[:, 1:], walk[:, 1:])
    np.testing.assert_allclose(again.errors(values[:30]), np.r_[0.0, values[1:30]])


def test_the_correction_weight_per_lead_is_the_validation_least_squares_slope(series_csv,
                                                                             tmp_path):  # fmt: skip
    from types import SimpleNamespace

    from rnnkit.data.scaling import StandardScaler
    from rnnkit.models.forecaster import HybridForecaster
    from rnnkit.tasks.forecast import task
    from rnnkit.tasks.forecast.hybrid import Classical

    class Fixed(torch.nn.Module):  # corrects leads 1, 2, 3 by 1, 2, -1 error scales
        def forward(self, x, state=None):
            mean = torch.tensor([1.0, 2.0, -1.0]).expand(*x.shape[:2], 3)
            return torch.cat([mean, torch.zeros(*x.shape[:2], 3)], 2), state

    # the classical forecast is 0 and every validation value 0.5 (errors 0.5 at every lead):
    # the slopes 0.5 / 1, 1 / 4 and -0.5 (clipped to 0)
    values = np.concatenate([np.sin(np.arange(60) / 3.0), np.full(20, 0.5)])
    classical = Classical("zero", {"kind": "ar", "params": [0.0, 0.0]})
    fc = HybridForecaster(Fixed(), StandardScaler([0.0], [1.0]), classical, 1.0, 5, 0.9, 3)
    data = SimpleNamespace(n_train=80, n_val=20, series=SimpleNamespace(values=values,
                                                                         covariates=None))
    w, sums = task.lead_weights(fc, data, 3)
    np.testing.assert_allclose(w, [0.5, 0.25, 0.0], atol=1e-6)
    # 20 validation origins; the truth of the last ones' longer leads is past the tail
    np.testing.assert_allclose(sums["cc"], [20, 4 * 19, 18])
    np.testing.assert_allclose(sums["rc"], [10, 19, -9])
    fc.weight = w  # each lead's correction shrunk by its own share
    np.testing.assert_allclose(fc.forecast(values, np.arange(60, 70), 3)[0], [[0.5, 0.5, 0]] * 10,
                               atol=1e-6)  # fmt: skip
    assert np.array_equal(task.weight_value(json.loads(json.dumps(task.weight_json(w)))), w)
    assert task.weight_value(task.weight_json(0.5)) == 0.5
    # end to end: the weights are recorded and reloaded with the run
    out = tmp_path / "run"
    r = invoke("train", "forecast", "--data", series_csv, "--target", "load", "--time", "month",
               "--period", 12, "--window", 12, "--hidden", 4, "--steps", 10, "--horizon", 3,
               "--no-auto-baselines", "--hybrid", "on", "--hybrid-weight", "lead",
               "--no-hybrid-arima-mean", "--quiet",
               "--out", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    model = res["split"]["model"]
    assert len(model["weight"]) == 3 and all(0 <= v <= 1 for v in model["weight"])
    assert set(model["weight_validation_mase"]) == {"1.0", "0.5", "0.0", "lead"}
    f = forecast.load(out)
    np.testing.assert_allclose(f.weight, model["weight"], atol=1e-4)
    vals = np.asarray(f.series["values"])
    origins = np.arange(f.series["n_train"] - 1, f.series["n_end"] - 1)
    np.testing.assert_allclose(f.forecast(vals, origins, 3)[0][:, 0], res["one_step"]["rnnkit"],
                               rtol=1e-5)  # fmt: skip
    one_line_error(invoke("train", "forecast", "--data", series_csv, "--target", "load",
                          "--hybrid-weight", "both", "--out", tmp_path / "bad"),
                   "hybrid-weight")  # fmt: skip


def test_the_hybrid_takes_its_mean_with_autoarima_where_validation_says(series_csv, tmp_path,
                                                                        monkeypatch):  # fmt: skip
    from rnnkit.data.scaling import StandardScaler
    from rnnkit.models.forecaster import HybridForecaster
    from rnnkit.tasks.forecast import arima_mean, task
    from rnnkit.tasks.forecast.hybrid import Classical, combination

    class Zero(torch.nn.Module):  # corrects nothing: the hybrid is its classical forecast
        def forward(self, x, state=None):
            return torch.zeros(*x.shape[:2], 4), state

    # y[t] = 0.9 y[t-2] + noise: 0 is the best one-step forecast from y[t] alone, 0.9 y[t] the
    # best two-step one; the hybrid forecasts 0, the partner 0.95 y[t] (two steps: 0.9025 y[t]),
    # so the mean (0.475 y[t], 0.45 y[t]) loses lead 1 and wins lead 2
    rng = np.random.default_rng(2)
    values = np.zeros(1000)
    for t in range(2, 1000):
        values[t] = 0.9 * values[t - 2] + rng.normal()
    zero = Classical("zero", {"kind": "ar", "params": [0.0, 0.0]})
    walk = Classical("walk", {"kind": "ar", "params": [0.0, 0.95]})
    fc = HybridForecaster(Zero(), StandardScaler([0.0], [1.0]), zero, 1.0, 5, 0.9, 2)
    leads, scores = arima_mean.lead_choice(fc, walk, values, 800, 1000, 2)
    assert leads == [False, True] and scores["mean"][1] < scores["hybrid"][1]
    assert fc.partner is None  # lead_choice scores the hybrid alone and leaves fc as it was
    origins = np.arange(10, 30)
    before = fc.forecast(values, origins, 2)
    fc.partner, fc.partner_leads = walk, leads
    mean, lo, hi = fc.forecast(values, origins, 2)
    np.testing.assert_allclose(mean[:, 0], 0.0, atol=1e-12)
    np.testing.assert_allclose(mean[:, 1], 0.5 * walk.forecasts(values, origins, 2)[:, 1])
    np.testing.assert_allclose(hi - lo, before[2] - before[1])  # the hybrid's widths, moved
    # AutoARIMA: the chosen combination's own part; none when it is the classical part itself
    arima = Classical("ARIMA(1,0,0)", {"kind": "sarimax", "order": [1, 0, 0],
                                       "seasonal": [0, 0, 0, 0], "trend": "c", "params": []})
    both = combination("median", [zero, arima, walk])
    assert arima_mean.arima_fits(both, both, values, 800, 1000, None) == (arima, arima)
    assert arima_mean.arima_fits(arima, arima, values, 800, 1000, None) is None
    monkeypatch.setattr(arima_mean, "fitters", lambda period, auto: {
        "AutoARIMA": lambda train: Classical(f"fit{len(train)}", walk.spec)})  # fmt: skip
    fits = arima_mean.arima_fits(zero, zero, values, 800, 1000, None)
    assert [c.name for c in fits] == ["fit800", "fit1000"]
    # end to end (AR fits standing in for AutoARIMA's, leads 1 and 3 forced): recorded, the
    # refitted partner kept, and reloaded with the run
    monkeypatch.setattr(task, "arima_fits", lambda part, full, v, n_fit, n_train, period: (
        Classical("AR-fit", walk.spec), Classical("AR-refit", walk.spec)))  # fmt: skip
    choice = task.lead_choice
    monkeypatch.setattr(task, "lead_choice", lambda *a: ([True, False, True], choice(*a)[1]))
    out = tmp_path / "run"
    r = invoke("train", "forecast", "--data", series_csv, "--target", "load", "--time", "month",
               "--period", 12, "--window", 12, "--hidden", 4, "--steps", 10, "--horizon", 3,
               "--no-auto-baselines", "--hybrid", "on", "--hybrid-arima-mean", "--quiet",
               "--out", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    record = res["split"]["model"]["arima_mean"]
    assert record["arima"] == "AR-fit" and record["leads"] == [True, False, True]
    assert len(record["validation_mase"]["mean"]) == 3
    f = forecast.load(out)
    assert f.partner.name == "AR-refit" and f.partner_leads == [True, False, True]
    vals = np.asarray(f.series["values"])
    origins = np.arange(f.series["n_train"] - 1, f.series["n_end"] - 1)
    mean = f.forecast(vals, origins, 3)[0]
    np.testing.assert_allclose(mean[:, 0], res["one_step"]["rnnkit"], rtol=1e-5)
    f.partner = None
    alone = f.forecast(vals, origins, 3)[0]
    p = walk.forecasts(vals, origins, 3)
    np.testing.assert_allclose(mean[:, [0, 2]], 0.5 * (alone + p)[:, [0, 2]], rtol=1e-6)
    np.testing.assert_allclose(mean[:, 1], alone[:, 1])


def test_the_hybrid_leaves_out_its_classical_models_burn_in(series_csv, tmp_path, monkeypatch):
    """A seasonal ARIMA's first season of one-step errors is its initialisation, not the
    series (sf-temps: 75 standard deviations): it sets neither the hybrid's error scale nor
    any window the hybrid trains on."""
    from rnnkit.tasks.forecast import task
    from rnnkit.tasks.forecast.hybrid import Classical

    spec = {"kind": "sarimax", "order": [0, 1, 1], "seasonal": [0, 1, 1, 12], "trend": None,
            "params": [-0.5, -0.5]}  # fmt: skip
    sarima = Classical("SARIMA", spec)
    assert task.burn_in(spec) == 1 + 12  # d + D·s
    assert task.burn_in({"kind": "ar", "params": [0.0, 0.5, 0.2]}) == 0
    assert task.burn_in({"kind": "combination", "how": "mean", "parts": [
        {"name": "a", "spec": {"kind": "ar", "params": [0.0, 0.5]}},
        {"name": "s", "spec": spec}]}) == 13  # fmt: skip
    monkeypatch.setattr(task, "choose", lambda *a: (sarima, sarima, {"SARIMA": 0.1}))
    trained = []
    pairs = task.data_pairs
    monkeypatch.setattr(task, "data_pairs", lambda d, n, train=False: trained.append(
        (train, *pairs(d, n, train))) or trained[-1][1:])  # fmt: skip
    out = tmp_path / "run"
    r = invoke("train", "forecast", "--data", series_csv, "--target", "load", "--time", "month",
               "--period", 12, "--window", 12, "--hidden", 4, "--steps", 10, "--horizon", 3,
               "--no-auto-baselines", "--hybrid", "on", "--no-hybrid-arima-mean", "--quiet",
               "--out", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    values = np.array([float(v.split(",")[1] or "nan") for v in
                       series_csv.read_text().splitlines()[1:]])  # fmt: skip
    values[49] = (values[48] + values[50]) / 2  # the gap, filled as the loader fills it
    e = sarima.errors(values)
    assert np.abs(e[1:13]).max() > 5 * np.std(e[13:])  # the burn-in's errors are that large
    scale = forecast.load(out).error_scale
    assert scale < 0.7 * np.std(e[1:120]) and scale == pytest.approx(np.std(e[13:120]), rel=0.2)
    for train, _x, y in trained:
        if train:  # every target the hybrid trains on is an error after the burn-in
            assert float(y.abs().max()) * scale < np.abs(e[13:]).max() * 3
    assert any(t for t, *_ in trained)
