"""Sequence classification: labelled real-valued sequences -> a recurrent classifier -> report.

    frames (B, T, D), lengths (B,) -> ManyToOne(bidirectional LSTM/GRU, mean/attention
    readout, softmax head) -> class

Speaker recognition (JapaneseVowels), activity recognition (BasicMotions), univariate problems
(GunPoint, ItalyPowerDemand) or a user's CSV/NPZ (rnnkit.data.archives). Channels are
standardised with statistics of the training split only (scaler.json in the run directory).
The baseline is computed in the same run: 1-NN with Euclidean distance (variable-length
sequences are first resampled to a common length); the published 1-NN DTW accuracy of the
UCR/UEA archives is quoted beside it.

With --ensemble N, N models seeded independently are trained on the same data and their
softmax outputs averaged; on training sets of 40-70 cases this removes most of the
seed-to-seed spread. `cross_validate` scores options by stratified k-fold on the training
split alone; the CLI defaults were chosen with it, never on a test split.

Run directory: config.json, model.safetensors, metrics.jsonl, checkpoint/ (rnnkit.training),
plus scaler.json, classes.json, results.json and report.html; ensemble members 1..N-1 in
member-<k>/ (each a full rnnkit.training run directory).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..algorithms import BPTT
from ..atomic import atomic_write_json
from ..config import HeadConfig, InputConfig, ManyToOneConfig, RNNConfig, TrainConfig
from ..data.archives import (
    ClassificationData,
    pad_sequences,
    resample,
    stratified_split,
)
from ..data.scaling import StandardScaler
from ..data.text import DataError
from ..models import build_model
from ..training import Trainer, load_run, seed_everything, write_run_json
from .report import Report, line_plot

TASK = "sequence-classify"


@dataclasses.dataclass(frozen=True)
class ClassifyOptions:
    """How to train the sequence classifier (the CLI's options, with the same defaults)."""

    cell: str = "gru"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    readout: str = "mean"
    dropout: float = 0.0
    epochs: int = 150
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.0
    augment: float = 0.1
    ensemble: int = 5
    seed: int = 0
    progress: bool = True


@dataclasses.dataclass
class ClassifyResult:
    run_dir: Path
    accuracy: float
    baseline_1nn_ed: float
    published: dict[str, Any] | None
    status: str
    seconds: float
    confusion: list[list[int]]
    classes: list[str]
    member_accuracies: list[float] = dataclasses.field(default_factory=list)

    def table(self) -> list[tuple[str, float | str]]:
        rows: list[tuple[str, float | str]] = [
            ("rnnkit (test accuracy)", self.accuracy),
        ]
        if len(self.member_accuracies) > 1:
            accs = self.member_accuracies
            rows.append((f"  its {len(accs)} members, mean", sum(accs) / len(accs)))
        rows += [
            ("1-NN Euclidean, this run", self.baseline_1nn_ed),
        ]
        if self.published:
            for key, label in (("dtw", "1-NN DTW, published"), ("euclidean", "1-NN ED, published")):
                if self.published.get(key) is not None:
                    rows.append((label, self.published[key]))
        return rows


# ---- baseline ---------------------------------------------------------------------------


def one_nn_euclidean(
    X_train: Sequence[np.ndarray], y_train: np.ndarray, X_test: Sequence[np.ndarray]
) -> np.ndarray:
    """1-nearest-neighbour labels under Euclidean distance.

    Sequences of different lengths are linearly resampled to the longest training length
    (the usual practice for equal-length 1-NN ED on unequal-length archives).
    Returns (N_test,) predicted class ids.
    """
    T = max(len(x) for x in X_train)
    A = resample(X_train, T).reshape(len(X_train), -1)  # (N, T·D)
    Bm = resample(X_test, T).reshape(len(X_test), -1)
    # squared distances (N_test, N_train) without forming the differences
    d = (Bm * Bm).sum(1)[:, None] - 2.0 * Bm @ A.T + (A * A).sum(1)[None, :]
    return np.asarray(y_train)[np.argmin(d, axis=1)]


# ---- training ---------------------------------------------------------------------------


def _scaler_for(seqs: Sequence[np.ndarray]) -> StandardScaler:
    return StandardScaler.fit(np.concatenate(list(seqs), axis=0))


def _tensors(seqs: Sequence[np.ndarray], scaler: StandardScaler, max_len: int | None = None):
    X, lengths = pad_sequences([scaler.transform(s).astype(np.float32) for s in seqs], max_len)
    return torch.from_numpy(X), torch.from_numpy(lengths)


def _batches(X: torch.Tensor, y: torch.Tensor, L: torch.Tensor, batch_size: int):
    """A fixed list of batches in order (evaluation), each trimmed to its longest sequence."""
    out = []
    for i in range(0, len(X), batch_size):
        Lb = L[i : i + batch_size]
        T = int(Lb.max())
        out.append((X[i : i + batch_size, :T], y[i : i + batch_size], Lb))
    return out


@torch.no_grad()
def predict_proba(model, X: torch.Tensor, L: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, C) in eval mode."""
    model.eval()
    probs = []
    for i in range(0, len(X), batch_size):
        Lb = L[i : i + batch_size]
        logits, _ = model(X[i : i + batch_size, : int(Lb.max())], lengths=Lb)
        probs.append(torch.softmax(logits, -1))
    return torch.cat(probs).numpy()


def member_dir(run_dir: str | Path, k: int) -> Path:
    """Where ensemble member k lives: the run directory itself for k = 0, else member-<k>/."""
    return Path(run_dir) if k == 0 else Path(run_dir) / f"member-{k}"


def member_seed(seed: int, k: int) -> int:
    """Member k of the run with --seed S is seeded S·1000 + k (member 0 keeps S), so the
    members of different seeds never coincide."""
    return seed if k == 0 else seed * 1000 + k


def _augmenter(augment: float):
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


def train_sequence_classifier(
    data: ClassificationData,
    run_dir: str | Path,
    opts: ClassifyOptions = ClassifyOptions(),
    overwrite: bool = False,
    console: Any = None,
) -> ClassifyResult:
    """Train (an ensemble of `opts.ensemble` independently seeded models), evaluate on the
    test split, run the 1-NN baseline, write the report.

    The ensemble averages the members' softmax outputs; member 0 is written to `run_dir`
    itself, member k to `run_dir/member-<k>/`.

    Example:
        >>> data = load_classification_source("JapaneseVowels")
        >>> r = train_sequence_classifier(data, "runs/jv")
        >>> r.accuracy, r.baseline_1nn_ed
    """
    if opts.epochs < 1 or opts.batch_size < 1 or opts.ensemble < 1:
        raise DataError("--epochs, --batch-size and --ensemble must be at least 1")
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    X_tr_list, y_tr_np = data.X_train, data.y_train
    val = None
    if opts.val_fraction > 0:
        tr_idx, va_idx = stratified_split(y_tr_np, opts.val_fraction, opts.seed)
        val_list = [X_tr_list[i] for i in va_idx]
        val_y = y_tr_np[va_idx]
        X_tr_list, y_tr_np = [X_tr_list[i] for i in tr_idx], y_tr_np[tr_idx]
    scaler = _scaler_for(X_tr_list)
    X_tr, L_tr = _tensors(X_tr_list, scaler)
    y_tr = torch.from_numpy(y_tr_np)
    if opts.val_fraction > 0:
        Xv, Lv = _tensors(val_list, scaler)
        val = _batches(Xv, torch.from_numpy(val_y), Lv, 256)

    N, B = len(X_tr), min(opts.batch_size, len(X_tr))
    steps = opts.epochs * math.ceil(N / B)
    aug = _augmenter(opts.augment) if opts.augment > 0 else None

    def train_batch(step: int, gen: torch.Generator):
        idx = torch.randint(0, N, (B,), generator=gen)
        Lb = L_tr[idx]
        x = X_tr[idx, : int(Lb.max())]
        return (x if aug is None else aug(x, Lb, gen)), y_tr[idx], Lb

    cfg = ManyToOneConfig(
        InputConfig("frames", features=data.features),
        HeadConfig("softmax", len(data.classes), dropout=opts.dropout),
        RNNConfig(opts.cell, opts.hidden_size, opts.num_layers, opts.bidirectional, opts.dropout),
        readout=opts.readout,
    )
    every = max(1, steps // 10)
    extra = {
        "task": TASK,
        "data": data.name,
        "classes": data.classes,
        "options": dataclasses.asdict(opts),
    }
    X_te, L_te = _tensors(data.X_test, scaler)
    proba = np.zeros((len(X_te), len(data.classes)))
    member_acc, fits = [], []
    for k in range(opts.ensemble):
        seed = member_seed(opts.seed, k)
        seed_everything(seed)
        model = build_model(cfg)
        tcfg = TrainConfig(
            steps=steps,
            batch_size=B,
            lr=opts.lr,
            weight_decay=opts.weight_decay,
            optimizer="adamw" if opts.weight_decay else "adam",
            schedule="cosine",
            min_lr_ratio=0.05,
            warmup_steps=min(20, steps // 10),
            eval_every=every if val is not None else 0,
            log_every=every,
            monitor="accuracy" if val is not None else "loss",
            monitor_mode="max" if val is not None else "min",
            seed=seed,
            progress=opts.progress,
        )
        trainer = Trainer(model, BPTT(), tcfg, run_dir=member_dir(run_dir, k), extra=extra,
                          overwrite=overwrite, console=console)  # fmt: skip
        fits.append(trainer.fit(train_batch, val))
        # test with the weights the run kept (best on validation, else final)
        p = predict_proba(load_run(member_dir(run_dir, k)).model, X_te, L_te)
        member_acc.append(float((p.argmax(1) == data.y_test).mean()))
        proba += p / opts.ensemble
    write_run_json(run_dir, "scaler", scaler.to_dict())
    write_run_json(run_dir, "classes", {"classes": data.classes})

    fit = fits[0]
    status = "diverged" if any(f.status == "diverged" for f in fits) else fit.status
    pred = proba.argmax(1)
    acc = float((pred == data.y_test).mean())
    base = float((one_nn_euclidean(data.X_train, data.y_train, data.X_test) == data.y_test).mean())
    C = len(data.classes)
    confusion = np.zeros((C, C), dtype=np.int64)
    np.add.at(confusion, (data.y_test, pred), 1)
    published = dataclasses.asdict(data.published) if data.published else None
    result = ClassifyResult(
        run_dir, acc, base, published, status, time.perf_counter() - t0,
        confusion.tolist(), data.classes, member_acc,
    )  # fmt: skip
    atomic_write_json(
        run_dir / "results.json",
        {
            "task": TASK,
            "data": data.summary(),
            "test_accuracy": acc,
            "member_accuracies": member_acc,
            "baselines": {"1nn_euclidean": base, "published": published},
            "confusion": result.confusion,
            "classes": data.classes,
            "fit": {
                "status": status,
                "message": fit.message,
                "steps": fit.step,
                "members": len(fits),
            },
            "seconds": round(result.seconds, 2),
            "options": dataclasses.asdict(opts),
        },
    )
    _report(run_dir, data, result, fit)
    return result


def _report(run_dir: Path, data: ClassificationData, result: ClassifyResult, fit) -> None:
    from ..atomic import read_jsonl

    r = Report(f"Sequence classification: {Path(data.name).name}")
    if data.description:
        r.paragraph(data.description)
    r.table(data.summary())
    r.heading("Test accuracy against the baselines")
    r.table(result.table(), header=("method", "accuracy"))
    if result.published:
        r.paragraph(f"Published figures: {result.published['source']}.", muted=True)
    r.paragraph(
        "1-NN Euclidean: nearest training sequence after linear resampling to a common length,"
        " computed in this run on the same split.",
        muted=True,
    )
    r.heading("Confusion matrix (rows: true class, columns: predicted)")
    r.table(
        [[c, *row] for c, row in zip(result.classes, result.confusion, strict=True)],
        header=("", *result.classes),
    )
    logs = [m for m in read_jsonl(run_dir / "metrics.jsonl") if m.get("split") == "train"]
    if logs:
        xs = [m["step"] for m in logs]
        series = {"train loss": (xs, [m["loss"] for m in logs])}
        r.figure(line_plot(series, "step", "loss", logy=True), "training loss")
    n = max(1, len(result.member_accuracies))
    r.paragraph(
        f"training: {fit.status} ({fit.message}{f', each of {n} members' if n > 1 else ''});"
        f" {result.seconds:.1f} s",
        muted=True,
    )
    r.write(run_dir / "report.html")


# ---- model selection on the training split ----------------------------------------------


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
    opts: ClassifyOptions,
    run_root: str | Path,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Stratified k-fold accuracy of `opts` on the TRAINING split only (the test split is
    never read): how the default recipes were chosen.

    Returns {"accuracy": pooled over all held-out cases, "folds": per-fold accuracies,
    "1nn_euclidean": the baseline pooled the same way}.
    """
    fold = cv_folds(data.y_train, folds, seed)
    correct = base = 0
    per_fold = []
    for f in range(folds):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        part = dataclasses.replace(
            data,
            X_train=[data.X_train[i] for i in tr], y_train=data.y_train[tr],
            X_test=[data.X_train[i] for i in te], y_test=data.y_train[te], published=None,
        )  # fmt: skip
        r = train_sequence_classifier(part, Path(run_root) / f"fold-{f}", opts, overwrite=True)
        correct += r.accuracy * len(te)
        base += r.baseline_1nn_ed * len(te)
        per_fold.append(r.accuracy)
    n = len(data.y_train)
    return {"accuracy": correct / n, "folds": per_fold, "1nn_euclidean": base / n}


# ---- prediction from a saved run --------------------------------------------------------


def load_classifier(run_dir: str | Path):
    """(models, scaler, classes) from a sequence-classify run directory; `models` holds the
    ensemble's members (one model for --ensemble 1)."""
    run = load_run(run_dir)
    if run.extra.get("task") != TASK:
        from ..training import RunError

        raise RunError(f"{run_dir}: not a sequence-classify run (made by `train {run.task}`)")
    n = int(run.extra.get("options", {}).get("ensemble", 1))
    models = [run.model] + [load_run(member_dir(run_dir, k)).model for k in range(1, n)]
    scaler = StandardScaler.from_dict(run.read_json("scaler"))
    classes = run.read_json("classes")["classes"]
    return models, scaler, classes


def classify(run_dir: str | Path, seqs: Sequence[np.ndarray]) -> list[tuple[str, float]]:
    """(label, probability) for each (T_i, D) sequence (the ensemble's mean softmax)."""
    models, scaler, classes = load_classifier(run_dir)
    D = len(scaler.mean)
    for i, s in enumerate(seqs):
        if s.ndim != 2 or s.shape[1] != D:
            raise DataError(f"sequence {i} has shape {s.shape}; the model reads {D} channels")
    X, L = _tensors(seqs, scaler)
    proba = sum(predict_proba(m, X, L) for m in models) / len(models)
    return [(classes[int(p.argmax())], float(p.max())) for p in proba]
