"""Sequence classification: labelled real-valued sequences -> a recurrent classifier -> report.

    frames (B, T, D), lengths (B,) -> ManyToOne(bidirectional LSTM/GRU, mean/attention
    readout, softmax head) -> class

Speaker recognition (JapaneseVowels), activity recognition (BasicMotions), univariate problems
(GunPoint, ItalyPowerDemand) or a user's CSV/NPZ (rnnkit.data.timeseries). Channels are
standardised with statistics of the training split only (scaler.json in the run directory).
The baseline is computed in the same run: 1-NN with Euclidean distance (variable-length
sequences are first resampled to a common length); the published 1-NN DTW accuracy of the
UCR/UEA archives is quoted beside it.

Run directory: config.json, model.safetensors, metrics.jsonl, checkpoint/ (rnnkit.training),
plus scaler.json, classes.json, results.json and report.html.
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
from ..config import HeadConfig, InputConfig, ManyToOneConfig, RNNConfig, TrainConfig
from ..data.text import DataError
from ..data.timeseries import (
    ClassificationData,
    StandardScaler,
    pad_sequences,
    resample,
    stratified_split,
)
from ..models import build_model
from ..training import Trainer, atomic_write_json, load_run, seed_everything, write_run_json
from .report import Report, line_plot

TASK = "sequence-classify"


@dataclasses.dataclass(frozen=True)
class ClassifyOptions:
    """How to train the sequence classifier (the CLI's options, with the same defaults)."""

    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    readout: str = "mean"
    dropout: float = 0.0
    epochs: int = 60
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.0
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

    def table(self) -> list[tuple[str, float | str]]:
        rows: list[tuple[str, float | str]] = [
            ("rnnkit (test accuracy)", self.accuracy),
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


def train_sequence_classifier(
    data: ClassificationData,
    run_dir: str | Path,
    opts: ClassifyOptions = ClassifyOptions(),
    overwrite: bool = False,
    console: Any = None,
) -> ClassifyResult:
    """Train, evaluate on the test split, run the 1-NN baseline, write the report.

    Example:
        >>> data = load_classification_source("JapaneseVowels")
        >>> r = train_sequence_classifier(data, "runs/jv")
        >>> r.accuracy, r.baseline_1nn_ed
    """
    if opts.epochs < 1 or opts.batch_size < 1:
        raise DataError("--epochs and --batch-size must be at least 1")
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    seed_everything(opts.seed)
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

    def train_batch(step: int, gen: torch.Generator):
        idx = torch.randint(0, N, (B,), generator=gen)
        Lb = L_tr[idx]
        return X_tr[idx, : int(Lb.max())], y_tr[idx], Lb

    cfg = ManyToOneConfig(
        InputConfig("frames", features=data.features),
        HeadConfig("softmax", len(data.classes), dropout=opts.dropout),
        RNNConfig(opts.cell, opts.hidden_size, opts.num_layers, opts.bidirectional, opts.dropout),
        readout=opts.readout,
    )
    model = build_model(cfg)
    every = max(1, steps // 10)
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
        seed=opts.seed,
        progress=opts.progress,
    )
    extra = {
        "task": TASK,
        "data": data.name,
        "classes": data.classes,
        "options": dataclasses.asdict(opts),
    }
    trainer = Trainer(model, BPTT(), tcfg, run_dir=run_dir, extra=extra, overwrite=overwrite,
                      console=console)  # fmt: skip
    fit = trainer.fit(train_batch, val)
    write_run_json(run_dir, "scaler", scaler.to_dict())
    write_run_json(run_dir, "classes", {"classes": data.classes})

    # test with the weights the run kept (best on validation, else final)
    model = load_run(run_dir).model
    X_te, L_te = _tensors(data.X_test, scaler)
    proba = predict_proba(model, X_te, L_te)
    pred = proba.argmax(1)
    acc = float((pred == data.y_test).mean())
    base = float((one_nn_euclidean(data.X_train, data.y_train, data.X_test) == data.y_test).mean())
    C = len(data.classes)
    confusion = np.zeros((C, C), dtype=np.int64)
    np.add.at(confusion, (data.y_test, pred), 1)
    published = dataclasses.asdict(data.published) if data.published else None
    result = ClassifyResult(
        run_dir, acc, base, published, fit.status, time.perf_counter() - t0,
        confusion.tolist(), data.classes,
    )  # fmt: skip
    atomic_write_json(
        run_dir / "results.json",
        {
            "task": TASK,
            "data": data.summary(),
            "test_accuracy": acc,
            "baselines": {"1nn_euclidean": base, "published": published},
            "confusion": result.confusion,
            "classes": data.classes,
            "fit": {"status": fit.status, "message": fit.message, "steps": fit.step},
            "seconds": round(result.seconds, 2),
            "options": dataclasses.asdict(opts),
        },
    )
    _report(run_dir, data, result, fit)
    return result


def _report(run_dir: Path, data: ClassificationData, result: ClassifyResult, fit) -> None:
    from ..training import read_jsonl

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
    r.paragraph(f"training: {fit.status} ({fit.message}); {result.seconds:.1f} s", muted=True)
    r.write(run_dir / "report.html")


# ---- prediction from a saved run --------------------------------------------------------


def load_classifier(run_dir: str | Path):
    """(model, scaler, classes) from a sequence-classify run directory."""
    run = load_run(run_dir)
    if run.extra.get("task") != TASK:
        from ..training import RunError

        raise RunError(f"{run_dir}: not a sequence-classify run (task {run.extra.get('task')!r})")
    scaler = StandardScaler.from_dict(run.read_json("scaler"))
    classes = run.read_json("classes")["classes"]
    return run.model, scaler, classes


def classify(run_dir: str | Path, seqs: Sequence[np.ndarray]) -> list[tuple[str, float]]:
    """(label, probability) for each (T_i, D) sequence."""
    model, scaler, classes = load_classifier(run_dir)
    D = len(scaler.mean)
    for i, s in enumerate(seqs):
        if s.ndim != 2 or s.shape[1] != D:
            raise DataError(f"sequence {i} has shape {s.shape}; the model reads {D} channels")
    X, L = _tensors(seqs, scaler)
    proba = predict_proba(model, X, L)
    return [(classes[int(p.argmax())], float(p.max())) for p in proba]
