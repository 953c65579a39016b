"""Forecasting one series: windows -> a recurrent forecaster with a Gaussian head -> report.

    context (B, W, 1) scaled values -> ManyToMany(LSTM/GRU, gaussian head) -> at every step t
    the mean and log-variance of the next value (recursive) or of the next H values (direct)

Recursive: one step ahead; longer horizons feed the forecast back in (the point forecast feeds
the mean; the prediction interval comes from Monte Carlo paths that feed sampled values).
Direct: the head predicts H steps at once, each with its own Gaussian.

The series is split by time: training part, then the held-out test part (sunspots:
1921-1987 as in Zhang 2003, trained on 1700-1920; otherwise the last `test_fraction`). The last
`val_fraction` of the training part picks the best weights. The scaler is fitted on the
training part only and saved as scaler.json. Baselines are computed in the same run on the same
forecast origins: persistence, seasonal naive, AR(p) with p chosen by AIC and ARIMA
(statsmodels), all fitted on the training part only. Metrics: MAE, RMSE, MSE and MASE (scaled
by the in-sample MAE of the one-step naive forecast on the training part), per horizon.

Run directory: config.json, model.safetensors, metrics.jsonl, checkpoint/, scaler.json,
series.json (the series, for `forecast RUN`), results.json, report.html.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import torch

from ..algorithms import BPTT
from ..atomic import atomic_write_json
from ..config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig, TrainConfig
from ..data.text import DataError
from ..data.timeseries import (
    STATSMODELS_INSTALL,
    Series,
    StandardScaler,
    check_length,
    segments,
)
from ..models import build_model
from ..training import RunError, Trainer, load_run, seed_everything, write_run_json
from .report import Report, line_plot

TASK = "forecast"
STRATEGIES = ("recursive", "direct")
FRAMES = ("auto", "absolute", "relative")
MAX_STORED = 20_000  # points of the series kept in series.json for `forecast RUN`


@dataclasses.dataclass(frozen=True)
class ForecastOptions:
    """How to train and evaluate the forecaster (the CLI's options, same defaults).

    window: context length W (None: 2 periods, at least 24, at most 104).
    horizon: H, the longest lead time evaluated (and the width of the direct head).
    """

    window: int | None = None
    horizon: int = 1
    strategy: str = "recursive"
    cell: str = "lstm"
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    steps: int = 1500
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    test_fraction: float = 0.2
    val_fraction: float = 0.15
    level: float = 0.9
    samples: int = 200
    calibrate: bool = True
    frame: str = "auto"
    arima_order: tuple[int, int, int] | None = None
    seed: int = 0
    progress: bool = True


def default_window(series: Series) -> int:
    p = series.period or 12
    return int(min(104, max(24, 2 * p)))


@dataclasses.dataclass
class Split:
    """Indices into the series: train [0, n_train), test [n_train, n_end)."""

    n_train: int
    n_end: int
    n_val: int

    @property
    def test_slice(self) -> slice:
        return slice(self.n_train, self.n_end)


def split_series(series: Series, opts: ForecastOptions, W: int) -> Split:
    N = len(series)
    if series.default_test is not None:
        lo, hi = series.default_test
        n_train = int(np.searchsorted(series.index, lo))
        n_end = int(np.searchsorted(series.index, hi, side="right"))
    else:
        if not 0 < opts.test_fraction < 1:
            raise DataError(f"--test-fraction must be in (0, 1), got {opts.test_fraction}")
        n_end = N
        n_train = N - max(opts.horizon, int(round(N * opts.test_fraction)))
    n_val = int(round(n_train * opts.val_fraction)) if opts.val_fraction > 0 else 0
    H = opts.horizon if opts.strategy == "direct" else 1
    need_train = W + H + 1 + n_val
    check_length(
        n_train, need_train, f"the training part of {series.name}",
        f"use a shorter --window (now {W}) or a longer series",
    )  # fmt: skip
    if n_end - n_train < opts.horizon:
        raise DataError(
            f"the test part of {series.name} has {n_end - n_train} points, fewer than "
            f"--horizon {opts.horizon}; lower --horizon or raise --test-fraction"
        )
    return Split(n_train, n_end, n_val)


# ---- baselines (data units) -------------------------------------------------------------


def origins_for(split: Split) -> np.ndarray:
    """Forecast origins o (last observed index): every o whose o+1 is in the test part."""
    return np.arange(split.n_train - 1, split.n_end - 1)


def truth_matrix(values: np.ndarray, origins: np.ndarray, H: int, n_end: int) -> np.ndarray:
    """(M, H) targets y[o+h]; NaN where o+h is past the test part."""
    idx = origins[:, None] + np.arange(1, H + 1)[None, :]
    out = np.full(idx.shape, np.nan)
    ok = idx < n_end
    out[ok] = values[idx[ok]]
    return out


def persistence(values: np.ndarray, origins: np.ndarray, H: int) -> np.ndarray:
    """ŷ[o+h] = y[o] -> (M, H)."""
    return np.repeat(values[origins][:, None], H, axis=1)


def seasonal_naive(values: np.ndarray, origins: np.ndarray, H: int, m: int) -> np.ndarray:
    """ŷ[o+h] = y[o + h - m·ceil(h/m)]: the same point one season back -> (M, H)."""
    h = np.arange(1, H + 1)
    lag = m * np.ceil(h / m).astype(int)
    return values[origins[:, None] + h[None, :] - lag[None, :]]


def _statsmodels():
    try:
        import statsmodels  # noqa: F401
    except ImportError:
        raise DataError(f"the AR/ARIMA baselines need statsmodels; {STATSMODELS_INSTALL}") from None


def fit_ar(train: np.ndarray, max_lag: int | None = None) -> tuple[np.ndarray, int]:
    """AR(p) by OLS with p chosen by AIC (statsmodels) -> (params [const, a_1..a_p], p)."""
    _statsmodels()
    from statsmodels.tsa.ar_model import AutoReg, ar_select_order

    max_lag = max_lag or max(1, min(20, len(train) // 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = ar_select_order(train, maxlag=max_lag, ic="aic", trend="c")
        lags = sel.ar_lags or [1]
        p = int(max(lags))
        res = AutoReg(train, lags=p, trend="c").fit()
    return np.asarray(res.params, dtype=np.float64), p


def ar_forecast(params: np.ndarray, values: np.ndarray, origins: np.ndarray, H: int) -> np.ndarray:
    """Recursive AR forecasts from each origin using the observed history -> (M, H)."""
    p = len(params) - 1
    const, coef = params[0], params[1:]
    out = np.empty((len(origins), H))
    for i, o in enumerate(origins):
        hist = list(values[max(0, o - p + 1) : o + 1])
        hist = [hist[0]] * (p - len(hist)) + hist  # origins before p steps: pad (unused here)
        for h in range(H):
            y = const + float(np.dot(coef, hist[::-1][:p]))
            out[i, h] = y
            hist.append(y)
    return out


def has_unit_root(train: np.ndarray) -> bool:
    """True when an augmented Dickey-Fuller test cannot reject a unit root (p > 0.05)."""
    _statsmodels()
    from statsmodels.tsa.stattools import adfuller

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(adfuller(train, autolag="AIC")[1] > 0.05)


def arima_order_for(train: np.ndarray, p: int) -> tuple[int, int, int]:
    """(min(p, 3), d, 1) with d = 1 when an ADF test cannot reject a unit root."""
    return (max(1, min(p, 3)), 1 if has_unit_root(train) else 0, 1)


def arima_forecast(
    train: np.ndarray, values: np.ndarray, origins: np.ndarray, H: int, order: tuple[int, int, int]
) -> np.ndarray:
    """ARIMA fitted on `train` only; its parameters applied to the history at each origin."""
    _statsmodels()
    from statsmodels.tsa.arima.model import ARIMA

    trend = "c" if order[1] == 0 else "n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ARIMA(train, order=order, trend=trend).fit()
        n_end = int(origins[-1]) + 2
        full = res.apply(values[:n_end])
        if H == 1:  # one-step predictions of the filter, no refit
            pred = full.get_prediction(start=int(origins[0]) + 1, end=n_end - 1).predicted_mean
            return np.asarray(pred, dtype=np.float64)[:, None]
        out = np.empty((len(origins), H))
        for i, o in enumerate(origins):
            out[i] = res.apply(values[: o + 1]).forecast(H)
    return out


# ---- metrics ----------------------------------------------------------------------------


def mase_scale(train: np.ndarray) -> float:
    """In-sample MAE of the one-step naive forecast on the training part."""
    d = np.abs(np.diff(train))
    return float(d.mean()) if len(d) and d.mean() > 0 else 1.0


def metrics(pred: np.ndarray, truth: np.ndarray, scale: float) -> list[dict[str, float]]:
    """Per horizon h: MAE, RMSE, MSE, MASE over the origins where y[o+h] is known."""
    out = []
    for h in range(truth.shape[1]):
        ok = np.isfinite(truth[:, h])
        err = pred[ok, h] - truth[ok, h]
        mse = float(np.mean(err**2))
        mae = float(np.mean(np.abs(err)))
        out.append({"h": h + 1, "n": int(ok.sum()), "mae": mae, "rmse": math.sqrt(mse),
                    "mse": mse, "mase": mae / scale})  # fmt: skip
    return out


def coverage(lo: np.ndarray, hi: np.ndarray, truth: np.ndarray) -> list[dict[str, float]]:
    out = []
    for h in range(truth.shape[1]):
        ok = np.isfinite(truth[:, h])
        t = truth[ok, h]
        out.append({"h": h + 1, "coverage": float(np.mean((t >= lo[ok, h]) & (t <= hi[ok, h]))),
                    "width": float(np.mean(hi[ok, h] - lo[ok, h]))})  # fmt: skip
    return out


# ---- the model: training data and prediction --------------------------------------------


def training_pairs(
    z: np.ndarray, W: int, H: int, relative: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled values -> inputs (M, W, 1) and per-step targets (M, W, H): at step t the next H.

    relative: inputs and targets minus the window's last input value (a trending series then
    looks the same at every level; the model learns increments, not levels).
    """
    seg = segments(z, W + H)  # (M, W+H)
    if relative:
        seg = seg - seg[:, W - 1 : W]
    x = seg[:, :W, None]
    # targets[m, t, j] = seg[m, t + 1 + j]
    idx = np.arange(W)[:, None] + 1 + np.arange(H)[None, :]
    y = seg[:, idx]
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))


