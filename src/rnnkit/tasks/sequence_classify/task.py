"""The sequence-classification Task: data, the automatic settings, the ensemble, the
baselines, the report, and the loaded SequenceClassifier.

A run directory holds member 0 (config.json, model.safetensors, metrics.jsonl, checkpoint/)
plus scaler.json (the normalisation and channel statistics), classes.json, results.json and
report.html; ensemble members 1..N-1 are in member-<k>/, each a full rnnkit.training run
directory.

The pooling and the patch follow the longest training series (auto_pool, auto_patch). The
automatic settings (`choose`) are scored on the training split alone: each candidate (front
end x normalisation) trains `select_steps` updates on the rest of train and is scored by its
best accuracy on a stratified `val_fraction` of it; results.json["auto"] records every score.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

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
from ...export import mean_probabilities
from ...models import classical
from ...models.many_to_one import class_probabilities
from .. import driver, entry_points
from ..members import member_plan
from ..metrics import classification_metrics
from ..options import CELL_FAMILIES, HUGE, OptionError, to_dict
from ..report import accuracy_section
from ..task import Fitted, Task
from .options import FRONTENDS, NAME, STEPS_TARGET, SequenceClassifyOptions

SCALER_FILE, CLASSES_FILE = "scaler.json", "classes.json"
# what --normalise auto compares on series not already normalised per series: "level" (the
# series normalised, its level and scale beside) in the place "series" held until session 16
AUTO_NORMALISATIONS = ("level", "global")
FALLBACK = ("conv", "series")  # the settings when nothing is validated (--val-fraction 0)


@dataclass(frozen=True)
class Choice:
    """The settings a run trains with, and how they were chosen.

    scores: {"<frontend>/<normalise>": {"val_accuracy", "val_loss", "best_step", "cases",
    "seconds"}} for each candidate compared on the validation part of train ({} when none
    was); with --select-folds K > 1 the pooled figures and "folds": each fold's own, in
    place of "best_step".
    """

    frontend: str
    normalise: str
    patch: int
    scores: dict[str, dict[str, Any]]
    reason: str
    seconds: float = 0.0
    pool: int = 1  # frames averaged into one before the model (auto_pool)
    diff: bool = False  # the frames' first differences beside them (--diff)
    dilate: int = 1  # the members' --dilate (with --choose-dilate N: 1 or N as chosen)
    dilate_scores: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # {"dilation <d>": score} of the models --choose-dilate compared ({} when none was)


@dataclass
class SequenceData:
    """The training split, normalised and as tensors: frames (N, T, D) zero-padded, lengths (N,).
    `seconds`: the time of each phase (selection, training), for results.json."""

    source: ClassificationData  # the split as loaded (the baselines read all of train)
    choice: Choice
    scaler: StandardScaler
    X: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor
    summary: dict[str, Any]
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)


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


def normalised(seqs: Sequence[np.ndarray], mode: str) -> list[np.ndarray]:
    """Modes "series" and "level": each (T_i, D) series to zero mean and unit variance per
    channel (a constant channel only centred); "global": unchanged (the channel scaler does the
    work)."""
    if mode == "global":
        return list(seqs)
    out = []
    for s in seqs:
        sd = s.std(0)
        out.append((s - s.mean(0)) / np.where(sd > 1e-8, sd, 1.0))
    return out


def pooled(seqs: Sequence[np.ndarray], pool: int) -> list[np.ndarray]:
    """Each (T_i, D) series -> (ceil(T_i / pool), D): the mean of each `pool` frames (the
    last window may be shorter; piecewise aggregate approximation)."""
    if pool == 1:
        return list(seqs)
    out = []
    for s in seqs:
        n = len(s)
        starts = np.arange(0, n, pool)
        out.append(np.add.reduceat(s, starts, axis=0) / np.diff(np.append(starts, n))[:, None])
    return out


def with_differences(seqs: Sequence[np.ndarray], diff: bool) -> list[np.ndarray]:
    """Each (T_i, D) series -> (T_i, 2D): the series beside its first difference x_t - x_{t-1}
    (0 at t = 0), when `diff`; else unchanged."""
    if not diff:
        return list(seqs)
    return [np.concatenate([s, np.diff(s, axis=0, prepend=s[:1])], axis=1) for s in seqs]


def levels(s: np.ndarray) -> np.ndarray:
    """A (T, D) series -> (2D,): per channel asinh(mean) and log(std) (std 1 for a constant
    channel, as `normalised` divides): the level and scale that per-series normalisation
    removes, in units that stay tame over orders of magnitude."""
    sd = s.std(0)
    return np.concatenate([np.arcsinh(s.mean(0)), np.log(np.where(sd > 1e-8, sd, 1.0))])


def frames(seqs: Sequence[np.ndarray], mode: str, pool: int = 1, diff: bool = False):
    """(T_i, D) arrays -> normalised, pooled, with their differences (--diff), and in mode
    "level" each series' `levels` repeated on every frame beside them: the frames before the
    channel scaler."""
    out = with_differences(pooled(normalised(seqs, mode), pool), diff)
    if mode != "level":
        return out
    return [np.concatenate([f, np.broadcast_to(levels(s), (len(f), 2 * s.shape[1]))], axis=1)
            for f, s in zip(out, seqs, strict=True)]  # fmt: skip


def frame_channels(channels: int, mode: str, diff: bool) -> int:
    """The channels `frames` gives a model from series of `channels` channels."""
    return channels * ((2 if diff else 1) + (2 if mode == "level" else 0))


def tensors(seqs: Sequence[np.ndarray], scaler: StandardScaler, mode: str, pool: int = 1,
            diff: bool = False):  # fmt: skip
    """(T_i, D) arrays -> scaled `frames` (N, T_max, D or 2D) zero-padded, lengths (N,)."""
    X, lengths = pad_sequences(
        [scaler.transform(s).astype(np.float32) for s in frames(seqs, mode, pool, diff)]
    )
    return torch.from_numpy(X), torch.from_numpy(lengths)


def fit_scaler(seqs: Sequence[np.ndarray], mode: str, pool: int = 1,
               diff: bool = False) -> StandardScaler:  # fmt: skip
    """Channel statistics of the training sequences' `frames`."""
    return StandardScaler.fit(np.concatenate(frames(seqs, mode, pool, diff), axis=0))


