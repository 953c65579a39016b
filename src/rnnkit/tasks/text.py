"""Text generation: a character (or word) language model, trained, sampled, evaluated, reported.

    data (a text data set or a UTF-8 file) -> tokenizer -> contiguous-block split
    -> ManyToMany LM (embedding -> recurrent stack -> softmax over the vocabulary)
    -> Trainer with stateful truncated BPTT over B parallel streams
    -> full validation pass, samples, gradient-through-time profile -> report.html

A run directory holds, besides the Trainer's files (config.json, model.safetensors,
metrics.jsonl, checkpoint/): `tokenizer.json`, `analysis.json` (final evaluation, samples,
gradient profile) and `report.html`. `config.json["extra"]["text"]` holds the options and the
data summary, so `evaluate` can rebuild the same validation split.

Imports: config, models, algorithms, training, data, diagnostics, tasks.report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.registry import load_text_source
from ..data.text import DataError, split_blocks
from ..data.vocab import EncodeReport, Vocab, build_tokenizer
from ..diagnostics.gradient_profile import gradient_profile
from ..models import decoding
from ..training.machine import load_average, machine_info
from ..training.run import prepare_out_dir

TASK = "text"
TOKENIZER_FILE = "tokenizer.json"
ANALYSIS_FILE = "analysis.json"
REPORT_FILE = "report.html"
SAMPLE_TEMPERATURES = (0.0, 0.5, 0.8, 1.0)
PROFILE_LAGS = (0, 10, 50, 100)


@dataclass(frozen=True)
class TextOptions:
    """What `rnnkit train text` was asked to do (stored in config.json under extra.text).

    The defaults are the measured default run (benchmarks/README.md, "Text generation"): a
    1-layer LSTM of 256 units over 64-dim character embeddings, 32 streams of 64 steps,
    truncated BPTT with the state carried across batches, Adam 3e-3 decayed by a cosine over
    the budget to 3e-4, for 4 minutes of training (about 5 with the full validation pass and
    the report).
    """

    data: str | None = None  # a text data set name or a file; None: shakespeare
    tokenizer: str = "char"
    cell: str = "lstm"
    hidden: int = 256
    layers: int = 1
    embedding: int = 64
    dropout: float = 0.0
    seq_len: int = 64
    batch: int = 32
    lr: float = 3e-3
    steps: int | None = None
    minutes: float | None = 4.0
    seed: int = 0
    val_fraction: float = 0.1
    eval_every: int = 200
    eval_batches: int = 4

    def __post_init__(self) -> None:
        checks = {
            "--hidden": self.hidden,
            "--layers": self.layers,
            "--seq-len": self.seq_len,
            "--batch": self.batch,
            "--embedding": self.embedding,
        }
        for flag, value in checks.items():
            if value < 1:
                raise DataError(f"{flag} must be >= 1, got {value}")
        if self.cell not in CELLS:
            raise DataError(f"--cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise DataError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.dropout > 0 and self.layers < 2:
            raise DataError("--dropout acts between layers: use it with --layers 2 or more")
        if not self.lr > 0:
            raise DataError(f"--lr must be > 0, got {self.lr}")
        if self.steps is not None and self.steps < 1:
            raise DataError(f"--steps must be >= 1, got {self.steps}")
        if self.minutes is not None and not self.minutes > 0:
            raise DataError(f"--minutes must be > 0, got {self.minutes}")


CELLS = {"lstm": "lstm", "gru": "gru", "rnn": "elman"}  # CLI name -> rnnkit cell family
MAX_STEPS = 10**9  # the step budget when only --minutes bounds training


# ---- data ---------------------------------------------------------------------------------


@dataclass
class TextData:
    """A tokenised, split corpus and what the report says about it."""

    tokenizer: Vocab
    train: Tensor  # (N_train,) int64
    val: Tensor  # (N_val,) int64
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
    return TextData(tokenizer, split.train, split.val, summary)


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
    from ..config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig
    from ..models import build_model

    config = ManyToManyConfig(
        InputConfig("tokens", vocab_size, options.embedding),
        HeadConfig("softmax", vocab_size),
        RNNConfig(CELLS[options.cell], options.hidden, options.layers, dropout=options.dropout),
    )
    return build_model(config)


# ---- sampling -----------------------------------------------------------------------------


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """decoding.check_sampling, its message naming the CLI flag (--temperature, --top-k, ...)."""
    try:
        decoding.check_sampling(temperature, top_k, top_p)
    except ValueError as err:
        name, rest = str(err).split(" ", 1)
        raise DataError(f"--{name.replace('_', '-')} {rest}") from None


def start_ids(tokenizer: Vocab) -> list[int]:
    """The context when the prompt is empty: a newline if the vocabulary has one."""
    nl = tokenizer.index.get("\n")
    return [nl if nl is not None else 0]


@torch.no_grad()
def generate(
    model: nn.Module,
    tokenizer: Vocab,
    prompt: str = "",
    length: int = 500,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    report: EncodeReport | None = None,
) -> Iterator[str]:
    """Stream text: first the prompt as the model reads it, then `length` new tokens.

    Characters of the prompt outside the vocabulary are folded or dropped (see
    rnnkit.data.text, "Unknown symbols"); `report` collects what happened. An empty prompt
    starts from a newline. Temperature 0 is greedy decoding.

    Example:
        >>> for piece in generate(run.model, tok, "ROMEO.", 200, temperature=0.8):
        ...     print(piece, end="", flush=True)
    """
    check_sampling(temperature, top_k, top_p)
    if length < 1:
        raise DataError(f"--length must be > 0, got {length}")
    report = report if report is not None else EncodeReport()
    ids = tokenizer.encode(prompt, unknown="drop", report=report)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    if ids:
        yield tokenizer.decode(ids)
    context = ids or start_ids(tokenizer)
    prev = context[-1]
    tokens = decoding.stream_tokens(
        model, torch.tensor([context]), length, [temperature], top_k, top_p, generator
    )
    for (tok,) in tokens:
        yield _piece(tokenizer, prev, tok)
        prev = tok


def _piece(tokenizer: Vocab, prev: int, tok: int) -> str:
    """The text one more token adds (the word tokenizer's spacing depends on the previous)."""
    if tokenizer.mode == "char":
        return tokenizer.tokens[tok]
    return tokenizer.decode([prev, tok])[len(tokenizer.decode([prev])) :]


@torch.no_grad()
def sample_many(
    model: nn.Module,
    tokenizer: Vocab,
    temperatures: tuple[float, ...],
    length: int,
    seed: int = 0,
    prompt: str = "",
) -> list[str]:
    """One sample per temperature, generated side by side as one batch (for reports)."""
    generator = torch.Generator().manual_seed(seed)
    ids = tokenizer.encode(prompt, unknown="drop") or start_ids(tokenizer)
    context = torch.tensor([ids] * len(temperatures))  # (B, T)
    rows: list[list[int]] = [[] for _ in temperatures]
    for toks in decoding.stream_tokens(model, context, length, temperatures, generator=generator):
        for row, tok in zip(rows, toks, strict=True):
            row.append(tok)
    return [tokenizer.decode(row) for row in rows]


# ---- evaluation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """Loss of a language model on a token stream, read statefully from start to end."""

    nats: float  # per token
    tokens: int
    unit: str

    @property
    def bits(self) -> float:
        return self.nats / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nats, 700.0))

    def as_dict(self) -> dict[str, Any]:
        return {
            f"nats_per_{self.unit}": self.nats,
            f"bits_per_{self.unit}": self.bits,
            "perplexity": self.perplexity,
            "tokens": self.tokens,
        }


