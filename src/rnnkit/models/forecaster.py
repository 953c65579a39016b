"""A trained forecaster at work: scaled windows in, Gaussian forecasts in data units out, and
the anomalies it did not expect.

    context (B, W, 1) scaled values -> ManyToMany(LSTM/GRU, gaussian head) -> at every step t
    the mean and log-variance of the next value (recursive) or of the next H values (direct)

Recursive: one step ahead; longer horizons feed the forecast back in (the point forecast feeds
the mean; the prediction interval comes from Monte Carlo paths that feed sampled values).
Direct: the head predicts H steps at once, each with its own Gaussian.

Anomalies (`detect`), for each point t from the window on: the model forecasts y[t] from the W
values before it, with a Gaussian prediction interval. Two rules:

    interval   y[t] lies outside the `level` prediction interval (|y - mean| > z·std)
    residual   the residual y[t] - mean is an outlier against the residuals on the clean
               training part: |r - median| > z · 1.4826 · MAD

A flagged value is replaced by its forecast in the context of later points, so one anomaly
does not spill into the next forecasts and a level shift keeps being flagged while it lasts.
`persistence_detect` is the baseline detector: the persistence residual y[t] - y[t-1] with the
same robust threshold.

Used by rnnkit.tasks.forecast (`load` returns a Forecaster) and rnnkit.tasks.anomaly. Errors
name the argument (ValueError); the applications map them to their options.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import numpy as np
import torch

from ..data.scaling import StandardScaler
from ..data.series import check_length, segments
from ..data.text import DataError

Progress = Callable[[str, int, int], None]  # (what, points done, points in all)
METHODS = ("interval", "residual")


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

    `series` is the run's stored series (series.json: name, target, index, values, n_train,
    n_end), for forecasting past its end (`future`) and for anomaly detection.

    Example:
        >>> f = rnnkit.tasks.forecast.load("runs/sunspots")
        >>> mean, lo, hi = f.forecast(values, origins=np.array([len(values) - 1]), horizon=10)
        >>> f.future(12).mean
    """

    def __init__(self, model, scaler: StandardScaler, window: int, strategy: str, level: float,
                 head_horizon: int, samples: int = 200, seed: int = 0,
                 sigma_scale: list[float] | None = None, relative: bool = False,
                 series: dict[str, Any] | None = None):  # fmt: skip
        self.model, self.scaler, self.window = model.eval(), scaler, window
        self.relative, self.series = relative, series
        self.strategy, self.level, self.head_horizon = strategy, level, head_horizon
        self.samples, self.seed = samples, seed
        # multiplies the head's standard deviations (one per lead time of the head); fitted on
        # the validation part by `calibrate`, 1.0 when there was none
        self.sigma_scale = np.asarray(sigma_scale or [1.0] * head_horizon, dtype=np.float64)

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

    def future(self, horizon: int) -> FutureForecast:
        """Forecast `horizon` steps past the end of the run's stored series, with intervals.

        A recursive forecast runs the model once a step: the application bounds `horizon`
        (rnnkit.tasks.forecast, `--horizon`).
        """
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
        s = self.series
        if s is None:
            raise DataError("this forecaster has no stored series; load it from a run directory")
        values, index = np.asarray(s["values"], float), np.asarray(s["index"], float)
        check_length(len(values), self.window, "the stored series", "retrain with a shorter window")
        mean, lo, hi = self.forecast(values, np.array([len(values) - 1]), horizon)
        step = float(np.median(np.diff(index))) if len(index) > 1 else 1.0
        ahead = index[-1] + step * np.arange(1, horizon + 1)
        return FutureForecast(ahead, mean[0], lo[0], hi[0], self.level, index, values,
                              s.get("target", "value"), s.get("index_label", "step"))  # fmt: skip

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
                    f"horizon {horizon} needs a recursive model or retraining"
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


@dataclasses.dataclass
class FutureForecast:
    """Forecasts past the end of a run's series, with the history they follow."""

    index: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    history_index: np.ndarray
    history: np.ndarray
    target: str
    index_label: str


# ---- anomalies ----------------------------------------------------------------------


@dataclasses.dataclass
class Detection:
    """Per point of the series (NaN / False before the first forecastable point)."""

    flags: np.ndarray  # (N,) bool
    mean: np.ndarray  # (N,) forecasts
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray  # (N,) |residual| in units of the threshold scale


