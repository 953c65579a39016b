"""Anomaly detection with a trained forecaster, and its evaluation on anomalies injected into
held-out data and on labels.

The default, "window-discord" (`residual_detect`), flags a point where two rules on the
forecaster's one-step normalised residual both flag it, each rule's threshold being the score
the run's own clean series exceeds with a risk of 1e-5 per point (a generalised Pareto fit to
the tail of its scores, `--false-alarm-rate`: the window rule's on the training split, the
discord rule's on the test part, which no model of the run fitted); alarms under 2·W apart
are one event (W: the model's window). With
    e[t] = (y[t] - mean[t]) / std[t]        the one-step normalised residual of the forecaster
                                            the run chose (a hybrid's own), each from the W
                                            observed values before t (batched),
the "window" rule (is the residual large?), from the window W on:
    s[t] = RMS of e over the L = W/4 points centred on t   (one odd point matters less than
                                            a run)
    z[t] = (s[t] - median) / (1.4826 · MAD), over the K = 10·W scores ending L points before
                                            t's window
                                            (the series' own recent scale: a noisier stretch
                                            raises its own yardstick, an anomaly does not);
the "discord" rule (is the residual new?): each window of W residuals is scored by its
Euclidean distance to its nearest neighbour, another window of the series checked at least W
points away or a window of the training part, a point by the mean over the windows covering
it (the matrix profile's point scores, Zhu et al. 2016, on the residual and not z-normalised:
its scale is the forecaster's surprise). A residual pattern that recurs, even one the
forecaster cannot predict, finds a match and scores low. Either rule alone is a method too.
The point rules of rnnkit.models.forecaster.detect ("interval", "residual") remain.

Evaluation: labelled anomalies are injected into a held-out real series (the forecast run's
test part, which the model never trained on; rnnkit.data.synthetic.inject): spikes (one point
± k·σ), level shifts (a segment + k·σ) and dropouts (a segment set to 0), σ being the standard
deviation of the series' first differences on the training part. Many random trials are
pooled; points where the injection changed nothing material (< 1σ) are not labelled.
Point-wise precision, recall and F1, and per-kind event recall (an event counts as found if
any of its points is flagged), against a baseline detector in the same run: the persistence
residual y[t] - y[t-1] with the same robust threshold.

With labels (`--labels COL`: 1 marks an anomalous point), the flags on the data as given are
scored against them too (`label_scores`): point-wise precision/recall/F1, and event-wise,
an event being a run of consecutive labelled (or flagged) points: event recall = true events
with at least one flag, event precision = alarm events that touch a true event.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_json
from ..data.series import Series, check_length
from ..data.synthetic import ANOMALY_KINDS, Injected, inject
from ..data.text import DataError
from ..models.forecaster import (
    METHODS,
    Detection,
    HybridForecaster,
    Progress,
    detect,
    persistence_detect,
    pointwise,
    residual_scale,
    training_threshold,
)
from ..training.report import Report, finish_series, series_axes
from .options import SEED_MAX, OptionError

# the rules on the forecaster's residual windows: "window-discord" flags what both flag
RESIDUAL_RULES = ("window-discord", "discord", "window")
ANOMALY_METHODS = (*RESIDUAL_RULES, *METHODS)
MAX_TRIALS = 10_000  # copies of the held-out part checked side by side (memory: trials × N)


def scores(flags: np.ndarray, inj: Injected, start: int) -> dict[str, Any]:
    """Pooled point-wise precision/recall/F1 and per-kind event and point recall."""
    f, lab = flags[:, start:], inj.labels[:, start:]
    tp = int((f & lab).sum())
    fp = int((f & ~lab).sum())
    fn = int((~f & lab).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    clean = ~lab
    out: dict[str, Any] = {
        "precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn,
        "false_alarm_rate": fp / max(1, int(clean.sum())), "kinds": {},
    }  # fmt: skip
    for j, name in enumerate(ANOMALY_KINDS):
        mask = inj.kind[:, start:] == j
        evs = [e for e in inj.events if e[1] == name]
        found = sum(bool(flags[k, s:e].any()) for k, _, s, e in evs)
        out["kinds"][name] = {
            "events": len(evs),
            "event_recall": found / len(evs) if evs else None,
            "point_recall": float((f & mask).sum() / mask.sum()) if mask.any() else None,
        }
    return out


def runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of consecutive True values in a (N,) bool array."""
    m = np.r_[False, np.asarray(mask, bool), False].astype(np.int8)
    edges = np.flatnonzero(np.diff(m))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _prf(tp_p: int, n_pred: int, tp_r: int, n_true: int) -> dict[str, float]:
    precision = tp_p / n_pred if n_pred else 0.0
    recall = tp_r / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def label_scores(flags: np.ndarray, labels: np.ndarray, start: int) -> dict[str, Any]:
    """Point-wise and event-wise precision/recall/F1 of (N,) flags against (N,) 0/1 labels,
    over the points from `start` on (those the detector checked).

    Example:
        >>> label_scores(np.array([0, 1, 0, 1, 1], bool), np.array([0, 1, 1, 0, 0]), 0)
        ...  # points: P 1/3, R 1/2; events: 1 true event found by 1 of 2 alarm events
    """
    f, lab = np.asarray(flags, bool)[start:], np.asarray(labels)[start:] > 0
    tp = int((f & lab).sum())
    alarms, events = runs_of(f), runs_of(lab)
    hit = sum(bool(f[a:b].any()) for a, b in events)
    useful = sum(bool(lab[a:b].any()) for a, b in alarms)
    return {"points": {**_prf(tp, int(f.sum()), tp, int(lab.sum())), "tp": tp,
                       "flagged": int(f.sum()), "labelled": int(lab.sum())},
            "events": {**_prf(useful, len(alarms), hit, len(events)),
                       "alarm_events": len(alarms), "true_events": len(events)}}  # fmt: skip


