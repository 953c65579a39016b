"""The forecast Task: split, scale, windows, model, calibration, baselines, and the loaded
Forecaster.

The series is split by time: training part, then the held-out test part (sunspots:
1921-1987 as in Zhang 2003, trained on 1700-1920; otherwise the last `test_fraction`). The last
`val_fraction` of the training part picks the best weights and calibrates the intervals. The
scaler is fitted on the training part only.

A run directory holds, besides the Trainer's files: `scaler.json`, `forecaster.json` (window,
strategy, frame; a hybrid's classical part and error scale), `series.json` (the series, for
`forecast RUN` and `detect-anomalies`), `calibration.json`, `results.json` and
`report.html`. With several members (`member_count`), member 0 is the run directory itself
and members 1.. are full run directories in member-<k>/; `load` averages them
(MemberAverage). A hybrid run chosen over the network alone keeps the network alone in
network/ (a run directory of its own, for one-step anomaly detection).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...algorithms import BPTT
from ...data.scaling import StandardScaler
from ...data.series import VEGA_SERIES, Series, check_length, detect_period, load_series_source
from ...data.text import DataError
from ...models.classical import baseline_forecasts, has_unit_root
from ...models.forecaster import (
    Forecaster,
    FutureForecast,
    HybridForecaster,
    MemberAverage,
    calibrate,
    conformal_minimum,
    training_pairs,
    truth_matrix,
)
from .. import driver, entry_points
from ..metrics import coverage, mase_scale, metrics, origins_for
from ..options import CELL_FAMILIES, check_value, field_specs
from ..task import Fitted, Task
from .arima_mean import arima_fits, lead_choice
from .hybrid import Classical, choose
from .options import NAME, ForecastOptions
from .report import metrics_rows, write_sections

MAX_STORED = 20_000  # points of the series kept in series.json for `forecast RUN`


def default_window(period: int | None) -> int:
    return int(min(104, max(24, 2 * (period or 12))))


@dataclass
class ForecastData:
    """The series, its split (train [0, n_train), of which the last n_val validate; test
    [n_train, n_end)), the scaler and the scaled training windows."""

    series: Series
    n_train: int
    n_end: int
    n_val: int
    window: int
    head_horizon: int
    relative: bool
    scaler: StandardScaler
    cov_scaler: StandardScaler | None  # the covariates' (None: no covariates)
    period: int | None  # given, or detected from the training part
    z: np.ndarray  # the training part, scaled
    x: torch.Tensor  # (M, W, 1 + C) training contexts
    y: torch.Tensor  # (M, W, head_horizon) targets
    summary: dict[str, Any]
    members: int = 1  # models averaged (member_count)
    classical: Classical | None = None  # a hybrid's classical part (None: the network alone)
    refit_classical: Classical | None = None  # a hybrid's, refitted on the whole training part
    error_scale: float = 1.0  # a hybrid's: the std of the classical one-step errors
    # a hybrid's share of the network's correction, one or per lead time (HybridForecaster)
    weight: float | np.ndarray = 1.0
    # --hybrid-arima-mean: AutoARIMA fitted as `classical` and as `refit_classical`, and the
    # lead times whose forecast is the mean of the hybrid's and its (None: the hybrid alone)
    partner: Classical | None = None
    refit_partner: Classical | None = None
    partner_leads: list[bool] | None = None


def data_pairs(data: ForecastData, n: int, train: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows of values[:n] -> inputs (M, W, F) and per-step targets (M, W, O): the
    network alone reads [level, covariates] and forecasts the next values; a hybrid reads
    [level, classical one-step error / s, covariates] and forecasts the classical model's
    errors (rnnkit.models.forecaster.HybridForecaster). train: a hybrid's windows that start
    after its classical model's `burn_in` only (what it trains on)."""
    zc = None
    if data.cov_scaler is not None:
        zc = data.cov_scaler.transform(data.series.covariates[:n])
    W, Hh, c = data.window, data.head_horizon, data.classical
    if c is None:
        return training_pairs(data.z[:n], W, Hh, data.relative, zc)
    values = data.series.values[:n]
    err = (c.errors(values) / data.error_scale)[:, None]
    x, _ = training_pairs(data.z[:n], W, Hh, data.relative,
                          err if zc is None else np.concatenate([err, zc], axis=1))  # fmt: skip
    origins = np.arange(n - Hh)
    ahead = values[origins[:, None] + np.arange(1, Hh + 1)[None, :]]
    r = (ahead - c.forecasts(values, origins, Hh)) / data.error_scale  # (n - Hh, Hh)
    idx = np.arange(len(x))[:, None] + np.arange(W)[None, :]  # origin of step t of window m
    first = min(burn_in(c.spec), len(x) - 1) if train else 0
    return x[first:], torch.from_numpy(r[idx[first:]].astype(np.float32))


