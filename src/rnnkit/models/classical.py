"""Classical (non-neural) models the applications measure themselves against, in the same run
and on the same split:

    series forecasts   persistence ŷ[o+h] = y[o]; seasonal naive ŷ[o+h] = y[o + h - m·ceil(h/m)];
                       AR(p), p chosen by AIC (up to a season: max_ar_lag), OLS,
                       recursive; ARIMA(p, d, q), d = 1 when an
                       ADF test cannot reject a unit root (statsmodels); AutoARIMA (a
                       stepwise Hyndman-Khandakar search, seasonal when a period is known)
                       and AutoETS (additive error, trend none/additive/damped, seasonal
                       none/additive, by AICc), both statsmodels state-space models. All
                       forecast from the origins o (the last observed index) using only data
                       up to o; the fitted models are fitted on the training part only (its
                       last FIT_POINTS points).
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


def max_ar_lag(n: int, period: int | None = None) -> int:
    """The longest lag AIC may choose: 20, or one season and one step when the period is
    longer (an AR that cannot reach lag m cannot model a season of m steps: hourly
    temperatures, m = 24, got AR(20) and a lead-1 MASE 3x AutoARIMA's), at most n / 5."""
    return max(1, min(max(20, (period or 0) + 1), n // 5))


def fit_ar(
    train: np.ndarray, max_lag: int | None = None, period: int | None = None
) -> tuple[np.ndarray, int]:
    """AR(p) by OLS with p <= max_lag (default `max_ar_lag`) chosen by AIC (statsmodels) ->
    (params [const, a_1..a_p], p)."""
    _statsmodels()
    from statsmodels.tsa.ar_model import AutoReg, ar_select_order

    max_lag = max_lag or max_ar_lag(len(train), period)
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


def has_unit_root(train: np.ndarray, max_points: int = 20_000) -> bool:
    """True when an augmented Dickey-Fuller test cannot reject a unit root (p > 0.05) on the
    last `max_points` points (the test's lag matrix grows with n·lags: 195 MB of CSV asked
    for 16.8 GiB)."""
    _statsmodels()
    from statsmodels.tsa.stattools import adfuller

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(adfuller(np.asarray(train)[-max_points:], autolag="AIC")[1] > 0.05)


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


FIT_POINTS = 1000  # AutoARIMA/AutoETS are fitted on at most the last this many training points
MAX_FITS = 8  # AutoARIMA's stepwise search fits at most this many models
# seasonal ARIMA terms only up to this period: the state has about m·(P+Q+D) entries and
# statsmodels' Kalman filter then takes minutes per fit (co2's m = 52)
MAX_SEASONAL_ARIMA = 24


def state_space_forecasts(res, values: np.ndarray, origins: np.ndarray, H: int) -> np.ndarray:
    """A fitted statsmodels state-space model's mean forecasts from every origin -> (M, H).

    One Kalman filter pass over values[:origins[-1] + 1] with the fitted parameters gives the
    predicted state a[o+1] for every origin at once; the h-step mean is then
    d + Z·(T^(h-1) a[o+1] + intercepts): no refit and no loop over origins.
    """
    with one_blas_thread():
        full = res.apply(values[: int(origins[-1]) + 1])
    ssm = full.model.ssm
    # time-invariant models only (auto_arima/auto_ets use no time trend): the matrices'
    # last axis has length 1
    Z, T = ssm.design[..., 0], ssm.transition[..., 0]
    d, c = ssm.obs_intercept[:, 0], ssm.state_intercept[:, 0]
    a = full.filter_results.predicted_state[:, origins + 1]  # (k, M): a[o+1 | y[..o]]
    out = np.empty((len(origins), H))
    for h in range(H):
        out[:, h] = (d[:, None] + Z @ a)[0]
        a = c[:, None] + T @ a
    return out


def _aicc(res) -> float:
    k, n = len(res.params), res.nobs
    return float(res.aic + (2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else np.inf))


def seasonal_strength(train: np.ndarray, m: int) -> float:
    """Wang-Smith-Hyndman seasonal strength in [0, 1] from an STL decomposition; > 0.64 is
    the threshold for one seasonal difference (as in forecast::auto.arima / statsforecast)."""
    from statsmodels.tsa.seasonal import STL

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = STL(train, period=m, robust=True).fit()
    v = np.var(r.resid)
    return float(max(0.0, 1 - v / max(np.var(r.resid + r.seasonal), 1e-12)))


def one_blas_thread():
    """One BLAS thread: the state-space models' matrices are tiny, and threaded BLAS only spins
    on them (AutoARIMA on 128 points took 44 s of CPU with threads, 3 s without)."""
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    return threadpool_limits(1)


def auto_arima(train: np.ndarray, m: int | None = None) -> tuple[Any, str]:
    """SARIMA chosen by AICc in a stepwise Hyndman-Khandakar search (at most MAX_FITS fits):
    d from an ADF test, D = 1 when the seasonal strength exceeds 0.64, then from the best of
    (2,d,2)(1,D,1), (0,d,0)(0,D,0), (1,d,0)(1,D,0), (0,d,1)(0,D,1) change p, q, P, Q by one
    while AICc improves. Seasonal terms only for 2 <= m <= MAX_SEASONAL_ARIMA, m < n / 3.
    Returns (fitted results, "ARIMA(p,d,q)(P,D,Q)m")."""
    _statsmodels()
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y = np.asarray(train[-FIT_POINTS:], dtype=np.float64)
    seasonal = bool(m and 2 <= m <= MAX_SEASONAL_ARIMA and m < len(y) / 3)
    d = 1 if has_unit_root(y) else 0
    D = 1 if seasonal and seasonal_strength(y, m) > 0.64 else 0
    fits: dict[tuple[int, ...], tuple[float, Any]] = {}

    def fit(p: int, q: int, P: int, Q: int):
        key = (p, q, P, Q)
        if key in fits or min(key) < 0 or p > 5 or q > 5 or P > 2 or Q > 2:
            return
        if len(fits) >= MAX_FITS:
            return
        trend = "c" if d + D == 0 else "n"  # a time trend would make the model time-varying
        model = SARIMAX(y, order=(p, d, q), seasonal_order=(P, D, Q, m) if seasonal else
                        (0, 0, 0, 0), trend=trend, concentrate_scale=True)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = model.fit(disp=False, maxiter=50)
            except (ValueError, np.linalg.LinAlgError):
                return
        fits[key] = (_aicc(res) if np.isfinite(res.aic) else np.inf, res)

    with one_blas_thread():
        for p, q, P, Q in [(2, 2, 1, 1), (0, 0, 0, 0), (1, 0, 1, 0), (0, 1, 0, 1)]:
            fit(p, q, P if seasonal else 0, Q if seasonal else 0)
        if not fits:
            raise ValueError("no ARIMA model could be fitted")
        best = min(fits, key=lambda k: fits[k][0])
        while len(fits) < MAX_FITS:
            for i in range(4 if seasonal else 2):
                for step in (-1, 1):
                    nb = list(best)
                    nb[i] += step
                    fit(*nb)
            new = min(fits, key=lambda k: fits[k][0])
            if new == best:
                break
            best = new
    p, q, P, Q = best
    name = f"AutoARIMA({p},{d},{q})" + (f"({P},{D},{Q}){m}" if seasonal else "")
    return fits[best][1], name


def auto_ets(train: np.ndarray, m: int | None = None) -> tuple[Any, str]:
    """Additive-error exponential smoothing chosen by AICc over trend (none, additive, damped)
    × seasonal (none, additive with period m when 2 <= m < len(train) / 3).
    Returns (fitted results, e.g. "AutoETS(A,Ad,A)")."""
    _statsmodels()
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    y = np.asarray(train[-FIT_POINTS:], dtype=np.float64)
    seasons = [None, m] if m and 2 <= m < len(y) / 3 else [None]
    best: tuple[float, Any, str] | None = None
    for trend, damped, tname in ((False, False, "N"), (True, False, "A"), (True, True, "Ad")):
        for season in seasons:
            model = ExponentialSmoothing(y, trend=trend, damped_trend=damped, seasonal=season)
            with warnings.catch_warnings(), one_blas_thread():
                warnings.simplefilter("ignore")
                try:
                    res = model.fit(disp=False, maxiter=100)
                except (ValueError, np.linalg.LinAlgError):
                    continue
            score = _aicc(res) if np.isfinite(res.aic) else np.inf
            if best is None or score < best[0]:
                best = (score, res, f"AutoETS(A,{tname},{'A' if season else 'N'})")
    if best is None:
        raise ValueError("no ETS model could be fitted")
    return best[1], best[2]


def baseline_forecasts(
    values: np.ndarray, n_train: int, origins: np.ndarray, H: int, period: int | None,
    order: tuple[int, int, int] | None = None, auto: bool = True,
) -> tuple[dict[str, np.ndarray], str]:
    """({method: (M, H) forecasts}, a note): every baseline from the same origins, fitted on
    values[:n_train] only. persistence is also the random walk (the honest baseline for
    prices). `order`: a fixed ARIMA order to add (ARIMA(p, d, q)); `auto`: AutoARIMA and
    AutoETS (the slow ones). A failed fit is reported
    in the note and its forecasts are NaN, not fatal."""
    train = values[:n_train]
    preds = {"persistence": persistence(values, origins, H)}
    if period and period < n_train:
        preds[f"seasonal naive (m={period})"] = seasonal_naive(values, origins, H, period)
    params, p = fit_ar(train, period=period)
    preds[f"AR({p})"] = ar_forecast(params, values, origins, H)
    notes = []
    fitters = [("AutoARIMA", lambda: auto_arima(train, period)),
               ("AutoETS", lambda: auto_ets(train, period))] if auto else []  # fmt: skip
    if order is not None:
        fitters.append((f"ARIMA{order}", lambda: (None, f"ARIMA{order}")))
    for label, fitter in fitters:
        try:
            if label.startswith("ARIMA("):
                preds[label] = arima_forecast(train, values, origins, H, order)
                continue
            res, name = fitter()
            preds[name] = state_space_forecasts(res, values, origins, H)
        except (ValueError, np.linalg.LinAlgError) as err:
            preds[label] = np.full((len(origins), H), np.nan)
            notes.append(f"{label} failed: {err}")
    return preds, "; ".join(notes)


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
