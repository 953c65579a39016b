"""The hybrid's classical part: the baseline the network corrects (after ES-RNN, Smyl 2020, the
M4 winner, where exponential smoothing normalises each series and an RNN forecasts what it
leaves).

    candidates (AR(p), AutoARIMA, AutoETS: the fitted models among the baselines; the naive
    ones hold no model of the series to correct) fitted on the training part minus its
    validation tail -> the one with the lowest MASE averaged over the
    lead times on that tail -> the same method refitted on the whole training part -> its
    forecasts c_o(1..H) from every origin o, and its one-step errors e[t] = y[t] - c_{t-1}(1)

A `Classical` is JSON (`spec`): a run stores it in classical.json, so `forecast RUN` and
`--data new.csv` recompute its forecasts on any series (the state-space models are refiltered
with their fitted parameters, as the baselines forecast their test origins).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...models import classical as cm
from ...models.forecaster import truth_matrix
from ..metrics import mase_scale, metrics, origins_for


@dataclass(frozen=True)
class Classical:
    """A fitted classical forecaster. spec: {"kind": ar | sarimax | ets, and what that kind
    needs (AR parameters; state-space settings and parameters)}."""

    name: str
    spec: dict[str, Any]

    def forecasts(self, values: np.ndarray, origins: np.ndarray, H: int) -> np.ndarray:
        """Mean forecasts c_o(1..H) from each origin o, using values[:o + 1] -> (M, H)."""
        values = np.asarray(values, dtype=np.float64)
        if self.spec["kind"] == "ar":
            return cm.ar_forecast(np.asarray(self.spec["params"]), values, origins, H)
        return cm.state_space_forecasts(_results(self.spec, values[: int(origins[-1]) + 1]),
                                        values, origins, H)  # fmt: skip

    def errors(self, values: np.ndarray) -> np.ndarray:
        """One-step errors e[t] = y[t] - c_{t-1}(1) for every t (e[0] = 0) -> (N,)."""
        e = np.zeros(len(values))
        if len(values) > 1:
            e[1:] = values[1:] - self.forecasts(values, np.arange(len(values) - 1), 1)[:, 0]
        return e


def _results(spec: dict[str, Any], y: np.ndarray):
    """The state-space model of `spec` on y, filtered with the fitted parameters."""
    import warnings

    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    if spec["kind"] == "sarimax":
        model = SARIMAX(y, order=tuple(spec["order"]), seasonal_order=tuple(spec["seasonal"]),
                        trend=spec["trend"], concentrate_scale=True)  # fmt: skip
    else:
        model = ExponentialSmoothing(y, trend=spec["trend"], damped_trend=spec["damped"],
                                     seasonal=spec["seasonal"])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.filter(np.asarray(spec["params"]))


def _state_space(res, name: str) -> Classical:
    m = res.model
    if hasattr(m, "damped_trend"):  # ExponentialSmoothing
        spec = {"kind": "ets", "trend": bool(m.trend), "damped": bool(m.damped_trend),
                "seasonal": int(m.seasonal_periods) if m.seasonal else None}  # fmt: skip
    else:
        spec = {"kind": "sarimax", "order": list(m.order), "seasonal": list(m.seasonal_order),
                "trend": m.trend}  # fmt: skip
    return Classical(name, {**spec, "params": [float(p) for p in res.params]})


def fitters(period: int | None, auto: bool) -> dict[str, Callable[[np.ndarray], Classical]]:
    """The candidate methods, each train (N,) -> a fitted Classical; the slow state-space ones
    only with `auto` (as the baselines)."""
    def ar(train: np.ndarray) -> Classical:
        params, p = cm.fit_ar(train)
        return Classical(f"AR({p})", {"kind": "ar", "params": [float(v) for v in params]})

    out: dict[str, Callable[[np.ndarray], Classical]] = {"AR": ar}
    if auto:
        out["AutoARIMA"] = lambda t: _state_space(*cm.auto_arima(t, period))
        out["AutoETS"] = lambda t: _state_space(*cm.auto_ets(t, period))
    return out


def choose(
    values: np.ndarray, n_fit: int, n_train: int, H: int, period: int | None, auto: bool
) -> tuple[Classical, Classical, dict[str, float]]:
    """The method with the lowest validation MASE over leads 1..H (fitted on values[:n_fit],
    scored from the origins in [n_fit, n_train)) -> (it fitted on values[:n_fit], the same
    method refitted on values[:n_train], {candidate name: validation MASE})."""
    origins = origins_for(n_fit, n_train)
    truth = truth_matrix(values, origins, H, n_train)
    scale = mase_scale(values[:n_fit])
    fitted, scores = {}, {}
    for label, fit in fitters(period, auto).items():
        try:
            c = fit(values[:n_fit])
            pred = c.forecasts(values, origins, H)
        except (ValueError, np.linalg.LinAlgError):  # a failed fit is not a candidate
            continue
        rows = metrics(pred, truth, scale)
        score = float(np.mean([r["mase"] for r in rows]))
        if np.isfinite(score):
            fitted[label], scores[c.name] = c, score
    best = min(fitted, key=lambda k: scores[fitted[k].name])
    return fitted[best], fitters(period, auto)[best](values[:n_train]), scores
