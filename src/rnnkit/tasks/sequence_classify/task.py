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
    load_classification_source,
    pad_sequences,
    resample,
    stratified_split,
)
from ...data.scaling import StandardScaler
from ...data.text import DataError
from .. import driver
from ..options import CELL_FAMILIES, OptionError, to_dict
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
        val = fixed_batches(*tensors(X_va, scaler), torch.from_numpy(y_va), 256)
    summary = {**data.summary(), "labels": data.classes, "fit_on": len(X_tr),
               "val": 0 if val is None else len(y_va)}  # fmt: skip
    return SequenceData(data, scaler, X, torch.from_numpy(y_tr), lengths, val, summary)


def tensors(seqs: Sequence[np.ndarray], scaler: StandardScaler):
    """(T_i, D) arrays -> standardised frames (N, T_max, D) zero-padded, lengths (N,)."""
    X, lengths = pad_sequences([scaler.transform(s).astype(np.float32) for s in seqs])
    return torch.from_numpy(X), torch.from_numpy(lengths)


def fixed_batches(X: torch.Tensor, L: torch.Tensor, y: torch.Tensor, size: int) -> list[tuple]:
    """Batches (x, y, lengths) in order (evaluation), each trimmed to its longest sequence."""
    out = []
    for i in range(0, len(X), size):
        Lb = L[i : i + size]
        out.append((X[i : i + size, : int(Lb.max())], y[i : i + size], Lb))
    return out


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


@torch.no_grad()
def predict_proba(model, X: torch.Tensor, L: torch.Tensor, size: int = 256) -> np.ndarray:
    """Class probabilities (N, C) in eval mode."""
    model.eval()
    probs = []
    for i in range(0, len(X), size):
        Lb = L[i : i + size]
        logits, _ = model(X[i : i + size, : int(Lb.max())], lengths=Lb)
        probs.append(torch.softmax(logits, -1))
    return torch.cat(probs).numpy()


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
        from ...config import TrainConfig

        batch = min(options.batch, len(data.X))
        steps = options.total_steps(-(-len(data.X) // batch))
        every, val = max(1, steps // 10), data.val is not None
        minutes = None if options.minutes is None else options.minutes / options.ensemble
        return TrainConfig(
            steps=steps, time_minutes=minutes, batch_size=batch, lr=options.lr,
            weight_decay=options.weight_decay,
            optimizer="adamw" if options.weight_decay else "adam", schedule="cosine",
            min_lr_ratio=0.05, warmup_steps=min(20, steps // 10),
            eval_every=every if val else 0, log_every=every,
            monitor="accuracy" if val else "loss", monitor_mode="max" if val else "min",
            seed=options.seed,
        )  # fmt: skip

    def batches(self, options: SequenceClassifyOptions, data: SequenceData):
        N, B = len(data.X), min(options.batch, len(data.X))
        aug = augmenter(options.augment) if options.augment > 0 else None

        def train_batch(step: int, gen: torch.Generator):
            idx = torch.randint(0, N, (B,), generator=gen)
            Lb = data.lengths[idx]
            x = data.X[idx, : int(Lb.max())]
            return (x if aug is None else aug(x, Lb, gen)), data.y[idx], Lb

        return train_batch, data.val

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
        clf = SequenceClassifier([f.model for f in fits], ctx.data.scaler, ctx.data.source.classes)
        return Fitted(clf, fits[0].trainer, fits[0].result)

    def evaluate(self, options, data: SequenceData, fitted: Fitted) -> dict[str, Any]:
        src, clf = data.source, fitted.model
        X_te, L_te = tensors(src.X_test, data.scaler)
        probs = [predict_proba(m, X_te, L_te) for m in clf.models]
        members = [float((p.argmax(1) == src.y_test).mean()) for p in probs]
        pred = (sum(probs) / len(probs)).argmax(1)
        base = one_nn_euclidean(src.X_train, src.y_train, src.X_test)
        C = len(src.classes)
        confusion = np.zeros((C, C), dtype=np.int64)
        np.add.at(confusion, (src.y_test, pred), 1)
        return {
            "test_accuracy": float((pred == src.y_test).mean()), "member_accuracies": members,
            "baselines": {"1nn_euclidean": float((base == src.y_test).mean()),
                          "published": dataclasses.asdict(src.published) if src.published
                          else None},
            "confusion": confusion.tolist(), "classes": src.classes,
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
        r.heading("Test accuracy against the baselines")
        r.table(accuracy_rows(results), header=("method", "accuracy"))
        published = results["baselines"]["published"]
        if published:
            r.paragraph(f"Published figures: {published['source']}.", muted=True)
        r.paragraph("1-NN Euclidean: nearest training sequence after linear resampling to a "
                    "common length, computed in this run on the same split.", muted=True)
        r.heading("Confusion matrix (rows: true class, columns: predicted)")
        r.table([[c, *row] for c, row in zip(results["classes"], results["confusion"],
                                             strict=True)], header=("", *results["classes"]))
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


TASK = SequenceClassifyTask()


def train(options: SequenceClassifyOptions, out: str | Path, **kwargs: Any):
    """Train the ensemble and the baseline on one split; see rnnkit.tasks.driver.train."""
    return driver.train(TASK, options, out, **kwargs)


def load(run_dir: str | Path) -> SequenceClassifier:
    """A `train sequence-classify` run (all its members), loaded for `classify`."""
    return driver.load(run_dir, NAME)
