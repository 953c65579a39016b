"""Anomaly detection with a trained forecaster: injection and scores on toy data, the
`detect-anomalies` command, bad input as one line and exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _helpers import invoke, one_line_error, write_series_csv

from rnnkit.tasks.anomaly import (
    DiscordReference,
    WindowReference,
    WindowRule,
    discord_profile,
    discord_reference,
    gpd_threshold,
    inject,
    label_scores,
    matrix_profile,
    merge_alarms,
    one_step_scores,
    persistence_detect,
    residual_windows,
    robust_standardise,
    scores,
    window_rms,
    window_scores,
)


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


def test_label_scores_point_and_event_wise():
    flags = np.array([0, 1, 0, 1, 1, 0, 0, 1], bool)
    labels = np.array([0, 1, 1, 0, 0, 0, 1, 1])
    s = label_scores(flags, labels, 0)
    assert (s["points"]["tp"], s["points"]["flagged"], s["points"]["labelled"]) == (2, 4, 4)
    # alarm events [1], [3-4], [7]: two touch a true event; true events [1-2], [6-7]: both hit
    assert (s["events"]["alarm_events"], s["events"]["true_events"]) == (3, 2)
    assert s["events"]["precision"] == pytest.approx(2 / 3) and s["events"]["recall"] == 1.0
    assert label_scores(flags, labels, 5)["points"]["flagged"] == 1  # from `start` on


def test_window_rule_parts():
    e = np.array([[3.0, 4.0, 0.0, np.nan, 12.0]])
    # trailing RMS over 2 points (1 at the start), NaN as 0
    assert window_rms(e, 2)[0] == pytest.approx([3, np.sqrt(12.5), np.sqrt(8), 0, np.sqrt(72)])
    s = np.random.default_rng(0).normal(size=(1, 50))
    hist = np.arange(10.0)
    z = robust_standardise(s, hist, K=6, lag=2)
    full = np.r_[hist, s[0]]
    for t in (0, 1, 7, 49):  # against the definition: the K scores ending `lag` before t
        w = full[10 + t - 2 - 6 + 1 : 10 + t - 2 + 1]
        med = np.median(w)
        assert z[0, t] == pytest.approx((s[0, t] - med) / (1.4826 * np.median(np.abs(w - med))))
    f = np.array([1, 0, 0, 1, 0, 0, 0, 0, 1], bool)
    assert merge_alarms(f, 3).astype(int).tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 1]
    assert merge_alarms(f[None], 5)[0].all()


def test_gpd_threshold_extrapolates_the_tail():
    x = np.random.default_rng(1).exponential(size=20_000)
    assert gpd_threshold(x, 0.1) == pytest.approx(np.quantile(x, 0.9))  # inside the body
    # an exponential tail: the quantile at risk q is -ln q; far past the 20,000 points' reach
    # (a fit to the top 400 points: over seeds 0-3 within 8% at 1e-4, 19% at 1e-6)
    assert gpd_threshold(x, 1e-4) == pytest.approx(-np.log(1e-4), rel=0.1)
    assert gpd_threshold(x, 1e-6) == pytest.approx(-np.log(1e-6), rel=0.25)
    assert gpd_threshold(x, 1e-6) > x.max()


def test_discord_profile_flags_what_does_not_repeat():
    W = 8
    e = np.r_[np.full(W, np.nan), 0.3 * np.random.default_rng(0).normal(size=400)]
    e[W + 100 : W + 104] += 3  # a burst that comes back at 300: each one is the other's match
    e[W + 300 : W + 304] += 3
    e[W + 200 : W + 204] -= 3  # a burst seen once
    none = DiscordReference(W, np.empty((0, W)), 0.0, 1e-5)
    d = discord_profile(e[None], W, W, none)[0]
    assert np.isnan(d[:W]).all() and W + 195 <= np.nanargmax(d) <= W + 205
    assert d[W + 100 : W + 104].max() < 0.5 * d[W + 200 : W + 204].max()
    # the training part holds the once-seen burst: it is not new any more
    seen = DiscordReference(W, residual_windows(e[W + 190 : W + 215], W), 0.0, 1e-5)
    assert discord_profile(e[None], W, W, seen)[0][W + 200 : W + 204].max() < 0.5 * np.nanmax(d)
    # copies of the series checked side by side: only the windows from `start` on are
    # recomputed, and they agree with the row checked alone
    two = np.stack([e, e])
    two[1, W + 350] += 5
    both = discord_profile(two, W, W + 300, none)
    assert both[0] == pytest.approx(d, nan_ok=True)
    alone = discord_profile(two[1:], W, W, none)[0]
    assert both[1, W + 300 :] == pytest.approx(alone[W + 300 :])


def test_matrix_profile_matches_aeons_stomp_on_a_small_case():
    # aeon's STOMP(window_size=8) on this series (run once with stumpy, which is no
    # dependency) agreed to 2e-13 and put its maximum at point 60: the inserted bump is the
    # discord, the periodic rest matches itself
    t = np.arange(120)
    y = np.sin(2 * np.pi * t / 12) + 0.01 * np.random.default_rng(0).normal(size=120)
    y[60:64] += 1.5
    p = matrix_profile(y, 8)
    assert p.shape == (120,) and int(np.argmax(p)) == 60
    assert p[:40].max() < 0.5 * p.max()


def test_cli_detect_anomalies_against_labels(forecast_run, tmp_path):
    t = np.arange(160)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12)
    y[100:103] += 15  # one true event
    lab = ((t >= 100) & (t < 103)).astype(int)
    data = tmp_path / "labelled.csv"
    data.write_text("month,load,anomaly\n" + "".join(
        f"{i},{v:.3f},{a}\n" for i, v, a in zip(t, y, lab, strict=True)))  # fmt: skip
    r = invoke("detect-anomalies", forecast_run, "--data", data, "--target", "load", "--time",
               "month", "--labels", "anomaly", "--no-evaluate", "--out", tmp_path, "--quiet")
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "anomalies.json").read_text())["labelled"]
    assert set(got) == {"rnnkit", "persistence residual", "matrix profile (m=12, rnnkit's points)",
                        "matrix profile (m=12, training max)"}
    # the baseline flags as many points as rnnkit (then merges alarms closer than 2 windows,
    # as rnnkit does); the jump is the series' one discord
    mp = got["matrix profile (m=12, rnnkit's points)"]
    assert mp["points"]["flagged"] >= got["rnnkit"]["points"]["flagged"]
    assert mp["events"]["recall"] == 1.0 and mp["events"]["alarm_events"] == 1
    assert got["rnnkit"]["events"]["true_events"] == 1 and got["rnnkit"]["points"]["labelled"] == 3
    assert got["rnnkit"]["events"]["recall"] == 1.0  # a +15 jump on a ±3 signal is found
    assert got["rnnkit"]["events"]["alarm_events"] == 1  # the default discord rule: one alarm
    # the default flags where both of its rules flag: within what each flags alone
    flagged = {}
    for method in ("window-discord", "window", "discord"):
        out = tmp_path / method
        r = invoke("detect-anomalies", forecast_run, "--data", data, "--target", "load", "--time",
                   "month", "--method", method, "--no-evaluate", "--out", out, "--quiet")
        assert r.exit_code == 0, r.output
        res = json.loads((out / "anomalies.json").read_text())
        flagged[method] = {f["index"] for f in res["flagged"]}
    assert flagged["window-discord"] <= flagged["window"] & flagged["discord"]
    assert flagged["window-discord"] >= set(range(100, 103))
    # a threshold set by the training part's false-alarm rate: fewer alarms at a lower rate
    alarms = []
    for rate in (0.2, 0.01):
        r = invoke("detect-anomalies", forecast_run, "--data", data, "--target", "load",
                   "--time", "month", "--false-alarm-rate", rate, "--no-evaluate", "--out",
                   tmp_path / str(rate), "--quiet")  # fmt: skip
        assert r.exit_code == 0, r.output
        res = json.loads((tmp_path / str(rate) / "anomalies.json").read_text())
        alarms.append(len(res["flagged"]))
    assert alarms[0] > alarms[1]
    for bad in (0, 1, "nan"):
        one_line_error(invoke("detect-anomalies", forecast_run, "--false-alarm-rate", bad,
                              "--no-evaluate", "--out", tmp_path), "--false-alarm-rate")
    one_line_error(invoke("detect-anomalies", forecast_run, "--labels", "anomaly"), "--data")
    one_line_error(invoke("detect-anomalies", forecast_run, "--data", data, "--target", "load",
                          "--labels", "month"), "0 or 1")  # fmt: skip


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    """A tiny forecast run on 160 months of a 12-step seasonal load."""
    tmp = tmp_path_factory.mktemp("anomaly")
    csv = write_series_csv(tmp / "load.csv")
    r = invoke("train", "forecast", "--data", csv, "--target", "load", "--time", "month",
               "--period", 12, "--window", 12, "--hidden", 8, "--steps", 15, "--members", 1,
               "--arima-order", "1,0,0", "--no-auto-baselines", "--no-hybrid-arima-mean",
               "--out", tmp / "fc", "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    return tmp / "fc"


def test_cli_detect_anomalies(forecast_run, tmp_path):
    r = invoke("detect-anomalies", forecast_run, "--trials", 2, "--out", tmp_path)
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "anomalies.json").read_text())
    ev = res["evaluation"]
    assert set(ev) >= {"rnnkit", "persistence residual"} and 0 <= ev["rnnkit"]["f1"] <= 1
    assert (tmp_path / "anomalies.html").exists()
    assert "checking the series" in r.stderr  # the progress bar, on stderr
    quiet = invoke("detect-anomalies", forecast_run, "--trials", 1, "--out", tmp_path, "--quiet")
    assert quiet.exit_code == 0 and "checking" not in quiet.stderr


def test_cli_detect_anomalies_bad_input(forecast_run, tmp_path):
    one_line_error(invoke("detect-anomalies", tmp_path / "nothing"), "not a directory")
    for flag, values in {"--level": (0, 1, -1, "nan", "inf", "1e30", "abc"),
                         "--trials": (0, -1, 10**9, "abc"), "--seed": (-1, 2**64, "abc"),
                         "--method": ("mad",)}.items():  # fmt: skip
        for value in values:
            r = invoke("detect-anomalies", forecast_run, flag, value, "--out", tmp_path)
            one_line_error(r, flag)



def test_one_step_scores_read_a_hybrids_own_forecast():
    import torch

    from rnnkit.data.scaling import StandardScaler
    from rnnkit.models.forecaster import HybridForecaster
    from rnnkit.tasks.forecast.hybrid import Classical

    class One(torch.nn.Module):  # corrects every lead by +1 error scale, log-variance 0
        def forward(self, x, state=None):
            return torch.cat([torch.ones(*x.shape[:2], 3), torch.zeros(*x.shape[:2], 3)], 2), state

    values = np.sin(np.arange(40) / 3.0)
    classical = Classical("AR(1)", {"kind": "ar", "params": [0.0, 0.9]})
    fc = HybridForecaster(One(), StandardScaler([0.0], [1.0]), classical, 2.0, 5, 0.9, 3)
    mean, std, e = one_step_scores(fc, values, 5)  # the hybrid has no network alone here
    c = classical.forecasts(values, np.arange(4, 39), 1)[:, 0]
    assert np.isnan(mean[0, :5]).all()
    np.testing.assert_allclose(mean[0, 5:], c + 2.0, atol=1e-6)  # classical + its correction
    np.testing.assert_allclose(std[0, 5:], 2.0, rtol=1e-5)  # error scale × the head's std 1
    np.testing.assert_allclose(e[0, 5:], (values[5:] - c - 2.0) / 2.0, rtol=1e-5, atol=1e-6)


def test_the_discord_threshold_comes_from_the_runs_test_part():
    from rnnkit.data.text import DataError

    W, rng = 8, np.random.default_rng(0)
    e = np.r_[np.full(W, np.nan), 0.3 * rng.normal(size=300)]  # the training split: fitted
    quiet = discord_reference(np.r_[e, 0.3 * rng.normal(size=100)], W, len(e))
    loud = discord_reference(np.r_[e, 0.9 * rng.normal(size=100)], W, len(e))
    assert quiet.windows.shape == loud.windows.shape == (300 - W + 1, W)  # the training split's
    # errors three times larger out of sample: a threshold about three times higher
    assert 2 < loud.threshold / quiet.threshold < 4.5
    with pytest.raises(DataError, match="test part has 5 points"):
        discord_reference(np.r_[e, np.zeros(5)], W, len(e))


def test_the_window_rule_scores_the_points_its_window_covers():
    W, rule = 16, WindowRule.for_window(16)  # L = 4: windows over [t - 2, t + 2)
    noise = 0.1 * np.random.default_rng(0).normal(size=(2, 200))
    e = np.r_[np.full(W, np.nan), noise[0]]
    e[W + 100] = 8.0  # one surprise
    ref = WindowReference(rule, window_rms(noise[1:], rule.L)[0], 1.0, 1e-5)  # a clean past
    z = window_scores(e[None], W, ref)[0]
    assert np.isnan(z[:W]).all()
    high = np.flatnonzero(z > 0.5 * np.nanmax(z))
    # the L windows holding it are scored at their centres: the surprise and a point either
    # side, and not only the L - 1 points after it
    assert high.tolist() == [W + 98, W + 99, W + 100, W + 101]
