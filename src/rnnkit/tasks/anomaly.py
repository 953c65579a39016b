"""Anomaly detection with a trained forecaster (rnnkit.models.forecaster.detect: the rules),
and its evaluation on anomalies injected into held-out data.

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
    Progress,
    detect,
    persistence_detect,
    residual_scale,
    training_threshold,
)
from ..training.report import Report, finish_series, series_axes
from .options import SEED_MAX, OptionError

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
    n, zone = len(S), int(np.ceil(m / 4))
    mp = np.empty(n)
    for i in range(0, n, chunk):
        d2 = np.maximum(2 * m * (1 - Z[i : i + chunk] @ Z.T / m), 0.0)  # (c, n)
        rows = np.arange(i, min(i + chunk, n))[:, None]
        d2[np.abs(rows - np.arange(n)[None, :]) < zone] = np.inf
        mp[i : i + chunk] = np.sqrt(d2.min(axis=1))
    mp[~np.isfinite(mp)] = 0.0  # a series too short for any match
    covered = np.convolve(np.ones(n), np.ones(m))  # windows covering each point, (N,)
    return np.convolve(mp, np.ones(m)) / covered


def matrix_profile_flags(values: np.ndarray, m: int, n_flags: int, start: int) -> np.ndarray:
    """The matrix-profile baseline: the n_flags points from `start` on with the highest
    `matrix_profile` scores -> (N,) bool. Given rnnkit's number of flags, so the two are
    compared at the same alarm budget (the matrix profile has no training part of its own:
    every subsequence is matched against the whole series)."""
    score = matrix_profile(values, m)[start:]
    flags = np.zeros(len(values), dtype=bool)
    flags[start + np.argsort(-score, kind="stable")[:n_flags]] = True
    return flags


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
    method: str = "interval",
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
    `series`, scored with label_scores. `false_alarm_rate`: the threshold flags this
    fraction of the run's training part instead of using the `level` rule.

    Raises:
        OptionError: level, method or trials out of range (names the field).
        RunError: `run_dir` is not a finished `train forecast` run.
    """
    from . import forecast

    if not 0 < level < 1:  # also refuses nan
        raise OptionError("level", "in (0, 1)", level)
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
    thr = None
    if false_alarm_rate is not None:
        if not 0 < false_alarm_rate < 1:  # also refuses nan
            raise OptionError("false_alarm_rate", "in (0, 1)", false_alarm_rate)
        thr = training_threshold(fc, train_ref, false_alarm_rate, method, rs)
    det = detect(fc, values, W, level, method, rs, progress=progress, what="the series",
                 threshold=thr)  # fmt: skip
    flagged = np.flatnonzero(det.flags)
    labelled = None
    if labels is not None:
        if series is None or len(labels) != len(values):
            raise DataError("labels need the series they mark (--data with --labels)")
        mp = matrix_profile_flags(values, W, max(1, int(det.flags[W:].sum())), W)
        labelled = {"rnnkit": label_scores(det.flags, labels, W),
                    "persistence residual": label_scores(
                        persistence_detect(values[None], train_ref, W, level)[0], labels, W),
                    f"matrix profile (m={W})": label_scores(mp, labels, W)}
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
                   what=f"{trials} injected trials", threshold=thr)  # fmt: skip
        base = persistence_detect(inj.values, train_ref, start, level)
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
