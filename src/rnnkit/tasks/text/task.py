"""The text Task: data, model, stateful truncated BPTT, final evaluation, and the loaded model.

A run directory holds, besides the Trainer's files: `tokenizer.json`, `analysis.json` (the
final full validation pass, samples, gradient profile, machine) and `report.html`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...data.registry import load_text_source
from ...data.text import DataError, split_blocks
from ...data.vocab import Vocab, build_tokenizer
from ...diagnostics.gradient_profile import gradient_profile
from ...models.language import (
    Evaluation,
    evaluate_ids,
    generate,
    random_windows,
    sample_many,
    val_batches,
)
from ...training.machine import load_average
from .. import driver, entry_points
from ..options import CELL_FAMILIES, HUGE, from_dict
from ..task import Fitted, Task
from .options import NAME, TextOptions
from .report import MIN_LR_RATIO, PROFILE_LAGS, sections

TOKENIZER_FILE = "tokenizer.json"
ANALYSIS_FILE = "analysis.json"
SAMPLE_TEMPERATURES = (0.0, 0.5, 0.8, 1.0)

__all__ = ["TASK", "TextModel", "TextOptions", "generate", "load", "train"]


# ---- data ---------------------------------------------------------------------------------


@dataclass
class TextData:
    """A tokenised, split corpus and what the report says about it."""

    tokenizer: Vocab
    train: Tensor  # (N_train,) int64
    val: Tensor  # (N_val,) int64
    streams: int  # parallel training streams: --batch, fewer if the text is too short
    summary: dict[str, Any]


def prepare_data(options: TextOptions) -> TextData:
    """Load `options.data`, fit the tokenizer, split; DataError if the text is too short."""
    source = load_text_source(options.data)
    text = source.text
    tokenizer = build_tokenizer(options.tokenizer, text)
    ids = torch.tensor(tokenizer.encode(text, unknown="drop"), dtype=torch.int64)
    need = options.seq_len + 1  # one training sequence and its shifted target
    min_total = math.ceil((need + 2) / (1.0 - options.val_fraction)) + 1
    if len(ids) < min_total:
        unit = tokenizer.unit
        raise DataError(
            f"{source.name} has {len(ids):,} {unit}s; training with --seq-len "
            f"{options.seq_len} needs at least {min_total:,} (one sequence plus validation): "
            f"use a longer text or a smaller --seq-len"
        )
    split = split_blocks(ids, options.val_fraction, blocks=10, min_block=20 * need)
    if len(split.train) < need or len(split.val) < 2:
        raise DataError(
            f"{source.name}: too short to split into training and validation parts; "
            "use a longer text or a smaller --seq-len"
        )
    summary = {
        "source": source.name,
        "kind": source.kind,
        "characters": len(text),
        "tokens": len(ids),
        "unit": tokenizer.unit,
        "vocab_size": len(tokenizer),
        "train_tokens": len(split.train),
        "val_tokens": len(split.val),
        "split": split.describe(),
        "blocks": split.blocks,
        "val_fraction": options.val_fraction,
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }
    # too few tokens for `batch` streams of one sequence each: use fewer streams
    streams = min(options.batch, max(1, (len(split.train) - 1) // options.seq_len))
    return TextData(tokenizer, split.train, split.val, streams, summary)


def validation_ids(options: TextOptions, tokenizer: Vocab, summary: dict) -> Tensor:
    """Rebuild a run's validation split from its recorded source and split parameters."""
    source = load_text_source(options.data)
    if hashlib.sha256(source.text.encode("utf-8")).hexdigest() != summary.get("sha256"):
        raise DataError(
            f"{source.name} has changed since the run was trained; pass --data FILE to "
            "evaluate on a text of your choice"
        )
    ids = torch.tensor(tokenizer.encode(source.text, unknown="drop"), dtype=torch.int64)
    need = options.seq_len + 1
    return split_blocks(ids, summary["val_fraction"], blocks=10, min_block=20 * need).val


# ---- the model ----------------------------------------------------------------------------


