"""The classical forecasts every forecast run is compared with, and the metrics (data units).

All forecast from the same origins o (the last observed index) in the test part, using only
data up to o; AR and ARIMA are fitted on the training part only (statsmodels):

    persistence      ŷ[o+h] = y[o]
    seasonal naive   ŷ[o+h] = y[o + h - m·ceil(h/m)]
    AR(p)            p chosen by AIC, OLS, recursive
    ARIMA(p, d, q)   d = 1 when an ADF test cannot reject a unit root

Metrics per lead time h: MAE, RMSE, MSE and MASE (MAE divided by the in-sample MAE of the
one-step naive forecast on the training part); interval coverage and width.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ...data.series import STATSMODELS_INSTALL
from ...data.text import DataError


def origins_for(n_train: int, n_end: int) -> np.ndarray:
    """Forecast origins o: every o whose o+1 is in the test part [n_train, n_end)."""
    return np.arange(n_train - 1, n_end - 1)

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


def baseline_forecasts(
    values: np.ndarray, n_train: int, origins: np.ndarray, H: int, period: int | None,
    order: tuple[int, int, int] | None = None,
) -> tuple[dict[str, np.ndarray], str]:
    """({method: (M, H) forecasts}, a note): every baseline from the same origins, fitted on
    values[:n_train] only. `order`: the ARIMA order (None: chosen from the data). A failed
    ARIMA fit is reported in the note and its forecasts are NaN, not fatal."""
    train = values[:n_train]
    preds = {"persistence": persistence(values, origins, H)}
    if period and period < n_train:
        preds[f"seasonal naive (m={period})"] = seasonal_naive(values, origins, H, period)
    params, p = fit_ar(train)
    preds[f"AR({p})"] = ar_forecast(params, values, origins, H)
    order = order or arima_order_for(train, p)
    try:
        preds[f"ARIMA{order}"] = arima_forecast(train, values, origins, H, order)
    except (ValueError, np.linalg.LinAlgError) as err:
        preds[f"ARIMA{order}"] = np.full((len(origins), H), np.nan)
        return preds, f"ARIMA{order} failed: {err}"
    return preds, ""


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