def interval_z(level: float) -> float:
    """The standard normal quantile of a central `level` interval: 0.95 -> 1.96."""
    if not 0 < level < 1:  # also refuses nan
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return NormalDist().inv_cdf(0.5 + level / 2)


@torch.no_grad()
def detect(
    fc: Forecaster,
    values: np.ndarray,
    start: int | None = None,
    level: float = 0.99,
    method: str = "interval",
    residual_scale: tuple[float, float] | None = None,
    replace: bool = True,
    max_replace: int | None = None,
    progress: Progress | None = None,
    what: str = "checking",
) -> Detection:
    """Flag anomalies in `values` (K, N) or (N,), sequentially from `start` (default W).

    residual_scale: (median, scale) of clean residuals for method "residual".
    max_replace: replace at most this many consecutive flagged values (default W // 3).
    progress: called as progress(what, t - start + 1, N - start) after each point.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    single = np.ndim(values) == 1
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    K, N = v.shape
    W = fc.window
    start = W if start is None else start
    check_length(N, W + 1, "the series", f"the model needs {W} values before the first check")
    if start < W:
        raise DataError(f"detection can start at point {W} at the earliest (the window)")
    z = interval_z(level)
    real = fc.scaler.transform(v).astype(np.float32)
    ctx = real.copy()  # contexts, with flagged values replaced
    sc_mean, sc_std = fc.scaler.mean[0], fc.scaler.std[0]
    flags = np.zeros((K, N), dtype=bool)
    run = np.zeros(K, dtype=np.int64)  # consecutive flags so far
    max_replace = max(1, W // 3) if max_replace is None else max_replace
    mean = np.full((K, N), np.nan)
    lo, hi, score = mean.copy(), mean.copy(), np.zeros((K, N))
    for t in range(start, N):
        x = torch.from_numpy(np.ascontiguousarray(ctx[:, t - W : t, None]))
        mu, sd = fc.one_step(x)  # scaled units, (K,)
        m, s = mu * sc_std + sc_mean, sd * sc_std
        mean[:, t], lo[:, t], hi[:, t] = m, m - z * s, m + z * s
        r = v[:, t] - m
        if method == "interval":
            score[:, t] = np.abs(r) / s
        else:
            med, scale = residual_scale or (0.0, 1.0)
            score[:, t] = np.abs(r - med) / scale
        flags[:, t] = score[:, t] > z
        run = np.where(flags[:, t], run + 1, 0)
        if replace:
            swap = flags[:, t] & (run <= max_replace)
            ctx[swap, t] = mu[swap]
            # a longer run of flags is a new normal (or the forecasts have drifted): put the
            # data back into the context for the whole run, so it follows the data again
            for k in np.flatnonzero(run == max_replace + 1):
                ctx[k, t - max_replace : t + 1] = real[k, t - max_replace : t + 1]
        if progress is not None:
            progress(what, t - start + 1, N - start)
    if single:
        return Detection(flags[0], mean[0], lo[0], hi[0], score[0])
    return Detection(flags, mean, lo, hi, score)


def residual_scale(fc: Forecaster, train: np.ndarray) -> tuple[float, float]:
    """(median, 1.4826·MAD) of one-step residuals on clean training data (robust sigma)."""
    W = fc.window
    origins = np.arange(W - 1, len(train) - 1)
    mu, _ = fc.one_step(fc._contexts(train, origins))
    r = train[origins + 1] - fc.scaler.inverse(mu)
    med = float(np.median(r))
    mad = float(np.median(np.abs(r - med))) * 1.4826
    return med, mad if mad > 0 else float(np.std(r) or 1.0)


def persistence_detect(
    values: np.ndarray, train: np.ndarray, start: int, level: float
) -> np.ndarray:
    """Baseline: flag |Δy - median(Δy_train)| > z·1.4826·MAD(Δy_train)."""
    z = interval_z(level)
    d = np.diff(train)
    med = float(np.median(d))
    mad = float(np.median(np.abs(d - med))) * 1.4826 or float(np.std(d) or 1.0)
    v = np.atleast_2d(values)
    flags = np.zeros(v.shape, dtype=bool)
    flags[:, start:] = np.abs(np.diff(v, axis=1)[:, start - 1 :] - med) > z * mad
    return flags if np.ndim(values) == 2 else flags[0]