class Forecaster:
    """A trained model with its scaler and settings; forecasts in data units.

    Example:
        >>> f = Forecaster.load("runs/sunspots")
        >>> mean, lo, hi = f.forecast(values, origins=np.array([len(values) - 1]), horizon=10)
    """

    def __init__(self, model, scaler: StandardScaler, window: int, strategy: str, level: float,
                 head_horizon: int, samples: int = 200, seed: int = 0,
                 sigma_scale: list[float] | None = None, relative: bool = False):  # fmt: skip
        self.model, self.scaler, self.window = model.eval(), scaler, window
        self.relative = relative
        self.strategy, self.level, self.head_horizon = strategy, level, head_horizon
        self.samples, self.seed = samples, seed
        # multiplies the head's standard deviations (one per lead time of the head); fitted on
        # the validation part by `calibrate`, 1.0 when there was none
        self.sigma_scale = np.asarray(sigma_scale or [1.0] * head_horizon, dtype=np.float64)

    @classmethod
    def load(cls, run_dir: str | Path) -> Forecaster:
        run = load_run(run_dir)
        if run.extra.get("task") != TASK:
            raise RunError(f"{run_dir}: not a forecast run (made by `train {run.task}`)")
        e = run.extra
        scaler = StandardScaler.from_dict(run.read_json("scaler"))
        scale = None
        if (run.path / "calibration.json").exists():
            cal = run.read_json("calibration")
            try:
                scale = [float(v) for v in cal["sigma_scale"]]
            except (KeyError, TypeError, ValueError) as err:
                raise RunError(f"{run_dir}: calibration.json is not valid ({err})") from None
            if len(scale) != int(e["head_horizon"]) or min(scale) <= 0:
                raise RunError(f"{run_dir}: calibration.json does not match the model")
        return cls(run.model, scaler, int(e["window"]), e["strategy"], float(e["level"]),
                   int(e["head_horizon"]), int(e.get("samples", 200)),
                   sigma_scale=scale, relative=bool(e.get("relative", False)))  # fmt: skip

    @property
    def z(self) -> float:
        return NormalDist().inv_cdf(0.5 + self.level / 2)

    def _contexts(self, values: np.ndarray, origins: np.ndarray) -> torch.Tensor:
        W = self.window
        if int(origins.min()) < W - 1:
            raise DataError(f"a forecast needs {W} past values (the window); got fewer")
        z = self.scaler.transform(values)
        idx = origins[:, None] + np.arange(-W + 1, 1)[None, :]
        return torch.from_numpy(z[idx][..., None].astype(np.float32))  # (M, W, 1)

    def _run(self, contexts: torch.Tensor):
        """contexts (M, W, 1) scaled -> (out (M, W, 2·O) in the model's frame, state, base (M,)).

        base is what the model's frame subtracts: the last context value (relative) or 0.
        """
        base = contexts[:, -1, 0] if self.relative else torch.zeros(contexts.shape[0])
        out, state = self.model(contexts - base[:, None, None])
        return out, state, base

    @torch.no_grad()
    def head(self, contexts: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Uncalibrated mean and std of the head at the last step, scaled units, (M, O) each."""
        out, _, base = self._run(contexts)
        O = out.shape[-1] // 2
        mean = (out[:, -1, :O] + base[:, None]).double().numpy()
        return mean, torch.exp(0.5 * out[:, -1, O:]).double().numpy()

    @torch.no_grad()
    def one_step(self, contexts: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """contexts (M, W, 1) scaled -> mean, std of the next value (scaled units), (M,) each."""
        mean, std = self.head(contexts)
        return mean[:, 0], std[:, 0] * self.sigma_scale[0]

    @torch.no_grad()
    def forecast(
        self, values: np.ndarray, origins: np.ndarray, horizon: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point forecasts and `level` prediction intervals from each origin -> 3 × (M, H)."""
        x = self._contexts(values, origins)
        if self.strategy == "direct":
            if horizon > self.head_horizon:
                raise DataError(
                    f"this direct model forecasts at most {self.head_horizon} steps; "
                    f"--horizon {horizon} needs a recursive model or retraining"
                )
            mean, std = self.head(x)
            mean, std = mean[:, :horizon], std[:, :horizon] * self.sigma_scale[:horizon]
            lo, hi = mean - self.z * std, mean + self.z * std
        else:
            mean, lo, hi = self._recursive(x, horizon)
        inv = self.scaler.inverse
        return inv(mean), inv(lo), inv(hi)

    def _recursive(self, x: torch.Tensor, H: int):
        M = x.shape[0]
        out, state, base = self._run(x)  # everything below is in the model's frame
        b = base.double().numpy()[:, None]
        c = float(self.sigma_scale[0])
        mu, sd = out[:, -1, 0], c * torch.exp(0.5 * out[:, -1, 1])
        if H == 1:
            m = mu.double().numpy()[:, None] + b
            s = sd.double().numpy()[:, None]
            return m, m - self.z * s, m + self.z * s
        # point forecast: feed the mean back
        means = [mu]
        st, y = state, mu
        for _ in range(H - 1):
            o, st = self.model(y[:, None, None], st)
            y = o[:, -1, 0]
            means.append(y)
        mean = torch.stack(means, 1).double().numpy() + b
        # intervals: S sampled paths per origin
        S = self.samples
        gen = torch.Generator().manual_seed(self.seed)
        rep = _repeat_state(state, S)
        y = mu.repeat_interleave(S) + sd.repeat_interleave(S) * torch.randn(M * S, generator=gen)
        paths, st = [y], rep
        for _ in range(H - 1):
            o, st = self.model(y[:, None, None], st)
            y = o[:, -1, 0] + c * torch.exp(0.5 * o[:, -1, 1]) * torch.randn(M * S, generator=gen)
            paths.append(y)
        P = torch.stack(paths, 1).reshape(M, S, H).double().numpy() + b[:, :, None]
        a = (1 - self.level) / 2
        lo, hi = np.quantile(P, a, axis=1), np.quantile(P, 1 - a, axis=1)
        # the first step is exactly Gaussian: use the closed form there
        m0, s0 = mu.double().numpy() + b[:, 0], sd.double().numpy()
        lo[:, 0], hi[:, 0] = m0 - self.z * s0, m0 + self.z * s0
        return mean, lo, hi


@torch.no_grad()
def calibrate(fc: Forecaster, z: np.ndarray, n_fit: int) -> np.ndarray:
    """Per lead time, the factor c with mean(((y - mean) / (c·std))²) = 1 on the validation
    part z[n_fit:] (scaled units): Gaussian heads trained to convergence are overconfident on
    new data, and this is the cheapest honest fix (test data is never touched)."""
    Hh = fc.head_horizon
    origins = np.arange(max(fc.window - 1, n_fit - 1), len(z) - 1)
    idx = origins[:, None] + np.arange(-fc.window + 1, 1)[None, :]
    mean, std = fc.head(torch.from_numpy(z[idx][..., None].astype(np.float32)))
    scale = []
    for h in range(Hh):
        ok = origins + h + 1 < len(z)
        r = (z[origins[ok] + h + 1] - mean[ok, h]) / std[ok, h]
        scale.append(float(np.sqrt(np.mean(r**2))) if ok.sum() >= 5 else 1.0)
    return np.asarray(scale)


def _repeat_state(state: Any, S: int) -> Any:
    """Repeat each batch row of a state S times (batch axis: the one before the last)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.repeat_interleave(S, dim=-2)
    return type(state)(_repeat_state(s, S) for s in state)


# ---- the task ---------------------------------------------------------------------------


@dataclasses.dataclass
class ForecastResult:
    run_dir: Path
    table: dict[str, list[dict[str, float]]]  # method -> per-horizon metrics
    coverage: list[dict[str, float]]
    status: str
    seconds: float
    split: dict[str, Any]

    def row(self, method: str, h: int = 1) -> dict[str, float]:
        return self.table[method][h - 1]


def train_forecaster(
    series: Series,
    run_dir: str | Path,
    opts: ForecastOptions = ForecastOptions(),
    overwrite: bool = False,
    console: Any = None,
) -> ForecastResult:
    """Train on the training part, forecast the test part, compare with baselines, report.

    Example:
        >>> s = load_series_source("sunspots")
        >>> r = train_forecaster(s, "runs/sunspots")
        >>> r.row("rnnkit")["mse"], r.row("AR")["mse"]
    """
    if opts.strategy not in STRATEGIES:
        raise DataError(f"--strategy must be one of {STRATEGIES}, got {opts.strategy!r}")
    if opts.horizon < 1:
        raise DataError(f"--horizon must be at least 1, got {opts.horizon}")
    if not 0 < opts.level < 1:
        raise DataError(f"--level must be in (0, 1), got {opts.level}")
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    W = opts.window or default_window(series)
    if W < 2:
        raise DataError(f"--window must be at least 2, got {W}")
    sp = split_series(series, opts, W)
    H_head = opts.horizon if opts.strategy == "direct" else 1
    if opts.frame not in FRAMES:
        raise DataError(f"--frame must be one of {FRAMES}, got {opts.frame!r}")
    values = series.values
    train_vals = values[: sp.n_train]
    relative = opts.frame == "relative" or (opts.frame == "auto" and has_unit_root(train_vals))
    scaler = StandardScaler.fit(train_vals)
    if relative:  # the model sees increments: scale them, not the levels, to about 1
        scaler = StandardScaler(scaler.mean, [float(np.std(np.diff(train_vals))) or 1.0])
    z = scaler.transform(values[: sp.n_train])

    seed_everything(opts.seed)
    n_fit = sp.n_train - sp.n_val
    x_tr, y_tr = training_pairs(z[:n_fit], W, H_head, relative)
    val = None
    if sp.n_val:
        # windows whose targets end in the validation part (their contexts may start before)
        x_all, y_all = training_pairs(z, W, H_head, relative)
        first = max(0, n_fit - W - H_head + 1)
        x_v, y_v = x_all[first:], y_all[first:]
        val = [(x_v[i : i + 256], y_v[i : i + 256]) for i in range(0, len(x_v), 256)]
    M, B = len(x_tr), min(opts.batch_size, len(x_tr))

    def train_batch(step: int, gen: torch.Generator):
        idx = torch.randint(0, M, (B,), generator=gen)
        return x_tr[idx], y_tr[idx]

    cfg = ManyToManyConfig(
        InputConfig("frames", features=1),
        HeadConfig("gaussian", H_head),
        RNNConfig(opts.cell, opts.hidden_size, opts.num_layers, False, opts.dropout),
    )
    model = build_model(cfg)
    every = max(1, opts.steps // 20)
    tcfg = TrainConfig(
        steps=opts.steps, batch_size=B, lr=opts.lr, weight_decay=opts.weight_decay,
        optimizer="adamw" if opts.weight_decay else "adam", schedule="cosine",
        min_lr_ratio=0.05, eval_every=every if val else 0, log_every=every,
        monitor="mse", seed=opts.seed, progress=opts.progress,
    )  # fmt: skip
    extra = {
        "task": TASK,
        "data": series.name,
        "target": series.target,
        "window": W,
        "strategy": opts.strategy,
        "head_horizon": H_head,
        "horizon": opts.horizon,
        "level": opts.level,
        "samples": opts.samples,
        "relative": relative,
        "options": {k: v for k, v in dataclasses.asdict(opts).items() if k != "arima_order"},
    }
    trainer = Trainer(model, BPTT(), tcfg, run_dir=run_dir, extra=extra, overwrite=overwrite,
                      console=console)  # fmt: skip
    fit = trainer.fit(train_batch, val)
    write_run_json(run_dir, "scaler", scaler.to_dict())
    keep = slice(max(0, len(series) - MAX_STORED), len(series))
    write_run_json(run_dir, "series", {
        "name": series.name, "target": series.target, "index_label": series.index_label,
        "period": series.period, "gaps_filled": series.gaps_filled,
        "index": series.index[keep].tolist(), "values": values[keep].tolist(),
        "n_train": sp.n_train - keep.start, "n_end": sp.n_end - keep.start,
    })  # fmt: skip

    fc = Forecaster(load_run(run_dir).model, scaler, W, opts.strategy, opts.level, H_head,
                    opts.samples, opts.seed, relative=relative)  # fmt: skip
    if opts.calibrate and sp.n_val >= 10:
        fc.sigma_scale = calibrate(fc, z, n_fit)
        write_run_json(run_dir, "calibration", {
            "sigma_scale": fc.sigma_scale.tolist(), "n_val": sp.n_val,
            "note": "head std multiplied by this; fitted on the validation part"})  # fmt: skip

    # evaluation on the test part, from the same origins for every method
    H = opts.horizon
    origins = origins_for(sp)
    truth = truth_matrix(values, origins, H, sp.n_end)
    scale = mase_scale(train_vals)
    mean, lo, hi = fc.forecast(values, origins, H)
    preds = {"rnnkit": mean, "persistence": persistence(values, origins, H)}
    if series.period and series.period < sp.n_train:
        preds[f"seasonal naive (m={series.period})"] = seasonal_naive(
            values, origins, H, series.period
        )
    params, p = fit_ar(train_vals)
    preds[f"AR({p})"] = ar_forecast(params, values, origins, H)
    order = opts.arima_order or arima_order_for(train_vals, p)
    try:
        preds[f"ARIMA{order}"] = arima_forecast(train_vals, values, origins, H, order)
    except (ValueError, np.linalg.LinAlgError) as err:  # a failed fit is reported, not fatal
        preds[f"ARIMA{order}"] = np.full_like(mean, np.nan)
        fit_message = f"ARIMA{order} failed: {err}"
    else:
        fit_message = ""
    table = {k: metrics(v, truth, scale) for k, v in preds.items()}
    cov = coverage(lo, hi, truth)
    split_info = {
        "train": [float(series.index[0]), float(series.index[sp.n_train - 1])],
        "test": [float(series.index[sp.n_train]), float(series.index[sp.n_end - 1])],
        "n_train": sp.n_train, "n_val": sp.n_val, "n_test": sp.n_end - sp.n_train,
        "window": W, "mase_scale": scale,
        "interval_sigma_scale": [round(float(c), 4) for c in fc.sigma_scale],
        "frame": "relative" if relative else "absolute",
    }  # fmt: skip
    result = ForecastResult(run_dir, table, cov, fit.status, time.perf_counter() - t0, split_info)
    atomic_write_json(run_dir / "results.json", _clean({
        "task": TASK, "data": series.name, "target": series.target, "split": split_info,
        "gaps_filled": series.gaps_filled, "metrics": table, "interval": {
            "level": opts.level, "per_horizon": cov},
        "fit": {"status": fit.status, "message": fit.message, "steps": fit.step},
        "notes": fit_message, "seconds": round(result.seconds, 2), "options": extra["options"],
    }))  # fmt: skip
    _report(run_dir, series, sp, origins, truth, preds, lo, hi, result, opts, fit_message)
    return result


def _clean(obj: Any) -> Any:
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def metrics_rows(table: dict[str, list[dict[str, float]]], h: int) -> list[list[Any]]:
    return [[k, v[h - 1]["mae"], v[h - 1]["rmse"], v[h - 1]["mse"], v[h - 1]["mase"]]
            for k, v in table.items()]  # fmt: skip


def _report(run_dir, series, sp, origins, truth, preds, lo, hi, result, opts, note) -> None:
    from ..atomic import read_jsonl

    r = Report(f"Forecast: {Path(series.name).name} ({series.target})")
    info = dict(result.split)
    info["gaps filled (interpolated)"] = series.gaps_filled
    r.table(info)
    H = opts.horizon
    for h in sorted({1, H}):
        r.heading(f"Test metrics, {h} step{'s' if h > 1 else ''} ahead")
        r.table(metrics_rows(result.table, h), header=("method", "MAE", "RMSE", "MSE", "MASE"))
    r.paragraph(
        "All methods forecast from the same origins in the test part using only data up to "
        "the origin; baselines are fitted on the training part only. MASE divides by the "
        "in-sample MAE of the one-step naive forecast on the training part.",
        muted=True,
    )
    if note:
        r.paragraph(note, muted=True)
    r.heading(f"{opts.level:.0%} prediction intervals of rnnkit")
    r.table([[c["h"], c["coverage"], c["width"]] for c in result.coverage],
            header=("h", "coverage", "mean width"))  # fmt: skip
    r.figure(_plot(series, sp, origins, preds, lo, hi, opts.level),
             "test part: one-step forecasts and intervals")  # fmt: skip
    logs = read_jsonl(run_dir / "metrics.jsonl")
    tr = [m for m in logs if m.get("split") == "train"]
    va = [m for m in logs if m.get("split") == "val"]
    curves = {
        "train mse (scaled)": ([m["step"] for m in tr], [m.get("mse", m["loss"]) for m in tr])
    }
    if va:
        curves["val mse (scaled)"] = ([m["step"] for m in va], [m["mse"] for m in va])
    r.figure(line_plot(curves, "step", "mse", logy=True), "training")
    r.paragraph(f"training: {result.status}; {result.seconds:.1f} s", muted=True)
    r.write(run_dir / "report.html")


def _plot(series, sp, origins, preds, lo, hi, level):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8))
    n_test = sp.n_end - sp.n_train
    start = max(0, sp.n_train - 2 * n_test)
    idx, v = series.index, series.values
    ax.plot(idx[start : sp.n_end], v[start : sp.n_end], color="k", lw=1, label="observed")
    t1 = idx[origins + 1]
    ax.fill_between(t1, lo[:, 0], hi[:, 0], color="C0", alpha=0.25, label=f"{level:.0%} interval")
    ax.plot(t1, preds["rnnkit"][:, 0], color="C0", lw=1.5, label="rnnkit")
    for i, k in enumerate(k for k in preds if k != "rnnkit"):
        if k.startswith("AR(") or k == "persistence":
            ax.plot(t1, preds[k][:, 0], lw=0.9, ls="--", color=f"C{i + 1}", label=k)
    ax.axvline(idx[sp.n_train], color="grey", lw=0.8)
    ax.set_xlabel(series.index_label)
    ax.set_ylabel(series.target)
    ax.legend(fontsize=8, ncol=3)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ---- forecasting the future from a saved run --------------------------------------------


@dataclasses.dataclass
class FutureForecast:
    index: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    history_index: np.ndarray
    history: np.ndarray
    target: str
    index_label: str


def forecast_run(run_dir: str | Path, horizon: int) -> FutureForecast:
    """Forecast `horizon` steps past the end of the run's series, with intervals."""
    if horizon < 1:
        raise DataError(f"--horizon must be at least 1, got {horizon}")
    fc = Forecaster.load(run_dir)
    s = load_run_series(run_dir)
    values, index = np.asarray(s["values"], float), np.asarray(s["index"], float)
    check_length(len(values), fc.window, "the stored series", "retrain with a shorter --window")
    mean, lo, hi = fc.forecast(values, np.array([len(values) - 1]), horizon)
    step = float(np.median(np.diff(index))) if len(index) > 1 else 1.0
    future = index[-1] + step * np.arange(1, horizon + 1)
    return FutureForecast(future, mean[0], lo[0], hi[0], fc.level, index, values,
                          s.get("target", "value"), s.get("index_label", "step"))  # fmt: skip


def load_run_series(run_dir: str | Path) -> dict[str, Any]:
    from ..training.run import read_run_config  # noqa: F401  (RunError for a non-run path)

    read_run_config(run_dir)
    path = Path(run_dir) / "series.json"
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["values"], data["index"]  # noqa: B018
    except FileNotFoundError:
        raise RunError(f"{run_dir}: no series.json; not a finished forecast run") from None
    except (ValueError, KeyError, TypeError) as err:
        raise RunError(f"{path}: not a valid series file ({err})") from None
    return data


def plot_future(f: FutureForecast, context: int = 200):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(f.history_index[-context:], f.history[-context:], color="k", lw=1, label="observed")
    ax.fill_between(f.index, f.lower, f.upper, color="C0", alpha=0.25,
                    label=f"{f.level:.0%} interval")  # fmt: skip
    ax.plot(f.index, f.mean, color="C0", marker="o", ms=2, label="forecast")
    ax.set_xlabel(f.index_label)
    ax.set_ylabel(f.target)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
