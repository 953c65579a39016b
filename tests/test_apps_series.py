"""Forecasting and anomaly detection: baselines, metrics, the CLI.

CLI tests run the real commands on tiny user files (a few seconds each); bad input must give
one line on stderr and exit code 2.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from rnnkit.cli.apps_series import register
from rnnkit.tasks.anomaly import inject, persistence_detect, scores
from rnnkit.tasks.forecast import (
    ar_forecast,
    fit_ar,
    mase_scale,
    metrics,
    persistence,
    seasonal_naive,
    truth_matrix,
)


@pytest.fixture(scope="module")
def app():
    a = typer.Typer()

    @a.callback()
    def root() -> None:
        """test app"""

    register(a)
    return a


def invoke(app, args):
    return CliRunner().invoke(app, [str(a) for a in args])


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


def test_metrics_and_mase():
    train = np.array([0.0, 2.0, 0.0, 2.0])
    assert mase_scale(train) == 2.0
    m = metrics(np.array([[1.0], [3.0]]), np.array([[2.0], [1.0]]), 2.0)[0]
    assert (m["mae"], m["mse"], m["mase"], m["n"]) == (1.5, 2.5, 0.75, 2)
    assert m["rmse"] == pytest.approx(2.5**0.5)


def test_injection_labels_and_scores():
    y = np.sin(np.arange(200) / 5.0)
    inj = inject(y, start=100, trials=3, sigma=0.2, seed=1)
    assert inj.values.shape == (3, 200) and not inj.labels[:, :100].any()
    assert {e[1] for e in inj.events} == {"spike", "level shift", "dropout"}
    perfect = scores(inj.labels.copy(), inj, 100)
    assert perfect["precision"] == perfect["recall"] == perfect["f1"] == 1.0
    assert all(k["event_recall"] == 1.0 for k in perfect["kinds"].values())
    base = persistence_detect(inj.values, y[:100], 100, 0.99)
    assert base.shape == inj.values.shape and not base[:, :100].any()
    s = scores(base, inj, 100)
    assert s["kinds"]["spike"]["event_recall"] == 1.0  # ±5σ jumps are caught by differences


# ---- CLI ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory):
    t = np.arange(160)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.3, 160)
    lines = ["month,load"] + [f"{i},{v:.3f}" for i, v in zip(t, y, strict=True)]
    lines[50] = "49,"  # a gap
    p = tmp_path_factory.mktemp("series") / "load.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.fixture(scope="module")
def forecast_run(app, series_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "fc"
    args = ["train", "forecast", "--dataset", series_csv, "--target", "load", "--time", "month",
            "--period", 12, "--window", 12, "--hidden", 8, "--steps", 15, "--horizon", 3,
            "--arima-order", "1,0,0", "--out", out, "--quiet"]  # fmt: skip
    r = invoke(app, args)
    assert r.exit_code == 0, r.output
    return out


def test_cli_forecast_run_and_future(app, forecast_run):
    res = json.loads((forecast_run / "results.json").read_text())
    assert {"rnnkit", "persistence", "seasonal naive (m=12)", "ARIMA(1, 0, 0)"} <= set(
        res["metrics"]
    )
    assert res["gaps_filled"] == 1 and len(res["metrics"]["rnnkit"]) == 3
    # seasonal naive must beat persistence on a clean 12-step seasonal signal
    sn, pe = res["metrics"]["seasonal naive (m=12)"][0], res["metrics"]["persistence"][0]
    assert sn["mae"] < pe["mae"]
    r = invoke(app, ["forecast", forecast_run, "--horizon", 4])
    assert r.exit_code == 0, r.output
    rows = [line.split("\t") for line in r.stdout.strip().splitlines()]
    assert len(rows) == 5 and rows[1][0] == "160"
    lo, mid, hi = (float(rows[1][i]) for i in (2, 1, 3))
    assert lo < mid < hi
    assert (forecast_run / "forecast.png").exists()


def test_cli_detect_anomalies(app, forecast_run, tmp_path):
    r = invoke(app, ["detect-anomalies", forecast_run, "--trials", 2, "--out", tmp_path])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "anomalies.json").read_text())
    ev = res["evaluation"]
    assert set(ev) >= {"rnnkit", "persistence residual"} and 0 <= ev["rnnkit"]["f1"] <= 1
    assert (tmp_path / "anomalies.html").exists()


def _assert_usage_error(r, *words):
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    assert "Traceback" not in r.output
    for w in words:
        assert w in err, err


def test_cli_bad_input_one_line_exit_2(app, series_csv, tmp_path):
    out = tmp_path / "x"
    fc = ["train", "forecast", "--out", out, "--quiet", "--steps", 1]
    _assert_usage_error(invoke(app, [*fc, "--dataset", series_csv, "--target", "nope"]),
                        "no column 'nope'")  # fmt: skip
    bad = tmp_path / "bad.csv"
    bad.write_text("t,v\n0,1\n1,two\n2,3\n")
    _assert_usage_error(invoke(app, [*fc, "--dataset", bad, "--target", "v"]), "non-numeric")
    short = tmp_path / "short.csv"
    short.write_text("v\n" + "\n".join(str(i) for i in range(30)) + "\n")
    _assert_usage_error(invoke(app, [*fc, "--dataset", short, "--window", 40]), "needs at least")
    _assert_usage_error(invoke(app, [*fc, "--dataset", "sunspotz"]), "no such file or series")
    _assert_usage_error(invoke(app, ["forecast", tmp_path, "--horizon", 2]), "run directory")
    _assert_usage_error(invoke(app, ["detect-anomalies", tmp_path / "nothing"]), "not a directory")