def auto_pool(data: ClassificationData, options: SequenceClassifyOptions) -> int:
    """Frames averaged into one so that the longest training series has <= --max-frames
    (the cost of convolutions on frames is linear in their number)."""
    longest = max(len(x) for x in data.X_train)
    return max(1, math.ceil(longest / options.max_frames))


def auto_patch(data: ClassificationData, options: SequenceClassifyOptions, pool: int = 1) -> int:
    """--patch, else ceil(longest training series after pooling / STEPS_TARGET)."""
    longest = math.ceil(max(len(x) for x in data.X_train) / pool)
    return options.patch or max(1, math.ceil(longest / STEPS_TARGET))


def model_config(options: SequenceClassifyOptions, features: int, classes: int, frontend: str,
                 patch: int, dilation: int = 1):  # fmt: skip
    from ...config import HeadConfig, RNNConfig
    from ...models.conv_rnn import ConvRNNConfig

    return ConvRNNConfig(
        features, HeadConfig("softmax", classes, dropout=options.dropout),
        RNNConfig(CELL_FAMILIES[options.cell], options.hidden, options.layers,
                  options.bidirectional, options.dropout),
        patch=patch, filters=options.filters if frontend == "conv" else 0,
        full_resolution=options.conv_on == "frames", parallel=options.layout == "parallel",
        dilation=dilation,
    )  # fmt: skip


SCALES = 3  # the members' dilations cycle 1, N, N^2