def nearest_distances(X: np.ndarray, sq: np.ndarray, zone: int, rows: np.ndarray | None = None,
                      ref: np.ndarray | None = None, chunk: int = 512) -> np.ndarray:
    """The Euclidean distance from each of X's `rows` (default: all) to its nearest row of X
    at least `zone` positions away, or of `ref` when closer. X (n, m), sq (n,) its rows'
    squared norms (given: the matrix profile's z-normalised rows all count m), ref (M, m)
    -> (len(rows),), inf where no row qualifies. In numpy blocks of `chunk` rows."""
    rows = np.arange(len(X)) if rows is None else rows
    out = np.empty(len(rows))
    sq_ref = None if ref is None else (ref**2).sum(axis=1)
    for i in range(0, len(rows), chunk):
        r = rows[i : i + chunk]
        d2 = sq[r, None] + sq[None, :] - 2 * X[r] @ X.T  # (c, n)
        for j, row in enumerate(r):  # slices: a (c, n) mask would cost as much as d2
            d2[j, max(0, row - zone + 1) : row + zone] = np.inf
        best = d2.min(axis=1)
        if ref is not None and len(ref):
            best = np.minimum(best, (sq[r, None] + sq_ref[None, :] - 2 * X[r] @ ref.T).min(1))
        out[i : i + len(r)] = np.sqrt(np.maximum(best, 0.0))
    return out


def cover_mean(p: np.ndarray, m: int) -> np.ndarray:
    """Per point, the mean of the scores p (n,) of the length-m windows that cover it ->
    (n + m - 1,)."""
    return np.convolve(p, np.ones(m)) / np.convolve(np.ones(len(p)), np.ones(m))


def matrix_profile(values: np.ndarray, m: int, chunk: int = 512) -> np.ndarray:
    """Per point, the mean over the length-m subsequences that cover it of each one's
    z-normalised Euclidean distance to its nearest neighbour elsewhere in the series (matches
    closer than m/4 steps excluded): the STOMP matrix profile (Zhu et al. 2016) with aeon's
    point scores, computed exactly in numpy blocks of `chunk` rows (aeon's STOMP needs stumpy,
    whose numba compilation alone takes about 40 s) -> (N,)."""
    v = np.asarray(values, dtype=np.float64)
    S = np.lib.stride_tricks.sliding_window_view(v, m)  # (n, m)
    sd = S.std(axis=1)
    Z = np.where(sd[:, None] > 1e-12, (S - S.mean(axis=1, keepdims=True)) / np.where(
        sd > 1e-12, sd, 1.0)[:, None], 0.0)  # a constant subsequence: equally far from all
    # every row counts m, a constant one too: its distance is sqrt(2m) to every other row
    mp = nearest_distances(Z, np.full(len(Z), float(m)), int(np.ceil(m / 4)), chunk=chunk)
    mp[~np.isfinite(mp)] = 0.0  # a series too short for any match
    return cover_mean(mp, m)


