"""Model selection on the training split alone: how the default recipe was chosen
(benchmarks/README.md, "Applications: series"); the test split is never read."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ...data.archives import ClassificationData
from .options import SequenceClassifyOptions


def cv_folds(labels: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """(N,) fold ids in 0..folds-1, stratified: each class is shuffled and dealt round-robin."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=np.int64)
    offset = 0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + offset) % folds
        offset += len(idx)  # continue the deal so small classes do not all start at fold 0
    return fold


def cross_validate(
    data: ClassificationData,
    options: SequenceClassifyOptions,
    run_root: str | Path,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Stratified k-fold accuracy of `options` on the TRAINING split of `data` only: each fold
    is a full run (fold-<f>/ under `run_root`) trained on the other folds.

    Returns {"accuracy": pooled over all held-out cases, "folds": per-fold accuracies,
    "1nn_euclidean": the baseline pooled the same way}.
    """
    from .. import driver
    from .task import SequenceClassifyTask

    fold = cv_folds(data.y_train, folds, seed)
    correct = base = 0.0
    per_fold = []
    for f in range(folds):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        part = dataclasses.replace(
            data,
            X_train=[data.X_train[i] for i in tr], y_train=data.y_train[tr],
            X_test=[data.X_train[i] for i in te], y_test=data.y_train[te], published=None,
        )  # fmt: skip
        run = driver.train(SequenceClassifyTask(part), options, Path(run_root) / f"fold-{f}",
                           overwrite=True, progress=False)  # fmt: skip
        correct += run.results["test_accuracy"] * len(te)
        base += run.results["baselines"]["1nn_euclidean"] * len(te)
        per_fold.append(run.results["test_accuracy"])
    n = len(data.y_train)
    return {"accuracy": correct / n, "folds": per_fold, "1nn_euclidean": base / n}