def member_dilation(options: SequenceClassifyOptions, k: int, frames: int,
                    dilate: int | None = None) -> int:  # fmt: skip
    """Member k's dilation: `dilate` (default --dilate)^(k mod SCALES), capped where the
    blocks' receptive field (1 + 12·dilation frames) would pass half of `frames` (the longest
    pooled training series, in the frames the convolutions read) -- never below 1. So the
    members cycle through the scales 1, N, N^2 (5 members: 1, N, N^2, 1, N), the three
    scales sessions 7-9 measured, rather than reaching N^4."""
    dilate = options.dilate if dilate is None else dilate
    if dilate == 1 or k % SCALES == 0:
        return 1
    most = max(1, (frames // 2 - 1) // 12)
    return max(1, min(dilate ** (k % SCALES), most))


def conv_frames(options: SequenceClassifyOptions, longest: int, patch: int) -> int:
    """The frames the convolutions read of the longest pooled training series."""
    return -(-longest // patch) if options.conv_on == "patches" else longest


def ensemble_plan(options: SequenceClassifyOptions) -> tuple[int, int]:
    """(members trained at once, torch threads of each): --parallel-members (default: one
    per torch thread, at most --ensemble), sharing --threads (default: torch's); on another
    device than the CPU, one at a time (members at once are CPU processes)."""
    threads = torch.get_num_threads() if options.threads is None else min(
        options.threads, os.cpu_count() or 1)  # as driver.cap_threads caps it
    if torch.device(options.device).type != "cpu":
        return 1, threads
    return member_plan(options.parallel_members, options.ensemble, threads)


def step_config(options: SequenceClassifyOptions, n: int, steps: int, val: bool,
                at_once: int = 1):  # fmt: skip
    """The TrainConfig of one model: `steps` updates (or --epochs over `n` cases), cosine;
    --minutes split into ceil(--ensemble / at_once) equal parts, one per round of the members
    trained `at_once` together (the ensemble's training then stays within --minutes)."""
    batch = min(options.batch, n)
    steps = min(steps, options.total_steps(-(-n // batch)))
    every = max(1, steps // 10)
    rounds = -(-options.ensemble // at_once)
    minutes = None if options.minutes is None else options.minutes / rounds
    return options.train_config(
        steps, time_minutes=minutes, batch_size=batch, schedule="cosine", min_lr_ratio=0.05,
        warmup_steps=min(20, steps // 10), eval_every=every if val else 0, log_every=every,
        monitor="accuracy" if val else "loss", monitor_mode="max" if val else "min",
    )  # fmt: skip


def series_normalised(seqs: Sequence[np.ndarray], tol: float = 1e-3) -> bool:
    """Whether every (T_i, D) series already has zero mean and unit variance per channel (as
    most of the UCR archive's univariate problems ship; the variance divided by T_i or by
    T_i - 1): then "series" and "global" normalisation give the same frames, and there is
    nothing to choose."""

    def unit(s: np.ndarray) -> bool:
        sd = min(np.abs(s.std(0, ddof=d) - 1).max() for d in (0, 1))
        return len(s) > 1 and np.abs(s.mean(0)).max() < tol and sd < tol

    return all(unit(s) for s in seqs)


def candidates(options: SequenceClassifyOptions, seqs: Sequence[np.ndarray]
               ) -> list[tuple[str, str]]:  # fmt: skip
    """(frontend, normalise) pairs the auto settings compare on the training series `seqs`
    (one: nothing to choose)."""
    fronts = [f for f in FRONTENDS if f != "auto"] if options.frontend == "auto" else [
        options.frontend]  # fmt: skip
    if options.normalise != "auto":
        norms = [options.normalise]
    elif series_normalised(seqs):
        norms = ["series"]
    else:
        norms = list(AUTO_NORMALISATIONS)
    return list(itertools.product(fronts, norms))


def validation_splits(y: np.ndarray, options: SequenceClassifyOptions
                      ) -> list[tuple[list[int], list[int]]]:  # fmt: skip
    """(train indices, validation indices) of the training split that score the candidates:
    one stratified split (--val-fraction held out), or with --select-folds K > 1 the K
    stratified folds, each held out in turn (every training case is validated once)."""
    if options.select_folds == 1:
        return [stratified_split(y, options.val_fraction, options.seed)]
    fold = cv_folds(y, options.select_folds, options.seed)
    return [(np.flatnonzero(fold != f).tolist(), np.flatnonzero(fold == f).tolist())
            for f in range(options.select_folds) if (fold == f).any()]  # fmt: skip


def score(data: ClassificationData, options: SequenceClassifyOptions, front: str, norm: str,
          pool: int, patch: int, tr: list[int], va: list[int], dilation: int = 1,
          steps: int | None = None) -> dict[str, Any]:  # fmt: skip
    """One candidate trained `steps` (default `select_steps`) updates on the training cases
    `tr` -> its best accuracy on the cases `va` (and final loss, best step, cases, seconds)."""
    from ...algorithms import BPTT
    from ...models import build_model
    from ...training import Trainer, seed_everything

    t0 = time.perf_counter()
    X_tr, y_tr = [data.X_train[i] for i in tr], torch.from_numpy(data.y_train[tr])
    X_va, y_va = [data.X_train[i] for i in va], torch.from_numpy(data.y_train[va])
    diff = options.diff
    scaler = fit_scaler(X_tr, norm, pool, diff)
    X, L = tensors(X_tr, scaler, norm, pool, diff)
    X_v, L_v = tensors(X_va, scaler, norm, pool, diff)
    seed_everything(options.seed)
    model = build_model(model_config(options, X.shape[2], len(data.classes), front, patch,
                                     dilation))  # fmt: skip
    config = step_config(options, len(X), steps or options.select_steps, val=True)
    trainer = Trainer(model, BPTT(), dataclasses.replace(config, progress=False),
                      device=options.device)  # fmt: skip
    result = trainer.fit(random_batches(X, y_tr, L, options.batch, batch_transform(options)),
                         fixed_batches(X_v, y_va, L_v))  # fmt: skip
    if result.status == "interrupted":
        raise KeyboardInterrupt
    ok = result.status != "diverged" and result.best is not None
    return {
        "val_accuracy": float(result.best) if ok else 0.0,
        "val_loss": float((result.val or {}).get("loss", math.inf)) if ok else math.inf,
        "best_step": result.best_step, "cases": len(va),
        "seconds": round(time.perf_counter() - t0, 2),
    }  # fmt: skip


def pooled_score(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The folds' scores of one candidate -> one: accuracy and loss weighted by the cases each
    fold validated (every training case counts once), seconds summed, the folds kept."""
    n = sum(p["cases"] for p in parts)
    return {
        "val_accuracy": sum(p["val_accuracy"] * p["cases"] for p in parts) / n,
        "val_loss": sum(p["val_loss"] * p["cases"] for p in parts) / n, "cases": n,
        "seconds": round(sum(p["seconds"] for p in parts), 2), "folds": parts,
    }  # fmt: skip


def choose(data: ClassificationData, options: SequenceClassifyOptions) -> Choice:
    """The front end and normalisation, from the training split alone: each candidate trains
    `select_steps` updates on (1 - val_fraction) of train and is scored by its best accuracy
    on the stratified rest, or with --select-folds K > 1 on each of K folds in turn, pooled
    over all of train (ties: the lower validation loss, then the earlier candidate)."""
    pool = auto_pool(data, options)
    patch = auto_patch(data, options, pool)
    pairs = candidates(options, data.X_train)
    if len(pairs) == 1 or options.val_fraction == 0:
        front = pairs[0][0] if options.frontend != "auto" else FALLBACK[0]
        norm = pairs[0][1] if options.normalise != "auto" or len(pairs) == 1 else FALLBACK[1]
        if len(pairs) > 1:
            why = "no validation part (--val-fraction 0)"
        elif options.normalise == "auto":
            why = "the training series are already normalised per series: nothing to choose"
        else:
            why = "as given"
        return choose_dilation(data, options, Choice(front, norm, patch, {}, why, pool=pool,
                                                     diff=options.diff))  # fmt: skip
    start = time.perf_counter()
    splits = validation_splits(data.y_train, options)
    scores: dict[str, dict[str, Any]] = {}
    for front, norm in pairs:
        parts = [score(data, options, front, norm, pool, patch, tr, va) for tr, va in splits]
        scores[f"{front}/{norm}"] = parts[0] if len(parts) == 1 else pooled_score(parts)
    best = max(scores, key=lambda k: (scores[k]["val_accuracy"], -scores[k]["val_loss"]))
    front, norm = best.split("/")
    tr, va = splits[0]
    on = (f"{len(va)} held-out training cases ({options.select_steps} updates each on "
          f"{len(tr)})" if len(splits) == 1 else f"{len(data.y_train)} training cases, "
          f"{len(splits)} folds in turn ({options.select_steps} updates each)")  # fmt: skip
    why = f"best validation accuracy {scores[best]['val_accuracy']:.3f} on {on}"
    choice = Choice(front, norm, patch, scores, why, round(time.perf_counter() - start, 2), pool,
                    options.diff)  # fmt: skip
    return choose_dilation(data, options, choice)


def choose_dilation(data: ClassificationData, options: SequenceClassifyOptions,
                    choice: Choice) -> Choice:  # fmt: skip
    """--choose-dilate N: `choice` with dilate N when a model of member 1's dilation (N,
    capped) scores higher on the validation part of train than an undilated one, each
    --dilate-select-steps updates with the chosen front end and normalisation (ties: the
    lower validation loss, then undilated); else dilate 1. Unchanged when N is 1, without
    convolutions or validation part, or when the cap leaves member 1 undilated: --dilate."""
    n = options.choose_dilate
    longest = math.ceil(max(len(x) for x in data.X_train) / choice.pool)
    d = member_dilation(options, 1, conv_frames(options, longest, choice.patch), n)
    if n == 1 or d == 1 or choice.frontend != "conv" or options.val_fraction == 0:
        return dataclasses.replace(choice, dilate=options.dilate)
    start = time.perf_counter()
    splits = validation_splits(data.y_train, options)
    scores = {}
    for dil in (1, d):
        parts = [score(data, options, choice.frontend, choice.normalise, choice.pool,
                       choice.patch, tr, va, dil, options.dilate_select_steps)
                 for tr, va in splits]  # fmt: skip
        scores[f"dilation {dil}"] = parts[0] if len(parts) == 1 else pooled_score(parts)
    a, b = scores["dilation 1"], scores[f"dilation {d}"]
    dilated = (b["val_accuracy"], -b["val_loss"]) > (a["val_accuracy"], -a["val_loss"])
    why = (f"{choice.reason}; dilate {n if dilated else 1}: validation accuracy "
           f"{b['val_accuracy']:.3f} dilated by {d} against {a['val_accuracy']:.3f} undilated "
           f"({options.dilate_select_steps} updates each)")  # fmt: skip
    seconds = round(choice.seconds + time.perf_counter() - start, 2)
    return dataclasses.replace(choice, reason=why, seconds=seconds, dilate=n if dilated else 1,
                               dilate_scores=scores)  # fmt: skip


def encode(data: ClassificationData, choice: Choice) -> SequenceData:
    """Normalise all of train the chosen way, fit the channel scaler on it, make tensors."""
    scaler = fit_scaler(data.X_train, choice.normalise, choice.pool, choice.diff)
    X, lengths = tensors(data.X_train, scaler, choice.normalise, choice.pool, choice.diff)
    summary = {**data.summary(), "labels": data.classes, "fit_on": len(data.X_train)}
    return SequenceData(data, choice, scaler, X, torch.from_numpy(data.y_train), lengths,
                        summary, {"selection": choice.seconds})  # fmt: skip


def batch_transform(options: SequenceClassifyOptions):
    """The training batches' augmentation, or None when --augment 0, --crop 1 and --warp 0."""
    if options.augment > 0 or options.crop < 1 or options.warp > 0:
        return augmenter(options.augment, options.crop, options.warp)
    return None


WARP_KNOTS = 4  # the random speed curve's knots inside each series (Um et al. 2017 use 4)


def augmenter(augment: float, crop: float = 1.0, warp: float = 0.0):
    """Window cropping, time warping, amplitude scaling and jitter of standardised frames.

    x (B, T, D) -> a random window of each series, a fraction U(crop, 1) of its length,
    stretched back to that length by linear interpolation (window slicing, Le Guennec et al.
    2016; none at crop 1); then, at warp > 0, each series read at a random smooth monotone time
    map (time warping, Um et al. 2017): a speed exp(warp · N(0, 1)) at WARP_KNOTS + 2 knots
    spread over the series, linear between them, integrated and scaled so the first and last
    frames stay in place; then x · (1 + ε_scale) + ε_jitter with std `augment`, ε_scale
    (B, 1, D) per sequence and channel, ε_jitter (B, T, D) per frame; padded frames stay 0.
    """

    def resample(x: torch.Tensor, pos: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """x read at fractional frames pos (B, T), linearly between neighbours."""
        B, T, D = x.shape
        i0 = pos.floor().long()
        w = (pos - i0)[..., None]
        i1 = torch.minimum(i0 + 1, last.long())
        return (1 - w) * x.gather(1, i0[..., None].expand(B, T, D)) + w * x.gather(
            1, i1[..., None].expand(B, T, D))  # fmt: skip

    def aug(x: torch.Tensor, lengths: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        B, T, D = x.shape
        last = (lengths - 1).clamp_min(0)[:, None].to(x.dtype)  # (B, 1)
        t = (torch.arange(T, dtype=x.dtype)[None, :] / last.clamp_min(1)).clamp(max=1)  # [0, 1]
        if crop < 1:
            span = crop + (1 - crop) * torch.rand(B, 1, generator=gen)  # (B, 1) kept
            start = (1 - span) * torch.rand(B, 1, generator=gen)
            x = resample(x, ((start + span * t) * last).clamp(max=last), last)
        if warp > 0:
            speed = (warp * torch.randn(B, WARP_KNOTS + 2, generator=gen)).exp().to(x.dtype)
            u = t * (WARP_KNOTS + 1)  # (B, T) in knot units
            k = u.floor().long().clamp(max=WARP_KNOTS)
            f = u - k
            v = (1 - f) * speed.gather(1, k) + f * speed.gather(1, k + 1)  # speed at each frame
            c = v.cumsum(1) - v[:, :1]  # 0 at the first frame
            total = c.gather(1, last.long()).clamp_min(1e-12)
            x = resample(x, (c / total * last).clamp_min(0).minimum(last), last)
        scale = 1.0 + augment * torch.randn(B, 1, D, generator=gen)
        noise = augment * torch.randn(B, T, D, generator=gen)
        mask = (torch.arange(T)[None, :] < lengths[:, None]).unsqueeze(-1)  # (B, T, 1)
        return (x * scale + noise) * mask

    return aug


def predict_proba(model, X: torch.Tensor, L: torch.Tensor) -> np.ndarray:
    """Class probabilities (N, C) in eval mode."""
    return class_probabilities(model, X, L).numpy()


@dataclass
class SequenceClassifier:
    """A trained ensemble (one model for --ensemble 1), for prediction."""

    models: list[Any]
    scaler: StandardScaler
    classes: list[str]
    normalise: str = "global"
    pool: int = 1
    diff: bool = False  # the model reads each channel's first difference beside it

    def inputs(self, seqs: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """(T_i, D) sequences -> what the models (and an exported graph) read: the frames
        (N, T, `frame_channels`) normalised, pooled, differenced and scaled as in training,
        zero-padded, and their lengths (N,)."""
        D = len(self.scaler.mean) // frame_channels(1, self.normalise, self.diff)
        for i, s in enumerate(seqs):
            if s.ndim != 2 or s.shape[1] != D:
                raise DataError(f"sequence {i} has shape {s.shape}; the model reads {D} channels")
        return tensors(seqs, self.scaler, self.normalise, self.pool, self.diff)

    def predict_proba(self, seqs: Sequence[np.ndarray]) -> np.ndarray:
        """(T_i, D) sequences -> the members' mean class probabilities (N, C)."""
        X, L = self.inputs(seqs)
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
        data = self.data if self.data is not None else load_data(options)
        return encode(data, choose(data, options))

    def build(self, options: SequenceClassifyOptions, data: SequenceData):
        from ...models import build_model

        c = data.choice
        return build_model(model_config(options, data.X.shape[2], len(data.source.classes),
                                        c.frontend, c.patch))  # fmt: skip

    def files(self, options, data: SequenceData) -> dict[str, Any]:
        return {SCALER_FILE: {"normalise": data.choice.normalise, "pool": data.choice.pool,
                              "diff": data.choice.diff, **data.scaler.to_dict()},
                CLASSES_FILE: {"classes": data.source.classes}}  # fmt: skip

    def train_config(self, options: SequenceClassifyOptions, data: SequenceData):
        return step_config(options, len(data.X), options.steps or HUGE, val=False,
                           at_once=ensemble_plan(options)[0])  # fmt: skip

    def batches(self, options: SequenceClassifyOptions, data: SequenceData):
        return random_batches(data.X, data.y, data.lengths, options.batch,
                              batch_transform(options)), None  # fmt: skip

    def fit(self, ctx) -> Fitted:
        """The ensemble's members (driver.fit_members), --parallel-members at once (see
        ensemble_plan); member 0's Trainer logs the test metrics."""
        c = ctx.data.choice
        ctx.say(" ".join(f"{k}: {v}" for k, v in ctx.data.source.summary().items()))
        ctx.say(f"front end {c.frontend}, normalise {c.normalise}, patch {c.patch} ({c.reason})")
        start = time.perf_counter()
        jobs, threads = ensemble_plan(ctx.options)
        o = ctx.options
        if o.ensemble > 1 and o.parallel_members != 1 and torch.device(o.device).type != "cpu":
            ctx.say(f"the {o.ensemble} members train in turn on {o.device} (at once on the CPU "
                    "alone)")  # fmt: skip
        fits, ended = driver.fit_members(self, ctx, ctx.options.ensemble, self.fit_member,
                                         jobs, threads)  # fmt: skip
        ctx.data.seconds["training"] = round(time.perf_counter() - start, 2)
        clf = SequenceClassifier([f.model for f in fits], ctx.data.scaler,
                                 ctx.data.source.classes, c.normalise, c.pool, c.diff)  # fmt: skip
        return Fitted(clf, fits[0].trainer, ended)

    def fit_member(self, member) -> Fitted:
        """driver.fit_members' `fit`: member k (member.member) rebuilt with its own dilation
        (member_dilation) before training, when that is not 1."""
        data, options, k = member.data, member.options, member.member
        c = data.choice
        d = member_dilation(options, k, conv_frames(options, data.X.shape[1], c.patch), c.dilate)
        if d != 1 and c.frontend == "conv":
            from ...models import build_model

            member = dataclasses.replace(member, model=build_model(model_config(
                options, data.X.shape[2], len(data.source.classes), c.frontend, c.patch,
                d)))  # fmt: skip
            member.say(f"member {k + 1}: convolutions dilated by {d}")
        return driver.fit_one(self, member)

    def evaluate(self, options, data: SequenceData, fitted: Fitted) -> dict[str, Any]:
        src, clf = data.source, fitted.model
        c = data.choice
        X_te, L_te = tensors(src.X_test, data.scaler, c.normalise, c.pool, c.diff)
        probs = [predict_proba(m, X_te, L_te) for m in clf.models]
        members = [float((p.argmax(1) == src.y_test).mean()) for p in probs]
        # the ensemble of the first k members, k = 1..N: what each member added
        growing = [float((sum(probs[:k]).argmax(1) == src.y_test).mean())
                   for k in range(1, len(probs) + 1)]  # fmt: skip
        pred = (sum(probs) / len(probs)).argmax(1)
        baselines, seconds = run_baselines(src, options)
        return {
            "test_accuracy": float((pred == src.y_test).mean()), "member_accuracies": members,
            "first_k_accuracies": growing,
            "baselines": {**baselines, "seconds": seconds,
                          "published": dataclasses.asdict(src.published) if src.published
                          else None},
            "auto": dataclasses.asdict(data.choice),
            "seconds": data.seconds,
            "confusion": classification_metrics(src.y_test.tolist(), pred.tolist(),
                                                len(src.classes))["confusion"],
            "classes": src.classes,
            "description": src.description, "options": to_dict(options),
        }  # fmt: skip

    def test_metrics(self, results):
        return {"accuracy": results["test_accuracy"],
                **{f"baseline_{k}": v for k, v in results["baselines"].items()
                   if k in BASELINE_NAMES}}  # fmt: skip

    def summary(self, results):
        data = results["data"]
        title = f"{Path(data['data']).name}: test split ({data['test']} cases)"
        return title, ["method", "accuracy", "seconds"], accuracy_rows(results)

    def report(self, r, run, results) -> None:
        if results.get("description"):
            r.paragraph(results["description"])
        r.table(results["data"])
        auto = results["auto"]
        r.paragraph(f"Settings: front end {auto['frontend']}, normalisation {auto['normalise']}, "
                    f"patch {auto['patch']} frames per step; {auto['reason']}.")  # fmt: skip
        for scores in (auto["scores"], auto.get("dilate_scores")):
            if scores:
                r.table({k: f"validation accuracy {v['val_accuracy']:.3f}, loss "
                            f"{v['val_loss']:.3f}" for k, v in scores.items()})  # fmt: skip
        published = results["baselines"]["published"]
        rows = [row[:2] for row in accuracy_rows(results)]
        accuracy_section(r, "Test accuracy against the baselines", ("method", "accuracy"),
                         rows, results["classes"], results["confusion"],
                         run.evals("val"))  # fmt: skip
        if published:
            r.paragraph(f"Published figures: {published['source']}.", muted=True)
        r.paragraph("Baselines, computed in this run on the same split: 1-NN Euclidean (series "
                    "linearly resampled to a common length), 1-NN DTW with a full window and "
                    "MiniRocket (aeon).", muted=True)  # fmt: skip
        n = len(results["member_accuracies"])
        if n > 1:
            r.paragraph(f"Training below is member 0's; each of the {n} members trains the "
                        "same way with its own seed.", muted=True)

    def load(self, run) -> SequenceClassifier:
        models = driver.ensemble_models(run)
        stored = dict(run.read_json(SCALER_FILE))
        normalise = stored.pop("normalise", "global")  # runs before the choice: global
        pool = stored.pop("pool", 1)  # runs before pooling: none
        diff = stored.pop("diff", False)  # runs before --diff: none
        return SequenceClassifier(models, StandardScaler.from_dict(stored),
                                  run.read_json(CLASSES_FILE)["classes"], normalise,
                                  pool, diff)  # fmt: skip

    def export_model(self, run) -> nn.Module:
        """The members' mean class probabilities, as `load`'s predictor gives them."""
        return mean_probabilities(driver.ensemble_models(run))


BASELINE_NAMES = {"1nn_euclidean": "1-NN Euclidean", "1nn_dtw": "1-NN DTW (full window)",
                  "minirocket": "MiniRocket"}  # fmt: skip


def run_baselines(src: ClassificationData, options: SequenceClassifyOptions):
    """({name: test accuracy}, {name: seconds to fit and predict}) on the run's split."""
    fns = {"1nn_euclidean": classical.one_nn_euclidean, "1nn_dtw": classical.one_nn_dtw,
           "minirocket": lambda *a: classical.minirocket(*a, seed=options.seed)}  # fmt: skip
    if options.baselines == "euclidean":
        fns = {"1nn_euclidean": fns["1nn_euclidean"]}
    acc, seconds = {}, {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        pred = fn(src.X_train, src.y_train, src.X_test)
        seconds[name] = round(time.perf_counter() - t0, 3)
        acc[name] = float((pred == src.y_test).mean())
    return acc, seconds


def accuracy_rows(results: dict[str, Any]) -> list[list[Any]]:
    """(method, test accuracy, seconds): the ensemble, its members' mean, the baselines of
    this run, the published 1-NN figures."""
    sec = results.get("seconds", {})
    train_s = sec.get("training", 0.0) + sec.get("selection", 0.0)
    rows: list[list[Any]] = [["rnnkit (test accuracy)", results["test_accuracy"], train_s]]
    accs = results["member_accuracies"]
    if len(accs) > 1:
        rows.append([f"  its {len(accs)} members, mean", sum(accs) / len(accs), ""])
    base = results["baselines"]
    for key, label in BASELINE_NAMES.items():
        if key in base:
            rows.append([f"{label}, this run", base[key], base["seconds"][key]])
    published = base["published"] or {}
    for key, label in (("dtw", "1-NN DTW, published"), ("euclidean", "1-NN ED, published")):
        if published.get(key) is not None:
            rows.append([label, published[key], ""])
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