def matrix_profile_flags(score: np.ndarray, n_flags: int, start: int) -> np.ndarray:
    """The matrix-profile baseline at a given alarm budget: the n_flags points from `start`
    on with the highest `matrix_profile` scores (N,) -> (N,) bool. Given rnnkit's number of
    flags, the two are compared at the same alarm budget."""
    flags = np.zeros(len(score), dtype=bool)
    flags[start + np.argsort(-score[start:], kind="stable")[:n_flags]] = True
    return flags


def labelled_comparison(values: np.ndarray, labels: np.ndarray, flags: np.ndarray,
                        train: np.ndarray, W: int, level: float, gap: int) -> dict[str, Any]:
    """label_scores of rnnkit's flags and of three baselines on the same series: the
    persistence residual (`level` rule, its alarms as they are: merged, its many scattered
    ones would become one event over the whole series), and the matrix profile (subsequence
    W) at rnnkit's number of flagged points and with its own threshold from the training part
    (the highest score of the training part's own matrix profile: no subsequence there is
    anomalous), the matrix profile's alarms merged by the same `gap` as rnnkit's."""
    mp = matrix_profile(values, W)
    budget = merge_alarms(matrix_profile_flags(mp, max(1, int(flags[W:].sum())), W), gap)
    own = np.zeros(len(values), dtype=bool)
    own[W:] = mp[W:] > float(matrix_profile(train, W)[W:].max())
    base = persistence_detect(values[None], train, W, level)[0]
    return {"rnnkit": label_scores(flags, labels, W),
            "persistence residual": label_scores(base, labels, W),
            f"matrix profile (m={W}, rnnkit's points)": label_scores(budget, labels, W),
            f"matrix profile (m={W}, training max)": label_scores(
                merge_alarms(own, gap), labels, W)}  # fmt: skip


# ---- the residual rules: window and discord (together, the default) ---------------------

WINDOW_RISK = 1e-5  # the default per-point false-alarm risk of the residual rules' thresholds
TAIL = 0.02  # the share of the highest training scores the extreme-value fit is made on
MIN_TAIL = 20  # ... and at least this many of them


def one_step_scores(fc: Any, values: np.ndarray, start: int, progress: Progress | None = None,
                    what: str = "checking", chunk: int = 1024) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """The forecaster's one-step mean and std for every point from `start` on, each from the
    W observed values before it (no replacement: all windows in batches), and the normalised
    residual e = (y - mean) / std. values (K, N) -> mean, std, e, each (K, N), NaN before
    `start`. progress: called as progress(what, points done, points in all).

    The forecaster is the one the run chose on its validation part: a hybrid's own forecast
    (its classical one-step forecast plus the network's correction, the std from its
    interval), not its network alone, whose errors can be several times larger out of sample
    (Seattle temperatures: a residual RMS of 4-6 against the hybrid's 1-2.5 in spring)."""
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    K, N = v.shape
    mean = np.full((K, N), np.nan)
    std = mean.copy()
    origins = np.arange(start - 1, N - 1)
    for k in range(K):
        for i in range(0, len(origins), chunk):
            o = origins[i : i + chunk]
            if isinstance(fc, HybridForecaster):
                mu, lo, hi = fc.forecast(v[k], o, 1)
                mean[k, o + 1], std[k, o + 1] = mu[:, 0], (hi[:, 0] - lo[:, 0]) / (2 * fc.z)
            else:
                mu, sd = fc.one_step(fc._contexts(v[k], o))
                mean[k, o + 1] = fc.scaler.inverse(mu)
                std[k, o + 1] = sd * fc.scaler.std[0]
            if progress is not None:
                progress(what, k * len(origins) + i + len(o), K * len(origins))
    return mean, std, (v - mean) / std


def window_rms(e: np.ndarray, L: int) -> np.ndarray:
    """Root mean square of e over the trailing L points (fewer at the start), (K, N) ->
    (K, N); NaN counts as 0 (points without a forecast)."""
    c = np.cumsum(np.nan_to_num(np.atleast_2d(e)) ** 2, axis=1)
    c = np.concatenate([np.zeros((len(c), 1)), c], axis=1)
    n = np.minimum(np.arange(1, c.shape[1]), L)
    return np.sqrt((c[:, 1:] - c[:, np.arange(c.shape[1] - 1) + 1 - n]) / n)


