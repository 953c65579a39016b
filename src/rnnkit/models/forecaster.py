"""A trained forecaster at work: scaled windows in, Gaussian forecasts in data units out, and
the anomalies it did not expect.

    context (B, W, 1 + C) scaled values (and C covariates) -> ManyToMany(LSTM/GRU, gaussian
    head) -> at every step t the mean and log-variance of the next value (recursive) or of the
    next H values (direct)

Covariates are known-past inputs: at step t the model reads y[t] and the covariates at t.
Their future is not known: a recursive forecast past lead 1 holds them at their value at the
origin (a direct forecast needs none past the origin).

Intervals are split-conformal (`calibrate`): per lead time, the normalised residual
|y - mean| / std on the validation part gives the quantile the head's std is scaled to.

Recursive: one step ahead; longer horizons feed the forecast back in (the point forecast feeds
the mean; the prediction interval comes from Monte Carlo paths that feed sampled values).
Direct: the head predicts H steps at once, each with its own Gaussian.
Hybrid (`HybridForecaster`): a direct head forecasts the errors of a classical model, and the
forecast is the classical forecast plus that correction (after ES-RNN, Smyl 2020).

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
DEFAULT_HORIZON = 12  # the steps `rnnkit forecast RUN` and serve's /forecast give unasked


def training_pairs(
    z: np.ndarray, W: int, H: int, relative: bool = False, cov: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled values (N,) and covariates (N, C) -> inputs (M, W, 1 + C) and per-step targets
    (M, W, H): at step t the next H values.

    relative: the target channel and targets minus the window's last value (a trending series
    then looks the same at every level; the model learns increments, not levels).
    """
    seg = segments(z, W + H)  # (M, W+H)
    if relative:
        seg = seg - seg[:, W - 1 : W]
    x = seg[:, :W, None]
    if cov is not None and cov.shape[1]:
        c = np.lib.stride_tricks.sliding_window_view(cov[: len(z)], W, axis=0)[: len(seg)]
        x = np.concatenate([x, np.swapaxes(c, 1, 2)], axis=2)  # (M, W, 1 + C)
    # targets[m, t, j] = seg[m, t + 1 + j]
    idx = np.arange(W)[:, None] + 1 + np.arange(H)[None, :]
    y = seg[:, idx]
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))