@torch.no_grad()
def evaluate_ids(
    model: nn.Module,
    ids: Tensor,
    unit: str = "char",
    streams: int = 16,
    chunk: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Mean next-token loss over `ids`, cut into up to `streams` contiguous streams.

    Each stream is read from its start with the state carried chunk to chunk, so every token
    but the first of each stream is predicted with all the context before it in its stream.
    """
    ids = torch.as_tensor(ids, dtype=torch.int64)
    n = len(ids) - 1
    if n < 1:
        raise DataError("the evaluation text has fewer than 2 tokens")
    B = max(1, min(streams, n // chunk))
    per = n // B
    x = ids[: per * B].view(B, per)  # (B, N/B)
    y = ids[1 : per * B + 1].view(B, per)
    model.eval()
    state, total = None, 0.0
    for start in range(0, per, chunk):
        logits, state = model(x[:, start : start + chunk], state)  # (B, t, V)
        target = y[:, start : start + chunk]
        total += float(
            nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum")
        )
        if on_progress:
            on_progress(min(start + chunk, per), per)
    return Evaluation(total / (per * B), per * B, unit)


def val_batches(ids: Tensor, batch: int, seq_len: int) -> list[tuple[Tensor, Tensor]]:
    """Validation windows for the Trainer: (B, L) inputs and targets, L >= seq_len.

    The Trainer evaluates each batch from a zero state, so windows are 4x the training length
    (at most 512) to give most predictions a realistic context.
    """
    n = len(ids) - 1
    L = min(max(seq_len, min(4 * seq_len, 512)), n)
    count = n // L
    B = max(1, min(batch, count))
    out = []
    for start in range(0, count - B + 1, B):
        rows = torch.arange(start, start + B)[:, None] * L + torch.arange(L)[None, :]  # (B, L)
        out.append((ids[rows], ids[rows + 1]))
    return out


# ---- training -----------------------------------------------------------------------------


MIN_LR_RATIO = 0.1


@dataclass
class TextRun:
    """What `train_text` returns."""

    run_dir: Path
    status: str
    message: str
    steps: int
    seconds: float
    evaluation: Evaluation | None  # None when training was interrupted (Ctrl-C)
    report: Path


def train_text(
    options: TextOptions,
    out: str | Path,
    overwrite: bool = False,
    console: Any = None,
    progress: bool = True,
    on_phase: Callable[[str], None] | None = None,
    callbacks: Sequence[Any] = (),
) -> TextRun:
    """Train a language model per `options` into run directory `out` and write its report.

    Example:
        >>> run = train_text(TextOptions(data="my.txt", minutes=1), "runs/mine")
        >>> run.evaluation.nats, run.report
    """
    from ..algorithms import TBPTT
    from ..config import TrainConfig
    from ..training import Callback, Trainer, seed_everything, stream_batches, write_run_json

    say = on_phase or (lambda text: None)
    machine = machine_info()  # before training: the load average of other work
    out = Path(out)
    data = prepare_data(options)
    if len(data.train) - 1 < options.seq_len * options.batch:
        # too few tokens for `batch` streams of one sequence each: use fewer streams
        options = dataclasses.replace(
            options, batch=max(1, (len(data.train) - 1) // options.seq_len)
        )
    prepare_out_dir(out, overwrite)
    seed_everything(options.seed)
    model = build_language_model(options, len(data.tokenizer))
    train_cfg = TrainConfig(
        steps=options.steps or MAX_STEPS,
        time_minutes=options.minutes,
        batch_size=options.batch,
        lr=options.lr,
        schedule="cosine",
        # only --minutes: the number of steps is not known, so decay over the time budget;
        # ending training at a low learning rate is worth a few hundredths of a nat
        schedule_over="steps" if options.steps else "time",
        min_lr_ratio=MIN_LR_RATIO,
        warmup_steps=0,
        clip="norm",
        clip_value=1.0,
        eval_every=options.eval_every,
        eval_batches=options.eval_batches,
        checkpoint_every=max(options.eval_every, 100),
        log_every=10,
        seed=options.seed,
        progress=progress,
    )
    tokenizer = data.tokenizer
    extra = {TASK: {"options": dataclasses.asdict(options), "data": data.summary}}

    class WriteTokenizer(Callback):
        def on_fit_start(self, trainer) -> None:
            write_run_json(out, TOKENIZER_FILE, tokenizer.to_dict())

    train = stream_batches(data.train, batch_size=options.batch, seq_len=options.seq_len)
    val = val_batches(data.val, options.batch, options.seq_len)
    trainer = Trainer(
        model,
        TBPTT(k1=options.seq_len),
        train_cfg,
        run_dir=out,
        callbacks=[WriteTokenizer(), *callbacks],
        extra=extra,
        overwrite=True,  # prepare_out_dir has already applied the --overwrite policy
        console=console,
    )
    say(
        f"training a {options.layers}-layer {options.cell.upper()} ({options.hidden} units) on "
        f"{data.summary['source']}: {data.summary['split']}"
    )
    result = trainer.fit(train, val)
    if result.status == "diverged":
        raise DataError(f"training diverged: {result.message}")
    fit = {
        "status": result.status,
        "message": result.message,
        "steps": result.step,
        "seconds": result.elapsed,
        "best_val": result.best,
        "best_step": result.best_step,
    }
    if result.status == "interrupted":  # Ctrl-C: stop soon, keep what there is
        write_run_json(out, ANALYSIS_FILE, {"fit": fit, "machine": _machine(machine)})
        report = write_text_report(out)
        return TextRun(
            out, result.status, result.message, result.step, result.elapsed, None, report
        )
    from ..training import load_run

    model = load_run(out).model  # the best weights on validation
    say("evaluating on the whole validation split")
    evaluation = evaluate_ids(model, data.val, tokenizer.unit)
    trainer.log({"split": "val_full", "event": "evaluation", **evaluation.as_dict()})
    say("sampling and measuring the gradient through time")
    analysis = analyse(model, tokenizer, data.val, evaluation, options.seed)
    analysis["machine"] = _machine(machine)
    analysis["machine"]["recurrent_impl"] = training_impl(trainer.model)
    analysis["fit"] = fit
    write_run_json(out, ANALYSIS_FILE, analysis)
    report = write_text_report(out)
    return TextRun(
        out, result.status, result.message, result.step, result.elapsed, evaluation, report
    )


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


# ---- loading a run ------------------------------------------------------------------------


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


def load_text_run(path: str | Path) -> TextModel:
    """Load a run written by `train_text`; RunError if it is not one (or is damaged)."""
    from ..training import RunError, load_run

    run = load_run(path)
    info = run.extra.get(TASK)
    if not isinstance(info, dict) or "options" not in info:
        raise RunError(f"{path}: not a text-generation run (no extra.text in config.json)")
    try:
        tokenizer = Vocab.load(Path(path) / TOKENIZER_FILE)
    except DataError as err:
        raise RunError(str(err)) from None
    try:
        options = TextOptions(**info["options"])
    except (TypeError, DataError) as err:
        raise RunError(f"{path}: invalid text options in config.json ({err})") from None
    vocab = run.model.config.input.vocab_size
    if vocab != len(tokenizer):
        raise RunError(
            f"{path}: tokenizer.json has {len(tokenizer)} symbols, the model {vocab}"
        )
    return TextModel(run, tokenizer, options, info.get("data", {}))


# ---- the report ---------------------------------------------------------------------------


def write_text_report(run_dir: str | Path) -> Path:
    """(Re)write report.html from the run directory's files alone."""
    from ..training import load_run
    from .report import Report, line_plot

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    info = run.extra.get(TASK, {})
    options, data = info.get("options", {}), info.get("data", {})
    analysis = run.read_json(ANALYSIS_FILE) if (run_dir / ANALYSIS_FILE).exists() else {}
    unit = data.get("unit", "char")
    ev = analysis.get("evaluation", {})
    fit = analysis.get("fit", {})
    train_logs = run.evals("train")
    val_logs = run.evals("val")

    r = Report(f"Text generation: {run_dir.name}")
    r.heading("Result")
    speed = [m.get("tokens_per_s", 0.0) for m in train_logs if m.get("tokens_per_s")]
    mean_speed = sum(speed) / len(speed) if speed else float("nan")
    r.table(
        {
            f"validation loss (nats/{unit})": ev.get(f"nats_per_{unit}", float("nan")),
            f"validation bits/{unit}": ev.get(f"bits_per_{unit}", float("nan")),
            "validation perplexity": ev.get("perplexity", float("nan")),
            "validation tokens": ev.get("tokens", 0),
            "steps": fit.get("steps", run.step or 0),
            "training time (s)": round(fit.get("seconds", 0.0), 1),
            f"mean throughput ({unit}s/s)": round(mean_speed) if speed else "",
            "how training ended": fit.get("message", ""),
        }
    )
    r.paragraph(
        "Validation loss: the whole validation split read statefully in up to 16 contiguous "
        "streams (each token predicted from all the text before it in its stream), with the "
        "weights that did best at the periodic validation checks.",
        muted=True,
    )

    r.heading("Configuration")
    model_cfg = run.model_config
    r.table(
        {
            **{k: "" if v is None else v for k, v in options.items()},
            "data": options.get("data") or "shakespeare (the default)",
            "learning-rate schedule": (
                f"cosine over {options.get('steps')} steps"
                if options.get("steps")
                else f"cosine over the {options.get('minutes')}-minute budget"
            )
            + f" to {MIN_LR_RATIO:g} x lr",
            "model": f"{type(run.model).__name__}: embedding {model_cfg.input.embedding_dim} -> "
            f"{model_cfg.rnn.num_layers} x {model_cfg.rnn.cell} {model_cfg.rnn.hidden_size} -> "
            f"softmax {model_cfg.head.output_size}",
            "parameters": sum(p.numel() for p in run.model.parameters()),
            "gradient algorithm": str(run.algorithm),
        }
    )

    r.heading("Data")
    r.table({k: v for k, v in data.items() if k != "sha256"})

    r.heading("Loss")
    seq_len = options.get("seq_len", 128)
    window = min(max(seq_len, 4 * seq_len), 512)
    if train_logs:
        series = {"train": ([m["step"] for m in train_logs], [m["loss"] for m in train_logs])}
        if val_logs:
            series["validation"] = ([m["step"] for m in val_logs], [m["loss"] for m in val_logs])
        r.figure(
            line_plot(series, xlabel="step", ylabel=f"loss (nats/{unit})"),
            "Training loss (mean over each logging window) and validation loss "
            f"(windows of {window} {unit}s from a zero state) by step",
        )
        times = {
            "train": ([m["time"] for m in train_logs], [m["loss"] for m in train_logs]),
        }
        if val_logs:
            times["validation"] = ([m["time"] for m in val_logs], [m["loss"] for m in val_logs])
        r.figure(
            line_plot(times, xlabel="seconds", ylabel=f"loss (nats/{unit})"),
            "The same against wall-clock time",
        )
    else:
        r.paragraph("No training steps were logged.")

    r.heading("Throughput")
    if speed:
        steps = [m["step"] for m in train_logs if m.get("tokens_per_s")]
        r.figure(
            line_plot({"throughput": (steps, speed)}, xlabel="step", ylabel=f"{unit}s / s"),
            f"Training throughput; mean {mean_speed:,.0f} {unit}s/s (forward, backward and "
            "update; machine shared with other work, so it varies)",
        )

    mach = analysis.get("machine")
    if mach:
        r.table(
            {
                "CPUs": mach.get("cpus"),
                "torch threads": mach.get("torch_threads"),
                "recurrent implementation (training)": mach.get("recurrent_impl", ""),
                "load average at start (other work)": mach.get("load_average_at_start"),
                "load average at end": mach.get("load_average_at_end"),
                "torch": mach.get("torch"),
            }
        )

    r.heading("Samples")
    samples = analysis.get("samples", {})
    for temp, text in samples.items():
        label = "greedy (temperature 0)" if float(temp) == 0 else f"temperature {temp}"
        r.pre(text, caption=f"{label}, from an empty prompt")

    r.heading("Gradient through time")
    prof = analysis.get("gradient_profile")
    if prof:
        T = prof["steps"]
        series = {
            f"layer {k + 1}": (list(range(T)), layer["norms"])
            for k, layer in enumerate(prof["layers"])
        }
        r.figure(
            line_plot(series, xlabel="steps back from the predicted character (k)",
                      ylabel="||dL_T / dh_(T-1-k)||", logy=True),
            f"Gradient of the last step's loss reaching each earlier hidden state, mean over "
            f"{prof['batch']} validation windows of {T} {unit}s",
        )  # fmt: skip
        rows = []
        for k, layer in enumerate(prof["layers"]):
            rows.append(
                [f"layer {k + 1}", *(layer["relative"].get(str(lag), "") for lag in PROFILE_LAGS)]
            )
        r.table(rows, header=["", *(f"{lag} back" for lag in PROFILE_LAGS)])
        r.paragraph(
            "Relative to the gradient at the last step: how much of the loss gradient reaches "
            "10, 50 and 100 steps back. A fast fall is the vanishing gradient; truncated BPTT "
            f"backpropagated {options.get('seq_len', '?')} steps at most during training.",
            muted=True,
        )

    r.heading("Files")
    r.table(
        sorted(
            [[p.name, p.stat().st_size if p.is_file() else "dir"] for p in run_dir.iterdir()
             if not p.name.startswith(".")]
        ),
        header=["file", "bytes"],
    )  # fmt: skip
    return r.write(run_dir / REPORT_FILE)
