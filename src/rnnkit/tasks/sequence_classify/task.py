"""The sequence-classification Task: data, the ensemble, the 1-NN baseline, the report, and
the loaded SequenceClassifier.

A run directory holds member 0 (config.json, model.safetensors, metrics.jsonl, checkpoint/)
plus scaler.json, classes.json, results.json and report.html; ensemble members 1..N-1 are in
member-<k>/, each a full rnnkit.training run directory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data.archives import (
    ClassificationData,
    cv_folds,
    load_classification_source,
    pad_sequences,
    stratified_split,
)
from ...data.batching import fixed_batches, random_batches
from ...data.scaling import StandardScaler
from ...data.text import DataError
from ...models.classical import one_nn_euclidean
from ...models.many_to_one import class_probabilities
from .. import driver, entry_points
from ..metrics import classification_metrics
from ..options import CELL_FAMILIES, OptionError, to_dict
from ..report import accuracy_section
from ..task import Fitted, Task
from .options import NAME, SequenceClassifyOptions

SCALER_FILE, CLASSES_FILE = "scaler.json", "classes.json"


@dataclass
class SequenceData:
    """A split, standardised and as tensors: frames (N, T, D) zero-padded, lengths (N,)."""

    source: ClassificationData  # the split as loaded (the 1-NN baseline reads all of train)
    scaler: StandardScaler
    X: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor
    val: list[tuple] | None
    summary: dict[str, Any]


def load_data(options: SequenceClassifyOptions) -> ClassificationData:
    """The problem `options.data` names, cut to --max-train / --max-test cases."""
    data = load_classification_source(
        options.data, options.test, id_column=options.id_column,
        label_column=options.label_column, time_column=options.time_column, seed=options.seed,
    )  # fmt: skip
    if options.max_train or options.max_test:
        data = data.subset(options.max_train, options.max_test)
        if len(set(data.y_train.tolist())) < 2:
            raise OptionError("max_train", "large enough to keep 2 classes", options.max_train)
    return data


def encode(data: ClassificationData, options: SequenceClassifyOptions) -> SequenceData:
    """Split off the validation part (if any), fit the scaler on what is left, make tensors."""
    X_tr, y_tr, val = data.X_train, data.y_train, None
    if options.val_fraction > 0:
        tr, va = stratified_split(y_tr, options.val_fraction, options.seed)
        X_va, y_va = [X_tr[i] for i in va], y_tr[va]
        X_tr, y_tr = [X_tr[i] for i in tr], y_tr[tr]
    scaler = StandardScaler.fit(np.concatenate(list(X_tr), axis=0))
    X, lengths = tensors(X_tr, scaler)
    if options.val_fraction > 0:
        X_v, L_v = tensors(X_va, scaler)
        val = fixed_batches(X_v, torch.from_numpy(y_va), L_v)
    summary = {**data.summary(), "labels": data.classes, "fit_on": len(X_tr),
               "val": 0 if val is None else len(y_va)}  # fmt: skip
    return SequenceData(data, scaler, X, torch.from_numpy(y_tr), lengths, val, summary)


def tensors(seqs: Sequence[np.ndarray], scaler: StandardScaler):
    """(T_i, D) arrays -> standardised frames (N, T_max, D) zero-padded, lengths (N,)."""
    X, lengths = pad_sequences([scaler.transform(s).astype(np.float32) for s in seqs])
    return torch.from_numpy(X), torch.from_numpy(lengths)


def augmenter(augment: float):
    """Jitter and amplitude scaling of standardised frames, both with std `augment`.

    x (B, T, D) -> x · (1 + ε_scale) + ε_jitter, ε_scale (B, 1, D) per sequence and channel,
    ε_jitter (B, T, D) per frame; padded frames stay 0.
    """

    def aug(x: torch.Tensor, lengths: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        B, T, D = x.shape
        scale = 1.0 + augment * torch.randn(B, 1, D, generator=gen)
        noise = augment * torch.randn(B, T, D, generator=gen)
        mask = (torch.arange(T)[None, :] < lengths[:, None]).unsqueeze(-1)  # (B, T, 1)
        return (x * scale + noise) * mask

    return aug


def predict_proba(model, X: torch.Tensor, L: torch.Tensor) -> np.ndarray:
    """Class probabilities (N, C) in eval mode."""
    return class_probabilities(model, X, L).numpy()


def member_dir(run_dir: str | Path, k: int) -> Path:
    """Where ensemble member k lives: the run directory itself for k = 0, else member-<k>/."""
    return Path(run_dir) if k == 0 else Path(run_dir) / f"member-{k}"


def member_seed(seed: int, k: int) -> int:
    """Member k of the run with --seed S is seeded S·1000 + k (member 0 keeps S), so the
    members of different seeds never coincide."""
    return seed if k == 0 else seed * 1000 + k


@dataclass
class SequenceClassifier:
    """A trained ensemble (one model for --ensemble 1), for prediction."""

    models: list[Any]
    scaler: StandardScaler
    classes: list[str]

    def predict_proba(self, seqs: Sequence[np.ndarray]) -> np.ndarray:
        """(T_i, D) sequences -> the members' mean class probabilities (N, C)."""
        D = len(self.scaler.mean)
        for i, s in enumerate(seqs):
            if s.ndim != 2 or s.shape[1] != D:
                raise DataError(f"sequence {i} has shape {s.shape}; the model reads {D} channels")
        X, L = tensors(seqs, self.scaler)
        return sum(predict_proba(m, X, L) for m in self.models) / len(self.models)

    def classify(self, seqs: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """(label, probability) for each (T_i, D) sequence."""
        return [(self.classes[int(p.argmax())], float(p.max())) for p in self.predict_proba(seqs)]


class SequenceClassifyTask(Task):
    """`data`: train on this split instead of loading `options.data` (cross-validation)."""

    name = NAME
    title = "Sequence classification"
    options = SequenceClassifyOptions

    def __init__(self, data: ClassificationData | None = None):
        self.data = data

    def prepare(self, options: SequenceClassifyOptions) -> SequenceData:
        return encode(self.data if self.data is not None else load_data(options), options)

    def build(self, options: SequenceClassifyOptions, data: SequenceData):
        from ...config import HeadConfig, InputConfig, ManyToOneConfig, RNNConfig
        from ...models import build_model

        return build_model(ManyToOneConfig(
            InputConfig("frames", features=data.source.features),
            HeadConfig("softmax", len(data.source.classes), dropout=options.dropout),
            RNNConfig(CELL_FAMILIES[options.cell], options.hidden, options.layers,
                      options.bidirectional, options.dropout),
            readout=options.readout,
        ))  # fmt: skip

    def files(self, options, data: SequenceData) -> dict[str, Any]:
        return {SCALER_FILE: data.scaler.to_dict(), CLASSES_FILE: {"classes": data.source.classes}}

    def train_config(self, options: SequenceClassifyOptions, data: SequenceData):

        batch = min(options.batch, len(data.X))
        steps = options.total_steps(-(-len(data.X) // batch))
        every, val = max(1, steps // 10), data.val is not None
        minutes = None if options.minutes is None else options.minutes / options.ensemble
        return options.train_config(
            steps, time_minutes=minutes, batch_size=batch, schedule="cosine", min_lr_ratio=0.05,
            warmup_steps=min(20, steps // 10), eval_every=every if val else 0, log_every=every,
            monitor="accuracy" if val else "loss", monitor_mode="max" if val else "min",
        )  # fmt: skip

    def batches(self, options: SequenceClassifyOptions, data: SequenceData):
        aug = augmenter(options.augment) if options.augment > 0 else None
        return random_batches(data.X, data.y, data.lengths, options.batch, aug), data.val

    def fit(self, ctx) -> Fitted:
        """Member k: seeded member_seed(seed, k), its own Trainer into member_dir(out, k).
        Member 0 is the model the driver built (seeded with --seed) and its Trainer logs the
        test metrics."""
        from ...training import seed_everything

        ctx.say(" ".join(f"{k}: {v}" for k, v in ctx.data.source.summary().items()))
        fits = []
        for k in range(ctx.options.ensemble):
            seed = member_seed(ctx.options.seed, k)
            if k > 0:
                seed_everything(seed)
            member = dataclasses.replace(
                ctx, model=ctx.model if k == 0 else self.build(ctx.options, ctx.data),
                config=dataclasses.replace(ctx.config, seed=seed), out=member_dir(ctx.out, k),
            )  # fmt: skip
            if ctx.options.ensemble > 1:
                ctx.say(f"member {k + 1} of {ctx.options.ensemble} (seed {seed})")
            fits.append(driver.fit_one(self, member))
            if fits[-1].result.status == "interrupted":  # Ctrl-C / SIGTERM stops the ensemble
                ctx.say(f"stopped after member {k + 1} of {ctx.options.ensemble}")
                break
        clf = SequenceClassifier([f.model for f in fits], ctx.data.scaler, ctx.data.source.classes)
        ended = fits[-1].result if fits[-1].result.status == "interrupted" else fits[0].result
        return Fitted(clf, fits[0].trainer, ended)

    def evaluate(self, options, data: SequenceData, fitted: Fitted) -> dict[str, Any]:
        src, clf = data.source, fitted.model
        X_te, L_te = tensors(src.X_test, data.scaler)
        probs = [predict_proba(m, X_te, L_te) for m in clf.models]
        members = [float((p.argmax(1) == src.y_test).mean()) for p in probs]
        pred = (sum(probs) / len(probs)).argmax(1)
        base = one_nn_euclidean(src.X_train, src.y_train, src.X_test)
        return {
            "test_accuracy": float((pred == src.y_test).mean()), "member_accuracies": members,
            "baselines": {"1nn_euclidean": float((base == src.y_test).mean()),
                          "published": dataclasses.asdict(src.published) if src.published
                          else None},
            "confusion": classification_metrics(src.y_test.tolist(), pred.tolist(),
                                                len(src.classes))["confusion"],
            "classes": src.classes,
            "description": src.description, "options": to_dict(options),
        }  # fmt: skip

    def test_metrics(self, results):
        return {"accuracy": results["test_accuracy"],
                "baseline_1nn_euclidean": results["baselines"]["1nn_euclidean"]}  # fmt: skip

    def summary(self, results):
        data = results["data"]
        title = f"{Path(data['data']).name}: test split ({data['test']} cases)"
        return title, ["method", "accuracy"], accuracy_rows(results)

    def report(self, r, run, results) -> None:
        if results.get("description"):
            r.paragraph(results["description"])
        r.table(results["data"])
        published = results["baselines"]["published"]
        accuracy_section(r, "Test accuracy against the baselines", ("method", "accuracy"),
                         accuracy_rows(results), results["classes"], results["confusion"],
                         run.evals("val"))  # fmt: skip
        if published:
            r.paragraph(f"Published figures: {published['source']}.", muted=True)
        r.paragraph("1-NN Euclidean: nearest training sequence after linear resampling to a "
                    "common length, computed in this run on the same split.", muted=True)
        n = len(results["member_accuracies"])
        if n > 1:
            r.paragraph(f"Training below is member 0's; each of the {n} members trains the "
                        "same way with its own seed.", muted=True)

    def load(self, run) -> SequenceClassifier:
        from ...training import load_run

        n = int(driver.run_record(run.extra)["options"].get("ensemble", 1))
        models = [run.model] + [load_run(member_dir(run.path, k)).model for k in range(1, n)]
        scaler = StandardScaler.from_dict(run.read_json(SCALER_FILE))
        return SequenceClassifier(models, scaler, run.read_json(CLASSES_FILE)["classes"])


def accuracy_rows(results: dict[str, Any]) -> list[list[Any]]:
    """(method, test accuracy): the ensemble, its members' mean, 1-NN ED, published 1-NN."""
    rows: list[list[Any]] = [["rnnkit (test accuracy)", results["test_accuracy"]]]
    accs = results["member_accuracies"]
    if len(accs) > 1:
        rows.append([f"  its {len(accs)} members, mean", sum(accs) / len(accs)])
    rows.append(["1-NN Euclidean, this run", results["baselines"]["1nn_euclidean"]])
    published = results["baselines"]["published"] or {}
    for key, label in (("dtw", "1-NN DTW, published"), ("euclidean", "1-NN ED, published")):
        if published.get(key) is not None:
            rows.append([label, published[key]])
    return rows


def cross_validate(
    data: ClassificationData,
    options: SequenceClassifyOptions,
    run_root: str | Path,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """How the default recipe was chosen (benchmarks/README.md, "Applications: series"):
    stratified k-fold accuracy of `options` on the TRAINING split of `data` only: each fold
    is a full run (fold-<f>/ under `run_root`) trained on the other folds.

    Returns {"accuracy": pooled over all held-out cases, "folds": per-fold accuracies,
    "1nn_euclidean": the baseline pooled the same way}.
    """
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


TASK = SequenceClassifyTask()
train, load = entry_points(TASK)