class MemberAverage(torch.nn.Module):
    """K trained Gaussian-head models as one: the equal-weight mixture of their forecasts,
    moment-matched to one Gaussian per output (mean of the means; variance of the mixture).

        x (B, T, F) -> out (B, T, 2·O) [means, log-variances], state = the members' states

    A recursive forecast feeds the mixture's mean back to every member, so the members stay
    on one path. Averaging independently seeded models cancels much of the seed-to-seed
    variance of one small network trained on a short series.
    """

    def __init__(self, members: list[torch.nn.Module]):
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x: torch.Tensor, state: Any = None):
        outs, states = [], []
        for k, m in enumerate(self.members):
            o, st = m(x, None if state is None else state[k])
            outs.append(o)
            states.append(st)
        out = torch.stack(outs)  # (K, B, T, 2·O)
        O = out.shape[-1] // 2
        mu, var = out[..., :O], torch.exp(out[..., O:])
        mean = mu.mean(0)
        mix = (var + mu.square()).mean(0) - mean.square()
        return torch.cat([mean, torch.log(mix.clamp_min(1e-12))], dim=-1), tuple(states)


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
                 series: dict[str, Any] | None = None,
                 cov_scaler: StandardScaler | None = None):  # fmt: skip
        self.model, self.scaler, self.window = model.eval(), scaler, window
        self.cov_scaler = cov_scaler  # None: no covariates
        self.relative, self.series = relative, series
        self.strategy, self.level, self.head_horizon = strategy, level, head_horizon
        self.samples, self.seed = samples, seed
        # multiplies the head's standard deviations (one per lead time of the head); fitted on
        # the validation part by `calibrate`, 1.0 when there was none
        self.sigma_scale = np.asarray(sigma_scale or [1.0] * head_horizon, dtype=np.float64)

    @property
    def z(self) -> float:
        return NormalDist().inv_cdf(0.5 + self.level / 2)

    @property
    def n_covariates(self) -> int:
        return 0 if self.cov_scaler is None else len(self.cov_scaler.mean)

    def _contexts(
        self, values: np.ndarray, origins: np.ndarray, cov: np.ndarray | None = None
    ) -> torch.Tensor:
        """values (N,) and covariates (N, C) in data units -> scaled contexts (M, W, 1 + C)."""
        W = self.window
        if int(origins.min()) < W - 1:
            raise DataError(f"a forecast needs {W} past values (the window); got fewer")
        if (cov is None) != (self.cov_scaler is None):
            raise DataError("this model was trained with covariates; pass them" if cov is None
                            else "this model was trained without covariates")  # fmt: skip
        z = self.scaler.transform(values)
        idx = origins[:, None] + np.arange(-W + 1, 1)[None, :]
        x = z[idx][..., None]
        if cov is not None:
            x = np.concatenate([x, self.cov_scaler.transform(cov)[idx]], axis=2)
        return torch.from_numpy(x.astype(np.float32))  # (M, W, 1 + C)

    def _run(self, contexts: torch.Tensor):
        """contexts (M, W, 1 + C) scaled -> (out (M, W, 2·O) in the model's frame, state,
        base (M,)).

        base is what the model's frame subtracts from the target channel: the last context
        value (relative) or 0.
        """
        base = contexts[:, -1, 0] if self.relative else torch.zeros(contexts.shape[0])
        x = contexts.clone()
        x[..., 0] -= base[:, None]
        out, state = self.model(x)
        return out, state, base

    @torch.no_grad()
    def head(self, contexts: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Uncalibrated mean and std of the head at the last step, scaled units, (M, O) each."""
        out, _, base = self._run(contexts)
        O = out.shape[-1] // 2
        mean = (out[:, -1, :O] + base[:, None]).double().numpy()
        return mean, torch.exp(0.5 * out[:, -1, O:]).double().numpy()

    def head_targets(self, values: np.ndarray, origins: np.ndarray, n_end: int) -> np.ndarray:
        """What the head forecasts from each origin, in its units -> (M, O): the scaled
        values y[o+1..o+O] (NaN at or past n_end)."""
        return truth_matrix(self.scaler.transform(values), origins, self.head_horizon, n_end)

    @torch.no_grad()
    def one_step(self, contexts: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """contexts (M, W, 1) scaled -> mean, std of the next value (scaled units), (M,) each."""
        mean, std = self.head(contexts)
        return mean[:, 0], std[:, 0] * self.sigma_scale[0]

    def reach(self) -> int | None:
        """How many steps `forecast` reaches: a direct head's width, or any number (None)."""
        return None if self.strategy == "recursive" else self.head_horizon

    def default_horizon(self) -> int:
        """The steps to forecast when none are asked: DEFAULT_HORIZON, or fewer when the
        model reaches fewer (a direct run trained with a shorter --horizon)."""
        reach = self.reach()
        return DEFAULT_HORIZON if reach is None else min(DEFAULT_HORIZON, reach)

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
        cov = None if s.get("covariates") is None else np.asarray(s["covariates"], float)
        check_length(len(values), self.window, "the stored series", "retrain with a shorter window")
        mean, lo, hi = self.forecast(values, np.array([len(values) - 1]), horizon, cov)
        step = float(np.median(np.diff(index))) if len(index) > 1 else 1.0
        ahead = index[-1] + step * np.arange(1, horizon + 1)
        return FutureForecast(ahead, mean[0], lo[0], hi[0], self.level, index, values,
                              s.get("target", "value"), s.get("index_label", "step"))  # fmt: skip

    @torch.no_grad()
    def forecast(
        self, values: np.ndarray, origins: np.ndarray, horizon: int,
        cov: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point forecasts and `level` prediction intervals from each origin -> 3 × (M, H).
        cov: (N, C) covariates beside `values`, for a model trained with them."""
        x = self._contexts(values, origins, cov)
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
        held = x[:, -1, 1:]  # covariates at the origin, held for later lead times (M, C)

        def step(y: torch.Tensor) -> torch.Tensor:  # (K,) fed back -> (K, 1, 1 + C) inputs
            h = held.repeat_interleave(len(y) // M, dim=0)
            return torch.cat([y[:, None], h], dim=1)[:, None, :]

        if H == 1:
            m = mu.double().numpy()[:, None] + b
            s = sd.double().numpy()[:, None]
            return m, m - self.z * s, m + self.z * s
        # point forecast: feed the mean back
        means = [mu]
        st, y = state, mu
        for _ in range(H - 1):
            o, st = self.model(step(y), st)
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
            o, st = self.model(step(y), st)
            y = o[:, -1, 0] + c * torch.exp(0.5 * o[:, -1, 1]) * torch.randn(M * S, generator=gen)
            paths.append(y)
        P = torch.stack(paths, 1).reshape(M, S, H).double().numpy() + b[:, :, None]
        a = (1 - self.level) / 2
        lo, hi = np.quantile(P, a, axis=1), np.quantile(P, 1 - a, axis=1)
        # the first step is exactly Gaussian: use the closed form there
        m0, s0 = mu.double().numpy() + b[:, 0], sd.double().numpy()
        lo[:, 0], hi[:, 0] = m0 - self.z * s0, m0 + self.z * s0
        return mean, lo, hi


def conformal_minimum(level: float) -> int:
    """The fewest calibration points whose split-conformal quantile reaches `level`: the
    ceil((n + 1)·level)-th smallest of n scores exists only when n >= level / (1 - level)
    (0.9 -> 9, 0.95 -> 19)."""
    return int(np.ceil(level / (1 - level) - 1e-9))


@torch.no_grad()
def calibrate(
    fc: Forecaster, values: np.ndarray, n_fit: int, n_end: int, cov: np.ndarray | None = None
) -> tuple[np.ndarray, list[int]]:
    """Split-conformal interval widths: per lead time h of the head, the factor c such that
    mean ± z·c·std covers the ceil((n+1)·level)-th smallest normalised residual
    |y - mean| / std on the calibration part values[n_fit:n_end] (data units; test data is
    never touched). With fewer than `conformal_minimum(level)` points the largest residual is
    used (the caller warns). Returns (c per lead time, calibration points per lead time)."""
    Hh = fc.head_horizon
    origins = np.arange(max(fc.window - 1, n_fit - 1), n_end - 1)
    mean, std = fc.head(fc._contexts(values, origins, cov))
    target = fc.head_targets(values, origins, n_end)
    scale, counts = [], []
    for h in range(Hh):
        ok = np.isfinite(target[:, h])
        r = np.sort(np.abs(target[ok, h] - mean[ok, h]) / std[ok, h])
        n = len(r)
        counts.append(n)
        if n == 0:
            scale.append(1.0)
            continue
        k = min(n, int(np.ceil((n + 1) * fc.level)))
        scale.append(float(r[k - 1]) / fc.z if r[k - 1] > 0 else 1.0)
    return np.asarray(scale), counts


def truth_matrix(z: np.ndarray, origins: np.ndarray, H: int, n_end: int) -> np.ndarray:
    """(M, H): z[o+1..o+H] for each origin o (the targets of forecasts from o), NaN at or
    past n_end."""
    idx = origins[:, None] + np.arange(1, H + 1)[None, :]
    out = np.full(idx.shape, np.nan)
    ok = idx < n_end
    out[ok] = z[idx[ok]]
    return out


class HybridForecaster(Forecaster):
    """The network corrects a classical forecaster (rnnkit.tasks.forecast.hybrid.Classical;
    after ES-RNN, Smyl 2020): a direct head forecasts the classical model's errors at lead
    times 1..O, from the window's levels and the classical model's one-step errors.

        context (M, W, 2 + C): [scaled level (minus the window's last one when relative),
        one-step error e[t] = y[t] - c_{t-1}(1) divided by s, covariates]
        -> head at step t: mean and log-variance of (y[t+j] - c_t(j)) / s, j = 1..O
        forecast in data units: c_o(j) + s · mean, interval c_o(j) + s · (mean ± z·std)

    s (`error_scale`) is the standard deviation of the one-step errors on the training part.
    `weight` w shrinks the correction, c_o(j) + w · s · mean: 1 the hybrid, 0.5 the mean of the
    hybrid and its classical forecast (a forecast combination, the strong default of M4), 0
    the classical forecast alone (the head then only gives the interval widths).
    `partner` (a second classical forecaster, AutoARIMA: --hybrid-arima-mean) with
    `partner_leads` (H booleans): at those lead times the forecast is the mean of the hybrid's
    and the partner's, the interval shifted with it (its width is the hybrid's).
    Forecasts reach at most O steps (`head_horizon`). One-step anomaly detection reads
    `network`, the network-alone forecaster trained beside the hybrid (`pointwise`).
    """

    def __init__(self, model, scaler: StandardScaler, classical, error_scale: float,
                 window: int, level: float, head_horizon: int, *, relative: bool = False,
                 weight: float = 1.0, partner=None, partner_leads=None, **kwargs):  # fmt: skip
        super().__init__(model, scaler, window, "direct", level, head_horizon, **kwargs)
        # the level channel's frame; the head's outputs are errors, never shifted by a level
        self.level_relative, self.classical, self.error_scale = relative, classical, error_scale
        self.weight = weight
        self.partner, self.partner_leads = partner, partner_leads
        self.network: Forecaster | None = None

    def head(self, contexts: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The corrections (M, O) the forecast adds, w · the head's mean, and the head's std
        (the calibration and the forecast both read this)."""
        mean, std = super().head(contexts)
        return self.weight * mean, std

    def _contexts(self, values, origins, cov=None) -> torch.Tensor:
        x = super()._contexts(values, origins, cov)  # [level, covariates]
        if self.level_relative:
            x[..., 0] -= x[:, -1:, 0]
        e = self.classical.errors(np.asarray(values[: int(origins.max()) + 1], np.float64))
        idx = origins[:, None] + np.arange(-self.window + 1, 1)[None, :]
        err = torch.from_numpy((e[idx] / self.error_scale).astype(np.float32))[..., None]
        return torch.cat([x[..., :1], err, x[..., 1:]], dim=2)

    def head_targets(self, values, origins, n_end) -> np.ndarray:
        c = self.classical.forecasts(values, origins, self.head_horizon)
        return (truth_matrix(values, origins, self.head_horizon, n_end) - c) / self.error_scale

    def one_step(self, contexts):
        raise DataError("a hybrid forecasts from the classical model's errors, not from "
                        "contexts alone: use its network-alone forecaster (`pointwise`)")

    def reach(self) -> int | None:
        """How many steps `forecast` reaches: the head's width, or any number (None) when the
        network alone is recursive and takes over past that width."""
        net = self.network
        if net is not None and net.strategy == "recursive":
            return None
        return max(self.head_horizon, 0 if net is None else net.head_horizon)

    @torch.no_grad()
    def forecast(self, values, origins, horizon, cov=None):
        """The classical forecast plus the head's correction, up to the head's width; past it,
        the network-alone forecaster's whole forecast when it reaches that far (`reach`)."""
        net = self.network
        if horizon > self.head_horizon and net is not None and (
                net.strategy == "recursive" or horizon <= net.head_horizon):
            return net.forecast(values, origins, horizon, cov)
        if horizon > self.head_horizon:
            raise DataError(f"this hybrid model forecasts at most {self.head_horizon} steps; "
                            f"horizon {horizon} needs retraining with --horizon {horizon} "
                            "(or --hybrid off)")
        mean, std = self.head(self._contexts(values, origins, cov))
        c = self.classical.forecasts(values, origins, horizon)
        s = self.error_scale
        m = c + s * mean[:, :horizon]
        half = self.z * s * std[:, :horizon] * self.sigma_scale[:horizon]
        leads = np.asarray(self.partner_leads if self.partner is not None else [], bool)
        cols = np.flatnonzero(leads[:horizon])
        if len(cols):  # the mean with the partner's forecast at its lead times
            p = self.partner.forecasts(values, origins, int(cols[-1]) + 1)
            m[:, cols] = 0.5 * (m[:, cols] + p[:, cols])
        return m, m - half, m + half


def pointwise(fc: Forecaster) -> Forecaster:
    """The forecaster one-step anomaly detection reads: fc, or a hybrid's network alone
    (DataError when the hybrid was trained without one, --hybrid on)."""
    if not isinstance(fc, HybridForecaster):
        return fc
    if fc.network is None:
        raise DataError("this run is a hybrid trained with --hybrid on: anomaly detection needs "
                        "the network alone; train with --hybrid auto or off")  # fmt: skip
    return fc.network


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
    threshold: float | None = None,
) -> Detection:
    """Flag anomalies in `values` (K, N) or (N,), sequentially from `start` (default W).

    residual_scale: (median, scale) of clean residuals for method "residual".
    max_replace: replace at most this many consecutive flagged values (default W // 3).
    threshold: flag scores above this (default: the `level` normal quantile; see
    `training_threshold` for one that sets the false-alarm rate on the training part).
    progress: called as progress(what, t - start + 1, N - start) after each point.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    fc = pointwise(fc)
    if fc.n_covariates:
        raise DataError("anomaly detection reads one series; this run was trained with "
                        "covariates: train one without --covariates")  # fmt: skip
    single = np.ndim(values) == 1
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    K, N = v.shape
    W = fc.window
    start = W if start is None else start
    check_length(N, W + 1, "the series", f"the model needs {W} values before the first check")
    if start < W:
        raise DataError(f"detection can start at point {W} at the earliest (the window)")
    z = interval_z(level) if threshold is None else threshold
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


def training_threshold(
    fc: Forecaster, train: np.ndarray, rate: float, method: str = "interval",
    residual_scale: tuple[float, float] | None = None,
) -> float:
    """The score threshold that flags a fraction `rate` of the (clean) training part's
    one-step scores: the false-alarm rate on training data, whatever the scores'
    distribution (the Gaussian `level` rule assumes the head's intervals are calibrated)."""
    if not 0 < rate < 1:
        raise ValueError(f"rate must be in (0, 1), got {rate!r}")
    d = detect(fc, train, fc.window, 0.5, method, residual_scale, replace=False)
    return float(np.quantile(d.score[fc.window :], 1 - rate))


def residual_scale(fc: Forecaster, train: np.ndarray) -> tuple[float, float]:
    """(median, 1.4826·MAD) of one-step residuals on clean training data (robust sigma)."""
    fc = pointwise(fc)
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
