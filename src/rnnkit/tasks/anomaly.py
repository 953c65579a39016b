"""Anomaly detection with a trained forecaster: flag what the forecast did not expect.

For each point t (from the forecaster's window on) the model forecasts y[t] from the W values
before it, with a Gaussian prediction interval. Two rules:

    interval   y[t] lies outside the `level` prediction interval (|y - mean| > z·std)
    residual   the residual y[t] - mean is an outlier against the residuals on the clean
               training part: |r - median| > z · 1.4826 · MAD

A flagged value is replaced by its forecast in the context of later points, so one anomaly
does not spill into the next forecasts and a level shift keeps being flagged while it lasts.

Evaluation: labelled anomalies are injected into a held-out real series (the forecast run's
test part, which the model never trained on): spikes (one point ± k·σ), level shifts (a
segment + k·σ) and dropouts (a segment set to 0), σ being the standard deviation of the
series' first differences on the training part. Many random trials are pooled; points where
the injection changed nothing material (< 1σ) are not labelled. Point-wise precision, recall
and F1, and per-kind event recall (an event counts as found if any of its points is flagged),
against a baseline detector in the same run: the persistence residual y[t] - y[t-1] with the
same robust threshold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..atomic import atomic_write_json
from ..data.series import Series, check_length
from ..data.text import DataError
from .options import SEED_MAX, OptionError
from .report import Report

if TYPE_CHECKING:
    from .forecast import Forecaster

Progress = Callable[[str, int, int], None]  # (what, points done, points in all)

KINDS = ("spike", "level shift", "dropout")
METHODS = ("interval", "residual")
MAX_TRIALS = 10_000  # copies of the held-out part checked side by side (memory: trials × N)


@dataclasses.dataclass
class Detection:
    """Per point of the series (NaN / False before the first forecastable point)."""

    flags: np.ndarray  # (N,) bool
    mean: np.ndarray  # (N,) forecasts
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray  # (N,) |residual| in units of the threshold scale


def _z(level: float) -> float:
    if not 0 < level < 1:  # also refuses nan
        raise OptionError("level", "in (0, 1)", level)
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
        raise OptionError("method", f"one of {', '.join(METHODS)}", method)
    single = np.ndim(values) == 1
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    K, N = v.shape
    W = fc.window
    start = W if start is None else start
    check_length(N, W + 1, "the series", f"the model needs {W} values before the first check")
    if start < W:
        raise DataError(f"detection can start at point {W} at the earliest (the window)")
    z = _z(level)
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
    z = _z(level)
    d = np.diff(train)
    med = float(np.median(d))
    mad = float(np.median(np.abs(d - med))) * 1.4826 or float(np.std(d) or 1.0)
    v = np.atleast_2d(values)
    flags = np.zeros(v.shape, dtype=bool)
    flags[:, start:] = np.abs(np.diff(v, axis=1)[:, start - 1 :] - med) > z * mad
    return flags if np.ndim(values) == 2 else flags[0]


# ---- injection --------------------------------------------------------------------------


@dataclasses.dataclass
class Injected:
    values: np.ndarray  # (K, N)
    labels: np.ndarray  # (K, N) bool
    kind: np.ndarray  # (K, N) int: -1 clean, else index into KINDS
    events: list[tuple[int, str, int, int]]  # (trial, kind, start, stop)


def inject(
    values: np.ndarray,
    start: int,
    trials: int,
    sigma: float,
    seed: int = 0,
    per_kind: int = 2,
    spike_size: float = 5.0,
    shift_size: float = 3.0,
    min_gap: int = 3,
) -> Injected:
    """`trials` copies of `values`, each with `per_kind` spikes, level shifts and dropouts at
    random non-overlapping places in [start, N). Segments last 3-8 points."""
    rng = np.random.default_rng(seed)
    N = len(values)
    out = np.repeat(np.asarray(values, dtype=np.float64)[None], trials, 0)
    kind = np.full((trials, N), -1)
    events = []
    for k in range(trials):
        taken = np.zeros(N, dtype=bool)
        taken[:start] = True
        plan = [
            (j, 1 if j == 0 else int(rng.integers(3, 9))) for j in range(3) for _ in range(per_kind)
        ]
        rng.shuffle(plan)
        for j, length in plan:
            free = [
                s for s in range(start, N - length + 1)
                if not taken[max(0, s - min_gap) : s + length + min_gap].any()
            ]  # fmt: skip
            if not free:
                continue
            s = int(rng.choice(free))
            seg = slice(s, s + length)
            before = out[k, seg].copy()
            if j == 0:
                out[k, seg] += rng.choice([-1.0, 1.0]) * spike_size * sigma
            elif j == 1:
                out[k, seg] += rng.choice([-1.0, 1.0]) * shift_size * sigma
            else:
                out[k, seg] = 0.0
            material = np.abs(out[k, seg] - before) >= sigma
            taken[seg] = True
            if material.any():
                kind[k, s : s + length][material] = j
                events.append((k, KINDS[j], s, s + length))
    return Injected(out, kind >= 0, kind, events)


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
    for j, name in enumerate(KINDS):
        mask = inj.kind[:, start:] == j
        evs = [e for e in inj.events if e[1] == name]
        found = sum(bool(flags[k, s:e].any()) for k, _, s, e in evs)
        out["kinds"][name] = {
            "events": len(evs),
            "event_recall": found / len(evs) if evs else None,
            "point_recall": float((f & mask).sum() / mask.sum()) if mask.any() else None,
        }
    return out


# ---- the task ---------------------------------------------------------------------------


@dataclasses.dataclass
class AnomalyResult:
    evaluation: dict[str, Any] | None
    flagged_index: list[float]
    flagged_values: list[float]
    out_dir: Path


def run_detection(
    run_dir: str | Path,
    series: Series | None = None,
    out_dir: str | Path | None = None,
    level: float = 0.99,
    method: str = "interval",
    evaluate: bool = True,
    trials: int = 20,
    seed: int = 0,
    progress: Progress | None = None,
) -> AnomalyResult:
    """Flag anomalies in `series` (default: the run's own series) and, with `evaluate`, score
    the detector on injected anomalies in the held-out part. Writes anomalies.json and
    anomalies.html into `out_dir` (default RUN/anomalies).

    Raises:
        OptionError: level, method or trials out of range (names the field).
        RunError: `run_dir` is not a finished `train forecast` run.
    """
    from . import forecast

    _z(level)
    if method not in METHODS:
        raise OptionError("method", f"one of {', '.join(METHODS)}", method)
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise OptionError("trials", f"an integer in 1..{MAX_TRIALS}", trials)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise OptionError("seed", f"an integer in 0..{SEED_MAX}", seed)
    fc = forecast.load(run_dir)
    stored = fc.series
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
    rs = residual_scale(fc, train_ref) if method == "residual" else None
    det = detect(fc, values, W, level, method, rs, progress=progress, what="the series")
    flagged = np.flatnonzero(det.flags)
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
        d = detect(fc, inj.values, start, level, method, rs, progress=progress,
                   what=f"{trials} injected trials")  # fmt: skip
        base = persistence_detect(inj.values, train_ref, start, level)
        evaluation = {
            "held_out": held_out, "trials": trials, "sigma": sigma, "level": level,
            "per_kind": per_kind, "labelled_fraction": float(inj.labels[:, start:].mean()),
            "method": method, "rnnkit": scores(d.flags, inj, start),
            "persistence residual": scores(base, inj, start),
        }  # fmt: skip
        example = (inj, d, base, start)
    res = AnomalyResult(evaluation, index[flagged].tolist(), values[flagged].tolist(), out_dir)
    atomic_write_json(out_dir / "anomalies.json", {
        "data": name, "target": target, "level": level, "method": method,
        "flagged": [{"index": float(index[i]), "value": float(values[i]),
                     "forecast": float(det.mean[i]), "score": float(det.score[i])}
                    for i in flagged],
        "evaluation": evaluation,
    })  # fmt: skip
    r = Report(f"Anomalies: {Path(name).name} ({target})")
    r.table({"data": name, "rule": method, "level": level, "window": W,
             "points checked": int(len(values) - W), "flagged": int(len(flagged))})  # fmt: skip
    r.figure(_plot(index, values, det, label, target), "points flagged in the data as given")
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


def evaluation_rows(ev: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for det in ("rnnkit", "persistence residual"):
        s = ev[det]
        kinds = [s["kinds"][k]["event_recall"] for k in KINDS]
        rows.append([det, s["precision"], s["recall"], s["f1"], s["false_alarm_rate"],
                     *["-" if k is None else k for k in kinds]])  # fmt: skip
    return rows


def _plot(index, values, det: Detection, label: str, target: str):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.plot(index, values, color="k", lw=0.8, label="observed")
    ok = np.isfinite(det.lower)
    ax.fill_between(index[ok], det.lower[ok], det.upper[ok], color="C0", alpha=0.2,
                    label="interval")  # fmt: skip
    f = det.flags
    ax.scatter(index[f], values[f], color="red", s=14, zorder=3, label="flagged")
    ax.set_xlabel(label)
    ax.set_ylabel(target)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _plot_injected(index, inj: Injected, det: Detection, start: int, label: str, target: str):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = inj.values.shape[1]
    sl = slice(max(0, start - 2 * (n - start) // 3), n)
    x, v = index[:n][sl], inj.values[0, sl]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.plot(x, v, color="k", lw=0.8, label="series with injections")
    half = 0.5 * (index[1] - index[0])
    for k, kind, s, e in inj.events:
        if k == 0:
            color = f"C{KINDS.index(kind) + 1}"
            ax.axvspan(index[s] - half, index[e - 1] + half, color=color, alpha=0.25)
    ok = np.isfinite(det.lower[0, sl])
    ax.fill_between(x[ok], det.lower[0, sl][ok], det.upper[0, sl][ok], color="C0", alpha=0.2)
    f = det.flags[0, sl]
    ax.scatter(x[f], v[f], color="red", s=14, zorder=3, label="flagged")
    ax.set_xlabel(label)
    ax.set_ylabel(target)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