def robust_standardise(s: np.ndarray, history: np.ndarray, K: int, lag: int,
                       chunk: int = 2048) -> np.ndarray:
    """(s - median) / (1.4826 · MAD), the median and MAD taken over the K scores that end
    `lag` points before each one (so an anomaly does not raise its own yardstick), the first
    ones reaching back into `history` (scores on data like the training part). s (K', N),
    history (M,) -> (K', N)."""
    s = np.atleast_2d(s)
    h = np.asarray(history, dtype=np.float64)[-(K + lag) :]
    out = np.empty_like(s)
    for k in range(len(s)):
        full = np.concatenate([h, s[k]])
        pad = np.concatenate([np.full(max(0, K + lag - len(h)), np.nan), full])
        off = len(pad) - len(full)  # pad[off + t] is full[t]
        for i in range(0, s.shape[1], chunk):
            t = np.arange(i, min(i + chunk, s.shape[1])) + len(h) + off  # positions in pad
            win = pad[t[:, None] - lag - K + 1 + np.arange(K)[None, :]]  # (c, K)
            med = np.nanmedian(win, axis=1)
            mad = 1.4826 * np.nanmedian(np.abs(win - med[:, None]), axis=1)
            mad = np.where(mad > 0, mad, 1e-12)
            out[k, i : i + len(t)] = (s[k, i : i + len(t)] - med) / mad
    return out