def burn_in(spec: dict[str, Any]) -> int:
    """How many first points a classical model's one-step errors are its initialisation,
    not the series: a state-space model's differenced (diffuse) states, d + D·s; a
    combination's, the longest of its parts'; none for AR(p), ETS and an undifferenced
    ARIMA, whose first errors are of the size of the later ones (sunspots, nile). A
    SARIMA(2,1,1)(1,1,1)24's error at t = 24 is 75 standard deviations (sf-temps): left in,
    the first season set the hybrid's error scale and its training windows, and one such
    window blew its training up."""
    if spec["kind"] in ("combination", "per_lead"):
        return max(burn_in(part["spec"]) for part in spec["parts"])
    if spec["kind"] == "sarimax":
        (_, d, _), (_, D, _, s) = spec["order"], spec["seasonal"]
        return d + D * s
    return 0


# the hybrid's shares of the network's correction tried on validation (HybridForecaster.weight);
# 1 first: a tie keeps the hybrid
WEIGHTS = (1.0, 0.5, 0.0)
MEMBER_EPOCHS = 40  # passes over the training windows a member needs (see member_count)


def member_count(o: ForecastOptions, n_windows: int) -> int:
    """How many models share the step budget: --members, fewer when each would get under
    MEMBER_EPOCHS passes over the training windows (on sunspots and nile the validation part
    chose 20-60 passes; a long series, co2, gets fewer than 40 from the whole budget, and
    splitting it would leave every member under-trained)."""
    batch = min(o.batch, n_windows)
    epochs = o.total_steps(math.ceil(n_windows / batch)) * batch / n_windows
    return int(max(1, min(o.members, epochs // MEMBER_EPOCHS)))


def split_series(series: Series, o: ForecastOptions, W: int) -> tuple[int, int, int]:
    """(n_train, n_end, n_val); DataError when a part is too short for the window/horizon."""
    N = len(series)
    if series.default_test is not None:
        lo, hi = series.default_test
        n_train = int(np.searchsorted(series.index, lo))
        n_end = int(np.searchsorted(series.index, hi, side="right"))
    else:
        n_end = N
        n_train = N - max(o.horizon, int(round(N * o.test_fraction)))
    n_val = int(round(n_train * o.val_fraction)) if o.val_fraction > 0 else 0
    H = o.horizon if o.strategy == "direct" else 1
    check_length(n_train, W + H + 1 + n_val, f"the training part of {series.name}",
                 f"use a shorter window (now {W}) or a longer series")  # fmt: skip
    if n_end - n_train < o.horizon:
        raise DataError(
            f"the test part of {series.name} has {n_end - n_train} points, fewer than the "
            f"horizon {o.horizon}; lower the horizon or raise the test fraction"
        )
    return n_train, n_end, n_val


class StepCounting(BPTT):
    """BPTT whose results count optimiser steps, so the progress bar's "steps/s" is updates
    per second (the model counts time steps: B·W of them a batch). Every batch has the same
    size, so the logged mean loss is unchanged."""

    def train_batch(self, model, batch, update):
        result = super().train_batch(model, batch, update)
        return dataclasses.replace(result, count=1, unit="steps")


class RunForecaster(Forecaster):
    """What `load` returns: a Forecaster whose `future` bounds its horizon as --horizon is
    bounded (OptionError; a recursive forecast runs the model once a step, so a million steps
    would not finish)."""

    time_column: str | None = None  # the columns a new CSV must have (use_data)
    covariate_names: tuple[str, ...] = ()

    def future(self, horizon: int) -> FutureForecast:
        check_value(*HORIZON, horizon)
        return super().future(horizon)

    def use_data(self, path) -> None:
        """Forecast past the end of this CSV from now on (`forecast RUN --data`): the run's
        target, time and covariate columns; DataError when one is missing or the file is
        shorter than the window."""
        from ...data.series import load_series_csv

        assert self.series is not None  # load() always sets it
        s = load_series_csv(path, self.series["target"], self.time_column, None,
                            self.covariate_names)  # fmt: skip
        check_length(len(s), self.window, str(path),
                     f"the model reads the last {self.window} values")  # fmt: skip
        self.series = {**self.series, "name": s.name, "index": s.index.tolist(),
                       "values": s.values.tolist(), "index_label": s.index_label,
                       "covariates": None if s.covariates is None else s.covariates.tolist()}


class RunHybridForecaster(RunForecaster, HybridForecaster):
    """What `load` returns for a hybrid run (RunForecaster's checks, HybridForecaster's
    forecasts)."""


HORIZON = next(spec for spec in field_specs(ForecastOptions) if spec[0].name == "horizon")


@dataclass
class ForecastFitted(Fitted):
    forecaster: Forecaster | None = None


class ForecastTask(Task):
    name = NAME
    title = "Forecasting"
    options = ForecastOptions

    def prepare(self, o: ForecastOptions) -> ForecastData:
        series = load_series_source(o.data or "sunspots", o.target, o.time, o.period,
                                    o.covariate_names(), o.series)  # fmt: skip
        # the period from the training part alone (the test part is not yet known, so detect
        # on all but the default test fraction; the split below uses the same tail)
        n_guess = len(series) - max(o.horizon, int(round(len(series) * o.test_fraction)))
        if series.default_test is not None:
            n_guess = int(np.searchsorted(series.index, series.default_test[0]))
        period = o.period or detect_period(series.values[: max(n_guess, 2)])
        series.period = period
        W = o.window or default_window(period)
        n_train, n_end, n_val = split_series(series, o, W)
        train = series.values[:n_train]
        if np.ptp(train) == 0:
            raise DataError(f"{series.name}: the training part is constant ({train[0]:g} "
                            "throughout); there is nothing to forecast")  # fmt: skip
        relative = o.frame == "relative" or (o.frame == "auto" and has_unit_root(train))
        scaler = StandardScaler.fit(train)
        if relative:  # the model sees increments: scale them, not the levels, to about 1
            scaler = StandardScaler(scaler.mean, [float(np.std(np.diff(train))) or 1.0])
        z = scaler.transform(train)
        cov_scaler, zc = None, None
        if series.covariates is not None:
            cov_scaler = StandardScaler.fit(series.covariates[:n_train])
            zc = cov_scaler.transform(series.covariates[:n_train])
        head = o.horizon if o.strategy == "direct" else 1
        x, y = training_pairs(z[: n_train - n_val], W, head, relative, zc)
        if o.hybrid == "on" and not n_val:
            raise DataError("--hybrid on chooses its classical part on the validation part: "
                            "give --val-fraction > 0")  # fmt: skip
        idx = series.index
        summary = {
            "source": series.name, "target": series.target, "gaps_filled": series.gaps_filled,
            "train": [float(idx[0]), float(idx[n_train - 1])],
            "test": [float(idx[n_train]), float(idx[n_end - 1])],
            "n_train": n_train, "n_val": n_val, "n_test": n_end - n_train, "window": W,
            "frame": "relative" if relative else "absolute", "period": period,
            "period_detected": o.period is None, "covariates": list(series.covariate_names),
        }  # fmt: skip
        summary["members"] = member_count(o, len(x))
        return ForecastData(series, n_train, n_end, n_val, W, head, relative, scaler,
                            cov_scaler, period, z, x, y, summary, summary["members"])  # fmt: skip

    def build(self, o: ForecastOptions, data: ForecastData):
        from ...config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig
        from ...models import build_model

        extra = 0 if data.classical is None else 1  # a hybrid's classical-error channel
        return build_model(ManyToManyConfig(
            InputConfig("frames", features=1 + extra + len(data.series.covariate_names)),
            HeadConfig("gaussian", data.head_horizon),
            RNNConfig(CELL_FAMILIES[o.cell], o.hidden, o.layers, False, o.dropout),
        ))  # fmt: skip

    def files(self, o: ForecastOptions, data: ForecastData) -> dict[str, Any]:
        s, keep = data.series, slice(max(0, len(data.series) - MAX_STORED), len(data.series))
        return {
            "scaler.json": data.scaler.to_dict(),
            "forecaster.json": {"window": data.window,
                                "strategy": o.strategy if data.classical is None else "direct",
                                "head_horizon": data.head_horizon, "level": o.level,
                                "samples": o.samples, "seed": o.seed,
                                "members": data.members,
                                "relative": data.relative,
                                "covariates": list(s.covariate_names),
                                "cov_scaler": None if data.cov_scaler is None
                                else data.cov_scaler.to_dict(),
                                "time": VEGA_SERIES[o.data][1] if o.data in VEGA_SERIES
                                else o.time,
                                "hybrid": None if data.classical is None else {
                                    "classical": dataclasses.asdict(data.classical),
                                    "error_scale": data.error_scale,
                                    "weight": weight_json(data.weight),
                                    "arima_mean": None if data.partner is None else {
                                        "classical": dataclasses.asdict(data.partner),
                                        "leads": data.partner_leads}}},
            "series.json": {"name": s.name, "target": s.target, "index_label": s.index_label,
                            "period": s.period, "gaps_filled": s.gaps_filled,
                            "index": s.index[keep].tolist(), "values": s.values[keep].tolist(),
                            "covariates": None if s.covariates is None
                            else s.covariates[keep].tolist(),
                            "n_train": data.n_train - keep.start,
                            "n_end": data.n_end - keep.start},
        }  # fmt: skip

    def train_config(self, o: ForecastOptions, data: ForecastData):

        batch = min(o.batch, len(data.x))
        # one member's share of the budget: the ensemble costs what one model did
        steps = max(1, o.total_steps(math.ceil(len(data.x) / batch)) // data.members)
        minutes = None if o.minutes is None else o.minutes / data.members
        every = max(1, min(steps, 2000) // 20)  # 20 log lines (about every 100 under --minutes)
        return o.train_config(
            steps, time_minutes=minutes, batch_size=batch, schedule="cosine", min_lr_ratio=0.05,
            eval_every=every if data.n_val else 0, log_every=every, monitor="mse",
        )  # fmt: skip

    def algorithm(self, o: ForecastOptions):
        return StepCounting()

    def batches(self, o: ForecastOptions, data: ForecastData):
        x, y, batch = data.x, data.y, min(o.batch, len(data.x))

        def train_batch(step: int, gen: torch.Generator):
            idx = torch.randint(0, len(x), (batch,), generator=gen)
            return x[idx], y[idx]

        if not data.n_val:
            return train_batch, None
        # windows whose targets end in the validation part (their contexts may start before)
        x_all, y_all = data_pairs(data, data.n_train)
        first = max(0, data.n_train - data.n_val - data.window - data.head_horizon + 1)
        x_v, y_v = x_all[first:], y_all[first:]
        return train_batch, [(x_v[i : i + 256], y_v[i : i + 256]) for i in range(0, len(x_v), 256)]

    def _members(self, ctx, data: ForecastData, out, stops: list[int] | None = None):
        """Train the data.members models into member_dir(out, k), member k seeded
        member_seed(--seed, k) -> their Fitted. `stops` (the refit): member k stops after
        stops[k] updates, on the same learning-rate schedule, with no validation (its last
        weights are kept). Stops the ensemble at Ctrl-C / SIGTERM."""
        from ...training import Callback, seed_everything

        class StopAt(Callback):
            def __init__(self, step: int):
                self.step = step

            def on_step_end(self, trainer, logs) -> None:
                trainer.should_stop = trainer.should_stop or trainer.state.step >= self.step

        o, fits = ctx.options, []
        for k in range(data.members):
            seed = driver.member_seed(o.seed, k)
            config = dataclasses.replace(ctx.config, seed=seed)
            if stops is not None:
                config = dataclasses.replace(config, eval_every=0)
            if k > 0 or stops is not None:
                seed_everything(seed)
            member = dataclasses.replace(
                ctx, model=ctx.model if k == 0 and stops is None else self.build(o, data),
                config=config, out=driver.member_dir(out, k), data=data,
            )  # fmt: skip
            if data.members > 1 or stops is not None:
                what = "refit on the whole training part:" if stops is not None else ""
                ctx.say(f"{what} member {k + 1} of {data.members} (seed {seed})".lstrip())
            callbacks = () if stops is None else (StopAt(stops[k]),)
            fits.append(driver.fit_one(self, member, callbacks))
            if fits[-1].result.status == "interrupted":
                ctx.say(f"stopped after member {k + 1} of {data.members}")
                break
        return fits

    def fit(self, ctx) -> ForecastFitted:
        """The candidates (--hybrid auto: the network alone and the hybrid, each an ensemble
        of members whose forecasts are averaged), the one with the lower MASE over the lead
        times on the validation part, then the split-conformal interval calibration on the
        validation part (a warning when it has too few points for the level), then (--refit)
        each member retrained with its seed on the whole training part, validation included,
        for the number of updates the validation part chose for it (a hybrid's classical part
        refitted there too); the calibration is kept."""
        import shutil

        from ...training import seed_everything, write_run_json

        o, data = ctx.options, ctx.data
        refit = o.refit and data.n_val > 0
        kinds = {"off": ["network"], "on": ["hybrid"]}.get(
            o.hybrid, ["network", "hybrid"] if refit else ["network"])
        # with a refit, the validation-stage members are scratch: the refit ones are saved
        stage = ctx.out / "validation-stage" if refit else ctx.out
        tried: dict[str, tuple[ForecastData, list[Fitted], Forecaster]] = {}
        for kind in kinds:
            d, model = data, ctx.model
            if kind == "hybrid":
                d = self.hybrid_data(ctx, data)
                seed_everything(o.seed)
                model = self.build(o, d)
            where = stage / kind if len(kinds) > 1 else stage
            fits = self._members(dataclasses.replace(ctx, model=model), d, where)
            fc = self.forecaster(o, d, ensemble(fits).model)
            if kind == "hybrid" and d.n_val:
                d = dataclasses.replace(d, weight=self.correction_weight(fc, d, o.horizon,
                                                                         o.hybrid_weight))
                fc.weight = d.weight
                if o.hybrid_arima_mean:
                    d = self.arima_mean(ctx, fc, d)
            tried[kind] = (d, fits, fc)
            if fits[-1].result.status == "interrupted":
                break
        scores = {k: validation_mase(fc, d, o.horizon) for k, (d, _, fc) in tried.items()
                  if d.n_val}  # fmt: skip
        # an interrupted run keeps what it had trained last
        chosen = min(scores, key=scores.get) if len(tried) == len(kinds) > 1 else list(tried)[-1]
        data.summary.setdefault("model", {}).update(chosen=chosen, validation_mase=scores)
        if len(tried) > 1:
            ctx.say("validation MASE over the lead times: " + ", ".join(
                f"{k} {v:.3f}" for k, v in scores.items()) + f"; keeping the {chosen}")
        fitted, fc = self._finish(ctx, *tried[chosen], ctx.out, refit)
        if chosen == "hybrid":  # its weight was chosen after its files were written
            d = dataclasses.replace(tried[chosen][0], classical=fc.classical,  # refitted or not
                                    partner=fc.partner)  # fmt: skip
            write_run_json(ctx.out, "forecaster", self.files(o, d)["forecaster.json"])
        if chosen == "hybrid" and "network" in tried:
            # one-step anomaly detection reads the network alone: it is kept in network/
            _, fc.network = self._finish(ctx, *tried["network"], ctx.out / "network", refit)
        if refit and fitted.result.status != "interrupted":
            shutil.rmtree(stage)
        return ForecastFitted(fitted.model, fitted.trainer, fitted.result, fc)

    def _finish(self, ctx, data: ForecastData, fits: list[Fitted], fc: Forecaster, out,
                refit: bool) -> tuple[Fitted, Forecaster]:
        """A candidate's interval calibration (calibration.json in `out`), then (refit) its
        members retrained into `out` on the whole training part, a hybrid's on the errors of
        its classical part refitted there (data.refit_classical) -> (its Fitted, its
        Forecaster)."""
        from ...training import write_run_json

        o, fitted = ctx.options, ensemble(fits)
        if o.calibrate and data.n_val:
            fc.sigma_scale, counts = calibrate(fc, data.series.values, data.n_train - data.n_val,
                                               data.n_train, data.series.covariates)  # fmt: skip
            need = conformal_minimum(o.level)
            if min(counts) < need and out == ctx.out:
                data.summary["calibration_warning"] = (
                    f"the calibration set has {min(counts)} points; a {o.level:.0%} "
                    f"conformal interval needs at least {need} (the widest residual was used: "
                    "coverage may fall short); raise --val-fraction or lower --level")
                sys.stderr.write(f"warning: {data.summary['calibration_warning']}\n")
            out.mkdir(parents=True, exist_ok=True)
            write_run_json(out, "calibration", {
                "sigma_scale": fc.sigma_scale.tolist(), "n_val": data.n_val,
                "points_per_lead": counts,
                "note": "split-conformal: head std multiplied by this; fitted on the "
                        "validation part"})  # fmt: skip
        if refit and fitted.result.status != "interrupted":
            stops = [f.result.best_step or f.result.step for f in fits]
            last = dataclasses.replace(data, n_val=0,
                                       classical=data.refit_classical or data.classical)
            x, y = data_pairs(last, data.n_train, train=True)
            refits = ensemble(self._members(ctx, dataclasses.replace(last, x=x, y=y), out,
                                            stops))  # fmt: skip
            # the run's record is the validation stage's (steps, best step), unless interrupted
            ended = refits.result if refits.result.status == "interrupted" else fitted.result
            fitted = Fitted(refits.model, refits.trainer, ended)
            fc.model = fitted.model
            if isinstance(fc, HybridForecaster):
                fc.classical = last.classical
                fc.partner = data.refit_partner or data.partner
            if out == ctx.out:
                data.summary["refit_steps"] = stops
        return fitted, fc

    def correction_weight(self, fc: HybridForecaster, data: ForecastData, H: int,
                          rule: str = "grid") -> float | np.ndarray:
        """The share of the network's correction the hybrid keeps, recorded in the summary.
        grid: the w in WEIGHTS with the lowest validation MASE over the lead times (1: the
        hybrid; 0.5: its mean with the classical forecast; 0: the classical forecast alone).
        lead: per lead time h, w_h = <r_h, c_h> / <c_h, c_h> clipped to [0, 1], the
        least-squares slope of the classical model's validation errors r_h on the network's
        correction c_h there (lead_weights), an array (H,)."""
        scores = {}
        for w in WEIGHTS:
            fc.weight = w
            scores[str(w)] = validation_mase(fc, data, H)
        best: float | np.ndarray = float(min(WEIGHTS, key=lambda w: scores[str(w)]))
        record: dict[str, Any] = {}
        if rule == "lead":
            fc.weight = 1.0
            best, sums = lead_weights(fc, data, H)
            fc.weight = best
            scores["lead"] = validation_mase(fc, data, H)
            record = {"weight_sums": sums}
        data.summary["model"].update(
            weight=best if isinstance(best, float) else [round(float(w), 4) for w in best],
            weight_validation_mase=scores, **record)  # fmt: skip
        return best

    def arima_mean(self, ctx, fc: HybridForecaster, data: ForecastData) -> ForecastData:
        """--hybrid-arima-mean (arima_mean.py): the lead times where the mean of the hybrid's
        forecast and AutoARIMA's beats the hybrid on the validation tail, set on fc and
        recorded in the summary -> data with the partner (unchanged where it is skipped)."""
        o, model = ctx.options, data.summary["model"]
        n_fit, values = data.n_train - data.n_val, data.series.values
        fits = arima_fits(data.classical, data.refit_classical or data.classical, values,
                          n_fit, data.n_train, data.period)  # fmt: skip
        if fits is None:
            model["arima_mean"] = "skipped (AutoARIMA is the classical part, or failed)"
            return data
        leads, scores = lead_choice(fc, fits[0], values, n_fit, data.n_train, o.horizon,
                                    data.series.covariates)  # fmt: skip
        model["arima_mean"] = {"arima": fits[0].name, "leads": leads, "validation_mase": scores}
        if not any(leads):
            return data
        fc.partner, fc.partner_leads = fits[0], leads
        return dataclasses.replace(data, partner=fits[0], refit_partner=fits[1],
                                   partner_leads=leads)

    def hybrid_data(self, ctx, data: ForecastData) -> ForecastData:
        """The hybrid's data: the classical method chosen by rolling-origin cross-validation
        on the training part (hybrid.choose; fitted on the part before the validation tail,
        and refitted on the whole training part for the refit), the error scale, the direct
        head's windows."""
        o = ctx.options
        n_fit = data.n_train - data.n_val
        ctx.say("choosing the hybrid's classical part by cross-validation on the training part")
        part, full, scores = choose(data.series.values, n_fit, data.n_train, o.horizon,
                                    data.period, o.auto_baselines, o.hybrid_per_lead)  # fmt: skip
        errors = part.errors(data.series.values[:n_fit])[max(1, burn_in(part.spec)):]
        d = dataclasses.replace(data, classical=part, refit_classical=full,
                                head_horizon=o.horizon,
                                error_scale=float(np.std(errors)) or 1.0)  # fmt: skip
        x, y = data_pairs(d, n_fit, train=True)
        data.summary["model"] = {"classical": part.name, "classical_validation_mase": scores}
        return dataclasses.replace(d, x=x, y=y)

    def forecaster(self, o: ForecastOptions, data: ForecastData, model) -> Forecaster:
        """The Forecaster of `model` trained on `data` (a hybrid's when data.classical)."""
        series = self.files(o, data)["series.json"]
        if data.classical is not None:
            return HybridForecaster(model, data.scaler, data.classical, data.error_scale,
                                    data.window, o.level, data.head_horizon, samples=o.samples,
                                    seed=o.seed, relative=data.relative, series=series,
                                    cov_scaler=data.cov_scaler, weight=data.weight,
                                    partner=data.partner,
                                    partner_leads=data.partner_leads)  # fmt: skip
        return Forecaster(model, data.scaler, data.window, o.strategy, o.level,
                          data.head_horizon, o.samples, o.seed, relative=data.relative,
                          series=series, cov_scaler=data.cov_scaler)  # fmt: skip

    def evaluate(self, o: ForecastOptions, data: ForecastData, fitted: ForecastFitted):
        """Every method forecasts the test part from the same origins."""
        fc, values, H = fitted.forecaster, data.series.values, o.horizon
        origins = origins_for(data.n_train, data.n_end)
        truth = truth_matrix(values, origins, H, data.n_end)
        scale = mase_scale(values[: data.n_train])
        mean, lo, hi = fc.forecast(values, origins, H, data.series.covariates)
        baselines, note = baseline_forecasts(values, data.n_train, origins, H, data.period,
                                             o.order(), o.auto_baselines)  # fmt: skip
        if data.summary.get("calibration_warning"):
            note = "; ".join(n for n in (note, data.summary["calibration_warning"]) if n)
        preds = {"rnnkit": mean, **baselines}
        table = {k: with_smape(metrics(v, truth, scale), v, truth) for k, v in preds.items()}
        split = {**{k: data.summary[k] for k in ("train", "test", "n_train", "n_val", "n_test",
                                                  "window", "frame", "period", "period_detected",
                                                  "covariates", "members")},
                 "refit_steps": data.summary.get("refit_steps"),
                 "model": data.summary.get("model"),
                 "mase_scale": scale,
                 "interval_sigma_scale": [round(float(c), 4) for c in fc.sigma_scale]}  # fmt: skip
        return clean({
            "target": data.series.target, "split": split, "gaps_filled": data.series.gaps_filled,
            "metrics": table,
            "mean_over_leads": {k: mean_over_leads(v) for k, v in table.items()},
            "interval": {"level": o.level, "per_horizon": coverage(lo, hi, truth)},
            "one_step": {"index": data.series.index[origins + 1].tolist(),
                         "lower": lo[:, 0].tolist(), "upper": hi[:, 0].tolist(),
                         **{k: v[:, 0].tolist() for k, v in preds.items()}},
            "notes": note,
        })  # fmt: skip

    def test_metrics(self, results):
        m = results["metrics"]["rnnkit"][0]
        return {"mae": m["mae"], "rmse": m["rmse"], "mse": m["mse"], "mase": m["mase"],
                "smape": m["smape"], "mase_mean": results["mean_over_leads"]["rnnkit"]["mase"],
                "coverage": results["interval"]["per_horizon"][0]["coverage"]}  # fmt: skip

    def summary(self, results):
        sp, H = results["split"], len(results["metrics"]["rnnkit"])
        cov = results["interval"]["per_horizon"]
        title = (f"test {sp['test'][0]:g}-{sp['test'][1]:g} ({sp['n_test']} points), window "
                 f"{sp['window']}; {results['interval']['level']:.0%} interval coverage "
                 + ", ".join(f"h={c['h']}: {c['coverage']:.0%}" for c in cov[:5]))  # fmt: skip
        header = ["method", "MAE", "RMSE", "MSE", "MASE", "sMAPE"]
        rows = metrics_rows(results["metrics"], 1)
        if H > 1:
            header += [f"MASE h={H}", "MASE mean", "sMAPE mean"]
            means = results["mean_over_leads"]
            rows = [[*r, v[H - 1]["mase"], means[k]["mase"], means[k]["smape"]]
                    for r, (k, v) in zip(rows, results["metrics"].items(), strict=True)]
        return title, header, [["-" if v is None else v for v in r] for r in rows]

    def report(self, r, run, results) -> None:
        write_sections(r, run, results)

    def load(self, run) -> Forecaster:
        from ...training import RunError, load_run

        settings, series = run.read_json("forecaster"), run.read_json("series")
        scaler = StandardScaler.from_dict(run.read_json("scaler"))
        cov = settings.get("cov_scaler")
        cov_scaler = None if cov is None else StandardScaler.from_dict(cov)
        scale = None
        if (run.path / "calibration.json").exists():
            try:
                scale = [float(v) for v in run.read_json("calibration")["sigma_scale"]]
            except (KeyError, TypeError, ValueError) as err:
                raise RunError(f"{run.path}: calibration.json is not valid ({err})") from None
        try:
            n = int(settings.get("members", 1))
            model = run.model if n == 1 else MemberAverage(driver.member_models(run, n))
            common = dict(sigma_scale=scale, relative=bool(settings["relative"]), series=series,
                          cov_scaler=cov_scaler, samples=int(settings["samples"]),
                          seed=int(settings["seed"]))  # fmt: skip
            window, level = int(settings["window"]), float(settings["level"])
            hybrid = settings.get("hybrid")
            if hybrid is None:
                fc = RunForecaster(model, scaler, window, settings["strategy"], level,
                                   int(settings["head_horizon"]), **common)  # fmt: skip
            else:
                fc = RunHybridForecaster(model, scaler, Classical(**hybrid["classical"]),
                                         float(hybrid["error_scale"]), window, level,
                                         int(settings["head_horizon"]),
                                         weight=weight_value(hybrid.get("weight", 1.0)),
                                         **common)  # fmt: skip
                if hybrid.get("arima_mean"):
                    fc.partner = Classical(**hybrid["arima_mean"]["classical"])
                    fc.partner_leads = [bool(v) for v in hybrid["arima_mean"]["leads"]]
                if (run.path / "network").is_dir():  # for one-step anomaly detection
                    fc.network = self.load(load_run(run.path / "network"))
            fc.time_column = settings.get("time")
            fc.covariate_names = tuple(settings.get("covariates") or ())
            series["values"], series["index"], series["n_train"]  # noqa: B018
        except (KeyError, TypeError, ValueError) as err:
            raise RunError(f"{run.path}: forecaster.json or series.json is not valid "
                           f"({err})") from None  # fmt: skip
        if len(fc.sigma_scale) != fc.head_horizon or min(fc.sigma_scale) <= 0:
            raise RunError(f"{run.path}: calibration.json does not match the model")
        return fc

    def export_model(self, run) -> torch.nn.Module:
        """The members' mixture (MemberAverage), as `load`'s forecaster runs the network."""
        n = int(run.read_json("forecaster").get("members", 1))
        return run.model if n == 1 else MemberAverage(driver.member_models(run, n))


def validation_forecast(fc: Forecaster, data: ForecastData, H: int):
    """fc's point forecasts (one Monte Carlo path) at lead times 1..H from every origin of the
    validation part -> (n_fit, the series' values, the origins, the forecasts)."""
    n_fit, values = data.n_train - data.n_val, data.series.values
    origins = origins_for(n_fit, data.n_train)
    samples, fc.samples = fc.samples, 1
    try:
        mean, _, _ = fc.forecast(values, origins, H, data.series.covariates)
    finally:
        fc.samples = samples
    return n_fit, values, origins, mean


def validation_mase(fc: Forecaster, data: ForecastData, H: int) -> float:
    """fc's MASE averaged over the lead times 1..H from the validation part's origins (the
    point forecasts only: one Monte Carlo path)."""
    n_fit, values, origins, mean = validation_forecast(fc, data, H)
    rows = metrics(mean, truth_matrix(values, origins, H, data.n_train), mase_scale(values[:n_fit]))
    return float(np.mean([r["mase"] for r in rows]))


def lead_weights(fc: HybridForecaster, data: ForecastData, H: int):
    """Per lead time h, the least-squares slope of the classical model's validation errors
    r_h = y - c(h) on the network's whole correction (fc.weight 1) there, clipped to [0, 1]
    (0 where the correction is 0) -> (the weights (H,), {"rc": <r_h, c_h>, "cc": <c_h, c_h>}
    per lead). The slope is the share of the correction that its own validation errors
    support: a correction that is noise at a lead gets a share near 0 there, the grid's one
    share for every lead cannot do that."""
    n_fit, values, origins, mean = validation_forecast(fc, data, H)
    c = fc.classical.forecasts(values, origins, H)
    r, corr = truth_matrix(values, origins, H, data.n_train) - c, mean - c
    ok = np.isfinite(r)
    rc = np.where(ok, r * corr, 0.0).sum(axis=0)
    cc = np.where(ok, corr * corr, 0.0).sum(axis=0)
    w = np.clip(np.divide(rc, cc, out=np.zeros(H), where=cc > 0), 0.0, 1.0)
    return w, {"rc": rc.tolist(), "cc": cc.tolist()}


def weight_json(w: float | np.ndarray) -> float | list[float]:
    """A hybrid's weight as forecaster.json keeps it."""
    return float(w) if np.ndim(w) == 0 else [float(v) for v in np.asarray(w)]


def weight_value(w: Any) -> float | np.ndarray:
    """forecaster.json's weight back (a number, or a list: one per lead time)."""
    return float(w) if not isinstance(w, list) else np.asarray(w, dtype=np.float64)


def ensemble(fits: list[Fitted]) -> Fitted:
    """The members' Fitted as one: their average (one member: itself), member 0's Trainer, and
    the result of the last member when it was interrupted, else member 0's."""
    model = fits[0].model if len(fits) == 1 else MemberAverage([f.model for f in fits])
    ended = fits[-1].result if fits[-1].result.status == "interrupted" else fits[0].result
    return Fitted(model.eval(), fits[0].trainer, ended)


def with_smape(rows: list[dict[str, float]], pred: np.ndarray, truth: np.ndarray):
    """Adds sMAPE (percent, 200·|F - A| / (|F| + |A|); 0 where both are 0) per lead time."""
    for h, row in enumerate(rows):
        ok = np.isfinite(truth[:, h])
        f, a = pred[ok, h], truth[ok, h]
        denom = np.abs(f) + np.abs(a)
        row["smape"] = float(np.mean(np.where(denom > 0, 200 * np.abs(f - a) / np.where(
            denom > 0, denom, 1), 0.0)))
    return rows


def mean_over_leads(rows: list[dict[str, float]]) -> dict[str, float]:
    """MAE, RMSE, MASE and sMAPE averaged over the lead times 1..H."""
    return {k: float(np.mean([r[k] for r in rows])) for k in ("mae", "rmse", "mase", "smape")}


def clean(obj: Any) -> Any:
    """NaN -> None, recursively (JSON has no NaN; a failed ARIMA fit gives NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    return obj


TASK = ForecastTask()
train, load = entry_points(TASK)
