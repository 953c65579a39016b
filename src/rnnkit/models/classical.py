"""Classical (non-neural) models the applications measure themselves against, in the same run
and on the same split:

    series forecasts   persistence ŷ[o+h] = y[o]; seasonal naive ŷ[o+h] = y[o + h - m·ceil(h/m)];
                       AR(p), p chosen by AIC, OLS, recursive; ARIMA(p, d, q), d = 1 when an
                       ADF test cannot reject a unit root (statsmodels). All forecast from the
                       origins o (the last observed index) using only data up to o; AR and
                       ARIMA are fitted on the training part only.
    sequences          1-nearest-neighbour under Euclidean distance (frames resampled);
                       1-NN under full-window DTW and MiniRocket (aeon)
    sentences          bag-of-words logistic regression (scikit-learn)
    any labels         the majority class of the training split

Imports numpy and rnnkit.data; statsmodels, scikit-learn and aeon when first used.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.archives import resample
from ..data.sentiment import Example, words
from ..data.series import STATSMODELS_INSTALL
from ..data.text import DataError

# ---- series forecasts -------------------------------------------------------------------


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


# ---- sequences and sentences -----------------------------------------------------------


def one_nn_euclidean(
    X_train: Sequence[np.ndarray], y_train: np.ndarray, X_test: Sequence[np.ndarray]
) -> np.ndarray:
    """1-nearest-neighbour labels under Euclidean distance: (N_test,) class ids.

    Sequences of different lengths are linearly resampled to the longest training length
    (the usual practice for equal-length 1-NN ED on unequal-length archives).
    """
    T = max(len(x) for x in X_train)
    A = resample(X_train, T).reshape(len(X_train), -1)  # (N, T·D)
    Bm = resample(X_test, T).reshape(len(X_test), -1)
    # squared distances (N_test, N_train) without forming the differences
    d = (Bm * Bm).sum(1)[:, None] - 2.0 * Bm @ A.T + (A * A).sum(1)[None, :]
    return np.asarray(y_train)[np.argmin(d, axis=1)]


def _aeon_panel(seqs: Sequence[np.ndarray], length: int | None = None) -> Any:
    """(T_i, D) sequences -> aeon's layout: (N, D, T) when all lengths are equal (or after
    resampling to `length`), else a list of (D, T_i) arrays."""
    if length is not None:
        return np.ascontiguousarray(resample(seqs, length).transpose(0, 2, 1))
    if len({len(s) for s in seqs}) == 1:
        return np.ascontiguousarray(np.stack(seqs).transpose(0, 2, 1), dtype=np.float64)
    return [np.ascontiguousarray(s.T, dtype=np.float64) for s in seqs]


def one_nn_dtw(
    X_train: Sequence[np.ndarray], y_train: np.ndarray, X_test: Sequence[np.ndarray]
) -> np.ndarray:
    """1-nearest-neighbour labels under dynamic time warping with a full window (aeon's
    KNeighborsTimeSeriesClassifier; unequal lengths as they are): (N_test,) class ids."""
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    knn = KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1)
    knn.fit(_aeon_panel(X_train), np.asarray(y_train))
    return np.asarray(knn.predict(_aeon_panel(X_test)), dtype=np.int64)


def minirocket(
    X_train: Sequence[np.ndarray], y_train: np.ndarray, X_test: Sequence[np.ndarray],
    seed: int = 0,
) -> np.ndarray:
    """MiniRocket (Dempster et al. 2021; aeon's MiniRocketClassifier: 10,000 kernels and a
    ridge classifier): (N_test,) class ids. Unequal lengths are resampled to the longest
    training length, as for 1-NN Euclidean (aeon's MiniRocket needs one length)."""
    from aeon.classification.convolution_based import MiniRocketClassifier

    T = max(len(x) for x in X_train)
    clf = MiniRocketClassifier(random_state=seed)
    clf.fit(_aeon_panel(X_train, T), np.asarray(y_train))
    return np.asarray(clf.predict(_aeon_panel(X_test, T)), dtype=np.int64)


def bag_of_words_baseline(
    train: Sequence[Example], val: Sequence[Example], labels: Sequence[str]
) -> tuple[Any, dict]:
    """Logistic regression on binary word counts (the same `words` tokens the network reads);
    C picked on the validation split from a small grid. Returns (pipeline, info)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    index = {lab: i for i, lab in enumerate(labels)}
    x_train, y_train = [e.text for e in train], [index[e.label] for e in train]
    scores: dict[float, float] = {}
    best = None
    for C in (0.1, 0.3, 1.0, 3.0, 10.0) if val else (1.0,):
        pipe = make_pipeline(
            CountVectorizer(tokenizer=words, lowercase=False, token_pattern=None, binary=True),
            LogisticRegression(C=C, max_iter=2000),
        ).fit(x_train, y_train)
        if val:
            pred = pipe.predict([e.text for e in val])
            scores[C] = sum(int(p == index[e.label]) for p, e in zip(pred, val, strict=True))
            scores[C] /= len(val)
        if best is None or (val and scores[C] > scores[best[0]]):
            best = (C, pipe)
    assert best is not None
    return best[1], {"C": best[0], "val_accuracy_by_C": {str(k): v for k, v in scores.items()}}


def majority_class(train: Sequence[str], test: Sequence[str]) -> dict[str, Any]:
    """{"label": the most frequent training label (first in sorted order on ties), "accuracy":
    its share of `test`}."""
    labels = sorted(set(train))
    counts = [sum(1 for y in train if y == lab) for lab in labels]
    label = labels[counts.index(max(counts))]
    return {"label": label, "accuracy": sum(1 for y in test if y == label) / len(test)}
