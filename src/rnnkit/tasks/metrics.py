"""The applications' metrics: classification (with label checks and BLAS threads), translation
(sacrebleu BLEU and chrF, exact match), and forecasts per lead time (MAE, RMSE, MSE, MASE,
interval coverage) from rolling origins."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import numpy as np

from ..data.text import DataError


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], n: int) -> dict:
    """Accuracy, macro-F1 and the confusion matrix (rows: true, columns: predicted).

    Example:
        >>> classification_metrics([0, 1, 1], [0, 1, 0], 2)["accuracy"]
        0.6666666666666666
    """
    if len(y_true) != len(y_pred) or not len(y_true):
        raise ValueError("classification_metrics: need equal, non-empty label lists")
    confusion = [[0] * n for _ in range(n)]
    for t, p in zip(y_true, y_pred, strict=True):
        confusion[t][p] += 1
    f1s = []
    for c in range(n):
        tp = confusion[c][c]
        fp = sum(confusion[r][c] for r in range(n)) - tp
        fn = sum(confusion[c]) - tp
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    correct = sum(confusion[c][c] for c in range(n))
    return {
        "accuracy": correct / len(y_true),
        "macro_f1": sum(f1s) / n,
        "confusion": confusion,
        "n": len(y_true),
    }


def translation_metrics(hyps: Sequence[str], refs: Sequence[str], bleu: bool = True) -> dict:
    """sacrebleu corpus BLEU and chrF (default settings, 13a tokenisation), exact match.

    BLEU counts word 4-grams over the corpus: it is 0 for outputs that are single words
    (the numbers data), so `bleu=False` reports None there; chrF still applies.

    Example:
        >>> translation_metrics(["a small house"], ["a small house"])["exact_match"]
        1.0
    """
    from ..deps import require

    if len(hyps) != len(refs) or not refs:
        raise ValueError("translation_metrics: need equal, non-empty lists")
    require("sacrebleu", what="BLEU and chrF")
    import sacrebleu

    # both sides are space-joined tokens, compared alike: no detokenisation warning needed
    score = sacrebleu.corpus_bleu(list(hyps), [list(refs)], force=True) if bleu else None
    chrf = sacrebleu.corpus_chrf(list(hyps), [list(refs)])
    exact = sum(int(h == r) for h, r in zip(hyps, refs, strict=True)) / len(refs)
    return {
        "bleu": None if score is None else score.score,
        "bleu_signature": None if score is None else str(score.format(signature=True)),
        "chrf": chrf.score,
        "exact_match": exact,
        "n": len(refs),
    }


def training_labels(source: str, train: Sequence[str], **others: Sequence[str]) -> list[str]:
    """The sorted labels of the training split; DataError if there is only one, or if another
    split (`val=...`, `test=...`) has a label training never shows."""
    labels = sorted(set(train))
    if len(labels) < 2:
        raise DataError(
            f"{source}: the training split has a single label ({labels[0]!r}); "
            "a classifier needs at least two"
        )
    for name, part in others.items():
        unseen = sorted(set(part) - set(labels))
        if unseen:
            raise DataError(
                f"{source}: label(s) {', '.join(map(repr, unseen))} appear in the {name} "
                f"split but never in training; add rows with them or remove those rows"
            )
    return labels


def known_labels(labels: Sequence[str], given: Sequence[str]) -> None:
    """DataError if `given` holds labels a trained run does not know."""
    unseen = sorted(set(given) - set(labels))
    if unseen:
        raise DataError(
            f"label(s) {', '.join(map(repr, unseen))} were not seen in training; this run "
            f"knows {', '.join(map(repr, labels))}"
        )


def blas_threads(n: int | None):
    """Limit BLAS/OpenMP threads (scikit-learn) like torch's, when a thread count is given."""
    if not n:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    return threadpool_limits(n)


# ---- forecasts (data units) --------------------------------------------------------------


def origins_for(n_train: int, n_end: int) -> np.ndarray:
    """Forecast origins o: every o whose o+1 is in the test part [n_train, n_end)."""
    return np.arange(n_train - 1, n_end - 1)


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