def gpd_threshold(scores: np.ndarray, risk: float) -> float:
    """The score exceeded with probability `risk` per point, from a generalised Pareto fit
    (peaks over threshold, Pickands 1975) to the highest TAIL share (at least MIN_TAIL) of
    `scores`, fitted by probability-weighted moments (Hosking & Wallis 1987: no optimiser,
    stable on a few dozen points). A risk inside the sample's range is close to its empirical
    quantile; a smaller one extrapolates the tail instead of stopping at the sample's maximum."""
    x = np.sort(np.asarray(scores, dtype=np.float64)[np.isfinite(scores)])
    if len(x) < 4:
        raise DataError(f"the training part gives {len(x)} scores; the threshold needs at "
                        "least 4")  # fmt: skip
    n_top = max(min(MIN_TAIL, len(x) // 2), int(TAIL * len(x)))  # a short part: half of it
    u = x[-n_top - 1]
    y = x[-n_top:] - u
    if risk >= n_top / len(x):  # inside the body: the sample is its own best estimate
        return float(np.quantile(x, 1 - risk))
    a0 = y.mean()
    a1 = float(np.mean(y * (n_top - 1 - np.arange(n_top)) / (n_top - 1)))
    if a0 <= 0 or a0 <= 2 * a1:  # a degenerate tail (ties): nothing to extrapolate
        return float(x[-1])
    k = a0 / (a0 - 2 * a1) - 2  # Hosking's shape (xi = -k)
    sigma = 2 * a0 * a1 / (a0 - 2 * a1)
    p = risk * len(x) / n_top  # the exceedance probability beyond u
    excess = sigma * -np.log(p) if abs(k) < 1e-6 else sigma / k * (1 - p**k)
    return float(u + excess)


def merge_alarms(flags: np.ndarray, gap: int) -> np.ndarray:
    """Join alarm runs fewer than `gap` points apart into one (fills the gap), (K, N) or (N,)
    bool -> the same shape."""
    f = np.array(flags, dtype=bool)
    for row in np.atleast_2d(f) if f.ndim == 2 else [f]:
        runs = runs_of(row)
        for (_, b), (a, _) in zip(runs[:-1], runs[1:], strict=True):
            if a - b < gap:
                row[b:a] = True
    return f


@dataclasses.dataclass(frozen=True)
class WindowRule:
    """The window rule's lengths, all from the model's window W (chosen from the training
    part alone, the window being the run's): the score is the RMS of the normalised residual
    over L = W/4 points; it is standardised against the K = 10·W scores before it."""

    L: int
    K: int

    @classmethod
    def for_window(cls, W: int) -> WindowRule:
        return cls(max(1, W // 4), 10 * W)


@dataclasses.dataclass(frozen=True)
class WindowReference:
    """What the window rule takes from the training part: its window scores (the yardstick's
    history for the first points checked) and the threshold."""

    rule: WindowRule
    history: np.ndarray  # (M,) window RMS scores of the training part
    threshold: float
    risk: float


def window_reference(e: np.ndarray, W: int, risk: float = WINDOW_RISK) -> WindowReference:
    """The window rule's threshold from the (clean) training part's normalised residual e
    (N,), NaN before W: its robust standardised scores, each standardised against the
    training scores before it (the first ones against the training part's first K), and a
    GPD fit to them at `risk` per point."""
    rule = WindowRule.for_window(W)
    s = window_rms(e[None, W:], rule.L)[0]
    z = robust_standardise(s, s[: rule.K], rule.K, rule.L)[0]
    return WindowReference(rule, s, gpd_threshold(z[rule.L :], risk), risk)


def window_scores(e: np.ndarray, W: int, ref: WindowReference) -> np.ndarray:
    """The window rule's score of each point: the RMS of the normalised residual e (K, N),
    NaN before W, over the L points centred on it, robust standardised against the K scores
    that end before its window begins (the training part's at first) -> (K, N), NaN before
    W. Centred as the discord rule's point scores are (a point's score is its
    windows'): a trailing window would give a surprise's score to the L - 1 points after it
    and not to the surprise (injected into the Seattle temperatures, seed 0: two of three
    alarms began just after the event they followed)."""
    rule, h = ref.rule, ref.rule.L // 2
    z = np.full(e.shape, np.nan)
    z[:, W:] = robust_standardise(window_rms(e[:, W:], rule.L), ref.history, rule.K, rule.L)
    z[:, W : e.shape[1] - h] = z[:, W + h :].copy()  # the last h points: their trailing window
    return z


def _residuals(fc: Any, v: np.ndarray, start: int, progress: Progress | None,
               what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """one_step_scores of (K, N) values whose points before `start` are identical in every row
    (injections come after it): those are forecast once, from row 0 -> mean, std, e (K, N)."""
    mean, std, e = one_step_scores(fc, v[:1], fc.window, progress if len(v) == 1 else None, what)
    if len(v) > 1:
        m, sd, ee = one_step_scores(fc, v, start, progress, what)
        mean, std, e = (np.where(np.arange(v.shape[1]) < start, x0, x)
                        for x0, x in ((mean, m), (std, sd), (e, ee)))  # fmt: skip
    return mean, std, e


def residual_windows(e: np.ndarray, m: int) -> np.ndarray:
    """The length-m windows of a normalised residual e (n,), each divided by sqrt(m) (its
    squared norm is then its mean square) -> (n - m + 1, m)."""
    return np.lib.stride_tricks.sliding_window_view(np.asarray(e, np.float64), m) / np.sqrt(m)


@dataclasses.dataclass(frozen=True)
class DiscordReference:
    """What the discord rule takes from the run's series: the training split's residual
    windows (each checked window's neighbours include them: a pattern the training split
    holds is not new) and the threshold, the score the run's test part exceeds with
    probability `risk` per point (a GPD tail fit, as the window rule's)."""

    m: int
    windows: np.ndarray  # (M, m) residual_windows of the training split
    threshold: float
    risk: float


def discord_reference(e: np.ndarray, W: int, n_train: int,
                      risk: float = WINDOW_RISK) -> DiscordReference:
    """The discord rule's reference from the run's (clean) series' normalised residual e (N,),
    NaN before W: the residual windows (m = W) of the training split e[:n_train], and a GPD
    fit at `risk` to the discord profile of the test part e[n_train:], each of its windows
    scored as a checked window is (`discord_profile`: against the training split's windows
    and its own at least m points away).

    The threshold comes from the test part because no model of the run fitted it (the
    validation part is in-sample after the default refit): a window of the training split
    has near neighbours fitted by the same model, a new window does not, so the training
    split's own profile sits below that of new clean data. (Seattle temperatures: the
    residual's RMS is 0.4 on the training split, 1.6 on the test part.)"""
    windows = residual_windows(e[W:n_train], W)
    if len(windows) < 2 * W:
        raise DataError(f"the training part gives {len(windows)} residual windows of {W} "
                        f"points; the discord rule needs at least {2 * W}")  # fmt: skip
    if len(e) - n_train < W:
        raise DataError(f"the run's test part has {len(e) - n_train} points; the discord "
                        f"rule's threshold needs at least {W} (the window): retrain with a "
                        "larger --test-fraction")  # fmt: skip
    test = np.r_[np.full(W, np.nan), e[n_train:]][None]  # discord_profile starts at W
    profile = discord_profile(test, W, W, DiscordReference(W, windows, np.inf, risk))[0, W:]
    return DiscordReference(W, windows, gpd_threshold(profile, risk), risk)


def discord_profile(e: np.ndarray, W: int, start: int, ref: DiscordReference) -> np.ndarray:
    """Per point, the mean over the residual windows (of m points) covering it of each one's
    distance to its nearest neighbour: another window of the same row at least m points away,
    or a training window. e (K, N), NaN before W -> (K, N), NaN before W. Rows after the first
    only compute the windows that reach `start` or later (the points checked); their earlier
    points take row 0's scores."""
    m, (K, N) = ref.m, e.shape
    out = np.full((K, N), np.nan)
    d0 = None  # row 0's window distances
    for k in range(K):
        X = residual_windows(e[k, W:], m)
        first = 0 if d0 is None else max(0, start - W - m + 1)
        d = np.empty(len(X)) if d0 is None else d0.copy()
        d[first:] = nearest_distances(X, (X**2).sum(axis=1), m, np.arange(first, len(X)),
                                      ref.windows)  # fmt: skip
        d[~np.isfinite(d)] = 0.0  # a series too short for any match
        d0 = d if d0 is None else d0
        out[k, W:] = cover_mean(d, m)
    return out


def residual_detect(fc: Any, values: np.ndarray, start: int, window: WindowReference | None,
                    discord: DiscordReference | None, progress: Progress | None = None,
                    what: str = "checking") -> Detection:
    """Flag `values` (K, N) or (N,) from `start` on where every rule given flags: the window
    rule (the RMS of the normalised one-step residual over L points, robust standardised
    against the K scores before it) and the discord rule (`discord_profile`), each above its
    reference's threshold; alarms closer than 2·W merged (a residual window spans W points,
    and residuals stay raised for up to W points after an anomaly). The score is the smaller
    of the rules' scores, each in units of its threshold (a flag: above 1)."""
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    W = fc.window
    mean, std, e = _residuals(fc, v, start, progress, what)
    above, ratios = np.ones(v.shape, dtype=bool), []
    if window is not None:
        z = window_scores(e, W, window)
        above &= np.nan_to_num(z, nan=-np.inf) > window.threshold
        ratios.append(z / max(window.threshold, 1e-12))
    if discord is not None:
        d = discord_profile(e, W, start, discord)
        above &= np.nan_to_num(d, nan=-np.inf) > discord.threshold
        ratios.append(d / max(discord.threshold, 1e-12))
    flags = np.zeros(v.shape, dtype=bool)
    flags[:, start:] = above[:, start:]
    flags = merge_alarms(flags, 2 * W)
    det = Detection(flags, mean, mean - fc.z * std, mean + fc.z * std, np.minimum.reduce(ratios))
    if np.ndim(values) == 1:
        det = Detection(*(getattr(det, f.name)[0] for f in dataclasses.fields(det)))
    return det


# ---- the task ---------------------------------------------------------------------------


@dataclasses.dataclass
class AnomalyResult:
    evaluation: dict[str, Any] | None
    labelled: dict[str, Any] | None  # label_scores on the data as given, with --labels
    flagged_index: list[float]
    flagged_values: list[float]
    out_dir: Path


def run_detection(
    run_dir: str | Path,
    series: Series | None = None,
    out_dir: str | Path | None = None,
    level: float = 0.99,
    method: str = "window-discord",
    evaluate: bool = True,
    trials: int = 20,
    seed: int = 0,
    progress: Progress | None = None,
    labels: np.ndarray | None = None,
    false_alarm_rate: float | None = None,
) -> AnomalyResult:
    """Flag anomalies in `series` (default: the run's own series) and, with `evaluate`, score
    the detector on injected anomalies in the held-out part. Writes anomalies.json and
    anomalies.html into `out_dir` (default RUN/anomalies). `labels`: (N,) 0/1 beside
    `series`, scored with label_scores. method: "window-discord" (the default), "discord" or
    "window" (`residual_detect`), or one of the forecaster's point rules
    (rnnkit.models.forecaster.detect). `false_alarm_rate`: the threshold flags this fraction
    of the run's training part (the residual rules: their GPD fits' risk, default
    WINDOW_RISK, the discord rule's fitted on the run's test part) instead of the `level`
    rule.

    Raises:
        OptionError: level, method or trials out of range (names the field).
        RunError: `run_dir` is not a finished `train forecast` run.
    """
    from . import forecast

    if not 0 < level < 1:  # also refuses nan
        raise OptionError("level", "in (0, 1)", level)
    if method not in ANOMALY_METHODS:
        raise OptionError("method", f"one of {', '.join(ANOMALY_METHODS)}", method)
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise OptionError("trials", f"an integer in 1..{MAX_TRIALS}", trials)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise OptionError("seed", f"an integer in 0..{SEED_MAX}", seed)
    fc = forecast.load(run_dir)
    stored = fc.series
    if method not in RESIDUAL_RULES:
        fc = pointwise(fc)  # the point rules read a hybrid's network alone
    if series is None:
        values = np.asarray(stored["values"], dtype=np.float64)
        index = np.asarray(stored["index"], dtype=np.float64)
        name, target, label = stored["name"], stored.get("target", "value"), "index"
        label = stored.get("index_label", "step")
        n_train, n_end = int(stored["n_train"]), int(stored["n_end"])
        held_out = f"the run's test part ({index[n_train]:g}-{index[n_end - 1]:g})"
    else:
        values, index, name, target = series.values, series.index, series.name, series.target
        label = series.index_label
        n_train, n_end = int(round(len(values) * 0.7)), len(values)
        held_out = f"the last 30% of {Path(name).name} (points {n_train}-{n_end - 1})"
    W = fc.window
    check_length(len(values), W + 1, f"{name}", f"the model's window is {W}")
    train_ref = np.asarray(stored["values"], float)[: int(stored["n_train"])]
    if false_alarm_rate is not None and not 0 < false_alarm_rate < 1:  # also refuses nan
        raise OptionError("false_alarm_rate", "in (0, 1)", false_alarm_rate)
    if method in RESIDUAL_RULES:
        # both references from the run's own series alone, no point of the series checked:
        # the window rule's from the training split (its score is standardised by its own
        # recent past, so in-sample residuals serve), the discord rule's threshold from the
        # test part, which no model of the run fitted (`discord_reference`)
        n_train_ref = len(train_ref)
        run_values = np.asarray(stored["values"], float)[: int(stored["n_end"])]
        _, _, e_ref = one_step_scores(fc, run_values, W)
        risk = false_alarm_rate or WINDOW_RISK
        ref_w = window_reference(e_ref[0, :n_train_ref], W, risk) if "window" in method else None
        ref_d = None
        if "discord" in method:
            ref_d = discord_reference(e_ref[0], W, n_train_ref, risk)
        gap = 2 * W
        thr = {"window": None if ref_w is None else ref_w.threshold,
               "discord": None if ref_d is None else ref_d.threshold}  # fmt: skip

        def run_rule(v: np.ndarray, start: int, what: str) -> Detection:
            return residual_detect(fc, v, start, ref_w, ref_d, progress, what)
    else:
        gap = 0
        rs = residual_scale(fc, train_ref) if method == "residual" else None
        thr = None
        if false_alarm_rate is not None:
            thr = training_threshold(fc, train_ref, false_alarm_rate, method, rs)

        def run_rule(v: np.ndarray, start: int, what: str) -> Detection:
            return detect(fc, v, start, level, method, rs, progress=progress, what=what,
                          threshold=thr)  # fmt: skip

    det = run_rule(values, W, "the series")
    flagged = np.flatnonzero(det.flags)
    labelled = None
    if labels is not None:
        if series is None or len(labels) != len(values):
            raise DataError("labels need the series they mark (--data with --labels)")
        labelled = labelled_comparison(values, labels, det.flags, train_ref, W, level, gap)
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "anomalies"
    out_dir.mkdir(parents=True, exist_ok=True)

    evaluation = None
    if evaluate:
        start = max(n_train, W)
        if n_end - start < 10:
            raise DataError(f"the held-out part has {n_end - start} points; need at least 10")
        tail = values[:n_end]
        sigma = float(np.std(np.diff(train_ref))) or 1.0
        # about one anomaly of each kind per 60 held-out points, so most points stay clean
        per_kind = max(1, round((n_end - start) / 60))
        inj = inject(tail, start, trials, sigma, seed, per_kind=per_kind)
        d = run_rule(inj.values, start, f"{trials} injected trials")
        base = merge_alarms(persistence_detect(inj.values, train_ref, start, level), gap)
        evaluation = {
            "held_out": held_out, "trials": trials, "sigma": sigma, "level": level,
            "per_kind": per_kind, "labelled_fraction": float(inj.labels[:, start:].mean()),
            "method": method, "rnnkit": scores(d.flags, inj, start),
            "persistence residual": scores(base, inj, start),
        }  # fmt: skip
        example = (inj, d, base, start)
    res = AnomalyResult(evaluation, labelled, index[flagged].tolist(), values[flagged].tolist(),
                        out_dir)  # fmt: skip
    atomic_write_json(out_dir / "anomalies.json", {
        "data": name, "target": target, "level": level, "method": method, "threshold": thr,
        "false_alarm_rate": false_alarm_rate,
        "flagged": [{"index": float(index[i]), "value": float(values[i]),
                     "forecast": float(det.mean[i]), "score": float(det.score[i])}
                    for i in flagged],
        "evaluation": evaluation, "labelled": labelled,
    })  # fmt: skip
    r = Report(f"Anomalies: {Path(name).name} ({target})")
    r.table({"data": name, "rule": method, "level": level, "window": W,
             "points checked": int(len(values) - W), "flagged": int(len(flagged))})  # fmt: skip
    r.figure(_plot(index, values, det.lower, det.upper, det.flags, label, target),
             "points flagged in the data as given")  # fmt: skip
    if labelled is not None:
        r.heading("Against the labels")
        r.table(label_rows(labelled), header=LABEL_HEADER)
    if evaluation is not None:
        r.heading("Injected anomalies: detection quality")
        r.paragraph(
            f"{trials} trials on {held_out}; each trial injects {per_kind} spike(s) (±5σ), "
            f"{per_kind} level shift(s) (±3σ, 3-8 points) and {per_kind} dropout(s) (to 0, 3-8 "
            f"points); σ = {evaluation['sigma']:.3g} (std of first differences, training part); "
            f"{evaluation['labelled_fraction']:.0%} of the checked points are anomalous. "
            "Precision/recall/F1 are point-wise; the per-kind columns are event recall."
        )
        r.table(evaluation_rows(evaluation), header=EVAL_HEADER)
        inj, d, base, start = example
        caption = "trial 1: injected anomalies (shaded) and points rnnkit flagged (red)"
        r.figure(_plot_injected(index, inj, d, start, label, target), caption)
    r.write(out_dir / "anomalies.html")
    return res


EVAL_HEADER = ("detector", "precision", "recall", "F1", "false alarms", "spike recall",
               "level-shift recall", "dropout recall")  # fmt: skip


LABEL_HEADER = ("detector", "point P", "point R", "point F1", "event P", "event R",
                "event F1", "alarm events", "true events")  # fmt: skip


def label_rows(labelled: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for det, s in labelled.items():
        p, e = s["points"], s["events"]
        rows.append([det, p["precision"], p["recall"], p["f1"], e["precision"], e["recall"],
                     e["f1"], e["alarm_events"], e["true_events"]])  # fmt: skip
    return rows


def evaluation_rows(ev: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for det in ("rnnkit", "persistence residual"):
        s = ev[det]
        kinds = [s["kinds"][k]["event_recall"] for k in ANOMALY_KINDS]
        rows.append([det, s["precision"], s["recall"], s["f1"], s["false_alarm_rate"],
                     *["-" if k is None else k for k in kinds]])  # fmt: skip
    return rows


def _plot(x, v, lower, upper, flags, label: str, target: str, spans=(), name="observed"):
    """The series, the prediction interval, flagged points (red), shaded (start, stop, kind)."""
    fig, ax = series_axes((8, 3.4))
    ax.plot(x, v, color="k", lw=0.8, label=name)
    for lo, hi, kind in spans:
        ax.axvspan(lo, hi, color=f"C{ANOMALY_KINDS.index(kind) + 1}", alpha=0.25)
    ok = np.isfinite(lower)
    ax.fill_between(x[ok], lower[ok], upper[ok], color="C0", alpha=0.2,
                    label=None if spans else "interval")  # fmt: skip
    ax.scatter(x[flags], v[flags], color="red", s=14, zorder=3, label="flagged")
    return finish_series(fig, ax, label, target)


def _plot_injected(index, inj: Injected, det: Detection, start: int, label: str, target: str):
    n = inj.values.shape[1]
    sl = slice(max(0, start - 2 * (n - start) // 3), n)
    half = 0.5 * (index[1] - index[0])
    spans = [(index[s] - half, index[e - 1] + half, kind) for k, kind, s, e in inj.events if k == 0]
    return _plot(index[:n][sl], inj.values[0, sl], det.lower[0, sl], det.upper[0, sl],
                 det.flags[0, sl], label, target, spans, "series with injections")  # fmt: skip