def build_language_model(options: TextOptions, vocab_size: int) -> nn.Module:
    """A ManyToMany model: embedding -> recurrent stack -> softmax over the vocabulary."""
    from ...config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig
    from ...models import build_model

    config = ManyToManyConfig(
        InputConfig("tokens", vocab_size, options.embedding),
        HeadConfig("softmax", vocab_size),
        RNNConfig(
            CELL_FAMILIES[options.cell], options.hidden, options.layers, dropout=options.dropout,
            # PyTorch's start (forget bias 0), not the cell's +1: at equal steps the +1 cost
            # 0.04 nats/char at 1,500 steps on fortunes (benchmarks/README.md, "Text generation")
            options={"forget_bias": 0.0} if options.cell == "lstm" else {},
        ),
    )
    return build_model(config)


# ---- the task -----------------------------------------------------------------------------


@dataclass
class TextFitted(Fitted):
    """Fitted, with what the final analysis found (analysis.json, less the driver's `fit`)."""

    analysis: dict[str, Any] = dataclasses.field(default_factory=dict)


class TextTask(Task):
    name = NAME
    title = "Text generation"
    evaluation = ""  # fit evaluates the whole validation split itself, saying so
    training_section = False  # the text report draws loss against steps and wall time
    options = TextOptions
    # 0.2's first runs: stateful streams and a cosine schedule (their options lack both)
    legacy_options = {"batching": "streams", "schedule": "cosine"}
    results_file = ANALYSIS_FILE

    def prepare(self, options: TextOptions) -> TextData:
        return prepare_data(options)

    def build(self, options: TextOptions, data: TextData) -> nn.Module:
        return build_language_model(options, len(data.tokenizer))

    def files(self, options: TextOptions, data: TextData) -> dict[str, Any]:
        return {TOKENIZER_FILE: data.tokenizer.to_dict()}

    def algorithm(self, options: TextOptions) -> Any:
        from ...algorithms import TBPTT

        return TBPTT(k1=options.seq_len, stateful=options.batching == "streams")

    def batches(self, options: TextOptions, data: TextData) -> tuple[Any, Any]:
        from ...training import stream_batches

        if options.batching == "windows":
            train = random_windows(data.train, data.streams, options.seq_len)
        else:
            train = stream_batches(data.train, batch_size=data.streams, seq_len=options.seq_len)
        return train, val_batches(data.val, data.streams, options.seq_len)

    def train_config(self, options: TextOptions, data: TextData) -> Any:
        from ...config import TrainConfig

        steps = options.total_steps((len(data.train) - 1) // (data.streams * options.seq_len))
        return TrainConfig(
            steps=steps,
            time_minutes=options.minutes,
            batch_size=data.streams,
            lr=options.lr,
            schedule=options.schedule,
            # only --minutes: the number of steps is not known, so decay over the time budget
            schedule_over="steps" if steps < HUGE else "time",
            min_lr_ratio=MIN_LR_RATIO,
            warmup_steps=0,
            clip="norm",
            clip_value=1.0,
            eval_every=options.eval_every,
            eval_batches=options.eval_batches,
            checkpoint_every=max(options.eval_every, 100),
            log_every=10,
            seed=options.seed,
        )

    def fit(self, ctx: Any) -> TextFitted:
        """One Trainer run (fit_one's, with a bar over the time budget when only time bounds
        training), then the full validation pass, samples and the gradient profile."""
        from ...training import TimeProgress, set_auto_threads

        options, data, config = ctx.options, ctx.data, ctx.config
        if options.threads is None:
            ctx.say(set_auto_threads())
        at_start = ctx.extra["machine"]  # taken before training: the load average of other work
        callbacks = []
        if config.progress and config.steps >= HUGE:  # a bar over time, not over 10^9 steps
            callbacks.append(TimeProgress(options.minutes * 60, ctx.console))
            config = dataclasses.replace(config, progress=False)
        ctx.say(
            f"training a {options.layers}-layer {options.cell.upper()} ({options.hidden} units) "
            f"on {data.summary['source']}: {data.summary['split']}"
        )
        fitted = driver.fit_one(self, ctx, callbacks=tuple(callbacks), config=config)
        model, trainer, result = fitted.model, fitted.trainer, fitted.result
        if result.status == "interrupted":  # Ctrl-C: stop soon, keep what there is; the
            # command says how training ended, once
            return TextFitted(model, trainer, result, {"machine": _machine(at_start)})
        ctx.say("evaluating on the whole validation split")
        evaluation = evaluate_ids(model, data.val, data.tokenizer.unit)
        trainer.log({"split": "val_full", "event": "evaluation", **evaluation.as_dict()})
        ctx.say("sampling and measuring the gradient through time")
        analysis = analyse(model, data.tokenizer, data.val, evaluation, options.seed)
        analysis["machine"] = {**_machine(at_start), "recurrent_impl": training_impl(trainer.model)}
        return TextFitted(model, trainer, result, analysis)

    def evaluate(self, options: TextOptions, data: TextData, fitted: Fitted) -> dict[str, Any]:
        return dict(fitted.analysis)

    def summary(self, results: dict[str, Any]) -> tuple[str, list[str], list[list[Any]]]:
        ev, fit = results.get("evaluation"), results["fit"]
        if ev is None:  # interrupted: nothing was evaluated
            return "", [], []
        u = results["unit"]
        return "validation", [f"nats/{u}", f"bits/{u}", "perplexity", "steps", "seconds"], [
            [ev[f"nats_per_{u}"], ev[f"bits_per_{u}"], ev["perplexity"], fit["steps"],
             round(fit["seconds"])]
        ]  # fmt: skip

    def report(self, r: Any, run: Any, results: dict[str, Any]) -> None:
        sections(r, run, results)

    def load(self, run: Any) -> TextModel:
        from ...record import run_record
        from ...training import RunError

        record = run_record(run.extra)
        try:
            tokenizer = Vocab.load(Path(run.path) / TOKENIZER_FILE)
        except DataError as err:
            raise RunError(str(err)) from None
        options = from_dict(TextOptions, record["options"])
        vocab = run.model.config.input.vocab_size
        if vocab != len(tokenizer):
            raise RunError(
                f"{run.path}: tokenizer.json has {len(tokenizer)} symbols, the model {vocab}"
            )
        return TextModel(run, tokenizer, options, record["data"])


def analyse(
    model: nn.Module, tokenizer: Vocab, val: Tensor, evaluation: Evaluation, seed: int
) -> dict[str, Any]:
    """Samples at several temperatures and the gradient profile, for analysis.json."""
    t0 = time.perf_counter()
    texts = sample_many(model, tokenizer, SAMPLE_TEMPERATURES, 400, seed)
    samples = {str(t): text for t, text in zip(SAMPLE_TEMPERATURES, texts, strict=True)}
    profile = gradient_profile(model, val, lags=PROFILE_LAGS)
    return {
        "evaluation": evaluation.as_dict(),
        "unit": evaluation.unit,
        "samples": samples,
        "gradient_profile": profile,
        "analysis_seconds": time.perf_counter() - t0,
    }


def training_impl(model: nn.Module) -> str:
    """Which implementation `impl="auto"` picks for the recurrent stack in training mode."""
    was = model.training
    model.train()
    try:
        return model.rnn.resolve_impl()
    finally:
        model.train(was)


def _machine(at_start: dict[str, Any]) -> dict[str, Any]:
    """machine_info() taken before training, with the 1-minute load average before and after
    it (the report's rows)."""
    end = load_average()
    return {
        **at_start,
        "load_average_at_start": (at_start["load_average"] or [None])[0],
        "load_average_at_end": None if end is None else end[0],
    }


@dataclass
class TextModel:
    """A trained text run: the model, its tokenizer and what it was trained with."""

    run: Any  # rnnkit.training.Run
    tokenizer: Vocab
    options: TextOptions
    data: dict[str, Any]

    @property
    def model(self) -> nn.Module:
        return self.run.model


TASK = TextTask()
train, load = entry_points(TASK)
