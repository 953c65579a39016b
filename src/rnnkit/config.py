"""Frozen dataclasses for every configuration, written as JSON beside the weights.

Only the standard library is imported here, so any layer of the package may use it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, JSON-ready dict of a (possibly nested) config dataclass."""
    return dataclasses.asdict(config)


def to_json(config: Any) -> str:
    return json.dumps(to_dict(config), indent=2, sort_keys=True)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config dataclass, nested dataclasses included, from `to_dict` output.

    Unknown keys raise a ValueError naming them: a config written by a newer version
    is reported, never silently half-read.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
    hints = _resolved_types(cls)
    kwargs = {name: _decode(hints.get(name), value) for name, value in data.items()}
    return cls(**kwargs)


def _decode(ftype: Any, value: Any) -> Any:
    """JSON value -> the field's type: nested dataclasses, and tuples/lists of them."""
    import typing

    if isinstance(value, dict) and dataclasses.is_dataclass(ftype):
        return from_dict(ftype, value)
    if isinstance(value, list):
        origin, args = typing.get_origin(ftype), typing.get_args(ftype)
        inner = args[0] if args else None
        items = [_decode(inner, v) for v in value]
        return tuple(items) if origin is tuple else items
    return value


def from_json(cls: type[T], text: str) -> T:
    return from_dict(cls, json.loads(text))


def _resolved_types(cls: type) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(cls)
    except Exception:  # forward references to names we cannot see: fall back to no nesting
        return {}


@dataclasses.dataclass(frozen=True)
class CellConfig:
    """Which cell family and its options; enough to rebuild the cell with fresh weights.

    `kind` is a registered cell family's name ("elman", "jordan", "lstm", "gru", "mingru",
    "minlstm", "lru" are built in; see rnnkit.cells.registry); `options` holds the family's
    keyword arguments (JSON values only).
    """

    kind: str
    input_size: int
    hidden_size: int
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


# ---- models (rnnkit.models) -------------------------------------------------------------
#
# A model config names everything needed to rebuild the model with fresh weights; the run
# directory's config.json holds {"kind": ..., "config": to_dict(cfg)} and `rnnkit.models`
# keeps the registry from kind to class. Checks here are the ones that need no torch.

INPUT_KINDS = ("tokens", "frames")
HEAD_KINDS = ("softmax", "regression", "gaussian", "multilabel")
READOUTS = ("last", "mean", "max", "attention")
ATTENTIONS = ("none", "additive", "dot")
CONDITIONINGS = ("init", "input", "both")


def _positive(owner: str, **values: Any) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{owner}: {key} must be a positive integer, got {value!r}")


def _choice(owner: str, key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}: {key} must be one of {choices}, got {value!r}")


def _probability(owner: str, key: str, value: Any, upper_open: bool = True) -> None:
    ok = (
        isinstance(value, int | float)
        and 0.0 <= value
        and (value < 1 if upper_open else value <= 1)
    )
    if not ok:
        interval = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"{owner}: {key} must be in {interval}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """What a model reads at each step.

    kind "tokens": integer ids in [0, vocab_size), embedded to `embedding_dim` features.
    kind "frames": real-valued vectors of `features` values (B, T, D) with D = features.
    """

    kind: str = "tokens"
    vocab_size: int = 0
    embedding_dim: int = 0
    features: int = 0
    padding_idx: int | None = None

    def __post_init__(self) -> None:
        _choice("InputConfig", "kind", self.kind, INPUT_KINDS)
        if self.kind == "tokens":
            _positive("InputConfig", vocab_size=self.vocab_size, embedding_dim=self.embedding_dim)
            if self.padding_idx is not None and not 0 <= self.padding_idx < self.vocab_size:
                raise ValueError(
                    f"InputConfig: padding_idx must be in [0, {self.vocab_size}), "
                    f"got {self.padding_idx}"
                )
        else:
            _positive("InputConfig", features=self.features)

    @property
    def size(self) -> int:
        """Features per step after embedding: the recurrent layer's input size D."""
        return self.embedding_dim if self.kind == "tokens" else self.features


@dataclasses.dataclass(frozen=True)
class RNNConfig:
    """A recurrent stack (`rnnkit.Recurrent`): one cell family repeated over `num_layers`.

    `cell` is a registered cell family's name ("elman", "jordan", "lstm", "gru", "mingru",
    "minlstm", "lru" are built in; checked when the cell is built); `options` are that family's
    keyword arguments (JSON values only). `impl` is "auto", "reference", "torch" or a registered
    impl such as "fused" or "scan".
    `input_size` is None inside a model's config, where what feeds the stack decides it;
    `Recurrent.config()` records it so the layer rebuilds alone.
    """

    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    impl: str = "auto"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    input_size: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cell, str) or not self.cell:
            raise ValueError(f"RNNConfig: cell must be a cell family name, got {self.cell!r}")
        _positive("RNNConfig", hidden_size=self.hidden_size, num_layers=self.num_layers)
        if self.input_size is not None:
            _positive("RNNConfig", input_size=self.input_size)
        _probability("RNNConfig", "dropout", self.dropout)
        _probability("RNNConfig", "recurrent_dropout", self.recurrent_dropout)


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """The output layer y_t = g(W_o h_t + c) and its loss.

    softmax: O classes, cross-entropy.  regression: O values, MSE.
    gaussian: O values with a predicted variance, Gaussian negative log-likelihood.
    multilabel: O independent labels, binary cross-entropy.
    """

    kind: str = "softmax"
    output_size: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _choice("HeadConfig", "kind", self.kind, HEAD_KINDS)
        _positive("HeadConfig", output_size=self.output_size)
        _probability("HeadConfig", "dropout", self.dropout)


@dataclasses.dataclass(frozen=True)
class OneToOneConfig:
    """One step (T = 1) through the recurrent stack: the feed-forward baseline."""

    input: InputConfig
    head: HeadConfig
    rnn: RNNConfig = RNNConfig()


@dataclasses.dataclass(frozen=True)
class ManyToOneConfig:
    """Sequence -> one output; `readout` is "last", "mean", "max" or "attention"."""

    input: InputConfig
    head: HeadConfig
    rnn: RNNConfig = RNNConfig()
    readout: str = "last"

    def __post_init__(self) -> None:
        _choice("ManyToOneConfig", "readout", self.readout, READOUTS)


@dataclasses.dataclass(frozen=True)
class ManyToManyConfig:
    """An output at every step (language model, tagger, per-step forecaster)."""

    input: InputConfig
    head: HeadConfig
    rnn: RNNConfig = RNNConfig()
    tie_weights: bool = False

    def __post_init__(self) -> None:
        if self.tie_weights and not (
            self.input.kind == "tokens"
            and self.head.kind == "softmax"
            and self.head.output_size == self.input.vocab_size
        ):
            raise ValueError(
                "ManyToManyConfig: tie_weights needs token inputs and a softmax head over the "
                "same vocabulary"
            )


def _check_tokens(owner: str, vocab_size: int, **tokens: int | None) -> None:
    for key, value in tokens.items():
        if value is None:
            raise ValueError(f"{owner}: {key} is required (an id in [0, {vocab_size}))")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < vocab_size:
            raise ValueError(f"{owner}: {key} must be an id in [0, {vocab_size}), got {value!r}")


@dataclasses.dataclass(frozen=True)
class OneToManyConfig:
    """A vector (features, or a class id) -> a token sequence, generated autoregressively.

    `condition` describes the vector. `conditioning`: "init" sets the initial state from it,
    "input" feeds it at every step beside the previous token, "both" does both.
    """

    condition: InputConfig
    vocab_size: int
    bos_token: int | None
    eos_token: int | None
    embedding_dim: int = 32
    rnn: RNNConfig = RNNConfig()
    conditioning: str = "both"
    max_length: int = 64
    pad_token: int | None = None

    def __post_init__(self) -> None:
        owner = "OneToManyConfig"
        _positive(owner, vocab_size=self.vocab_size, embedding_dim=self.embedding_dim)
        _positive(owner, max_length=self.max_length)
        _check_tokens(owner, self.vocab_size, bos_token=self.bos_token, eos_token=self.eos_token)
        if self.pad_token is not None:
            _check_tokens(owner, self.vocab_size, pad_token=self.pad_token)
        _choice(owner, "conditioning", self.conditioning, CONDITIONINGS)
        if self.rnn.bidirectional:
            raise ValueError(f"{owner}: a generating decoder cannot be bidirectional")


@dataclasses.dataclass(frozen=True)
class Seq2SeqConfig:
    """Encoder-decoder over unaligned sequences, with optional attention.

    attention "none", "additive" (Bahdanau 2015 score) or "dot" (Luong 2015 score; memory
    projected when sizes differ). `teacher_forcing` is the probability of feeding the true
    previous token rather than the model's own prediction while training.
    """

    source: InputConfig
    target_vocab_size: int
    bos_token: int | None
    eos_token: int | None
    target_embedding_dim: int = 32
    encoder: RNNConfig = RNNConfig()
    decoder: RNNConfig = RNNConfig()
    attention: str = "dot"
    teacher_forcing: float = 1.0
    max_length: int = 64
    pad_token: int | None = None

    def __post_init__(self) -> None:
        owner = "Seq2SeqConfig"
        _positive(owner, target_vocab_size=self.target_vocab_size)
        _positive(owner, target_embedding_dim=self.target_embedding_dim)
        _positive(owner, max_length=self.max_length)
        V = self.target_vocab_size
        _check_tokens(owner, V, bos_token=self.bos_token, eos_token=self.eos_token)
        if self.pad_token is not None:
            _check_tokens(owner, V, pad_token=self.pad_token)
        _choice(owner, "attention", self.attention, ATTENTIONS)
        _probability(owner, "teacher_forcing", self.teacher_forcing, upper_open=False)
        if self.decoder.bidirectional:
            raise ValueError(f"{owner}: the decoder cannot be bidirectional")


# ---- training (rnnkit.training) ---------------------------------------------------------

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("constant", "cosine", "linear", "wsd", "step", "exponential", "plateau")
TIME_SCHEDULES = ("constant", "cosine", "linear", "wsd")  # by a fraction of a budget
CLIPS = ("norm", "value", "none")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train: budget, optimiser, schedule, clipping, evaluation, checkpoints.

    Budget: `steps` batches, and/or `epochs` passes over an iterable dataset, and/or
    `time_minutes` of wall-clock; training stops at whichever comes first.
    Schedule (per step): "constant", "cosine" (to lr·min_lr_ratio), "linear" (to
    lr·min_lr_ratio), "step" (×gamma every step_size), "exponential" (×gamma per step),
    "plateau" (×gamma after `plateau_patience` evaluations without improvement); all after
    `warmup_steps` of linear warm-up.
    `schedule_over`: what "cosine" and "linear" decay over: "steps" (the `steps` budget, after
    warm-up) or "time" (the `time_minutes` budget, as the fraction of it used when a step
    starts: the Trainer's elapsed training time, evaluations and checkpoints included, the same
    clock that ends training). "time" is for a budget of minutes alone, where the number of
    steps is not known in advance; a resumed run continues from its saved elapsed time.
    Clipping: "norm" (global L2 norm ≤ clip_value, default), "value" (|g| ≤ clip_value), "none".
    `eval_every`/`checkpoint_every`/`log_every`: in steps, 0 = only at the end.
    `patience`: stop after this many evaluations without improvement of `monitor` (0 = never).
    """

    steps: int = 1000
    epochs: int | None = None
    time_minutes: float | None = None
    batch_size: int | None = None  # informational: written to config.json for tasks
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    schedule: str = "constant"
    schedule_over: str = "steps"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    gamma: float = 0.5
    step_size: int = 1000
    plateau_patience: int = 2
    clip: str = "norm"
    clip_value: float = 1.0
    eval_every: int = 0
    eval_batches: int | None = None
    patience: int = 0
    monitor: str = "loss"
    monitor_mode: str = "min"
    checkpoint_every: int = 0
    log_every: int = 10
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        owner = "TrainConfig"
        _positive(owner, steps=self.steps)
        if self.epochs is not None:
            _positive(owner, epochs=self.epochs)
        if self.time_minutes is not None and not self.time_minutes > 0:
            raise ValueError(f"{owner}: time_minutes must be > 0, got {self.time_minutes!r}")
        _choice(owner, "optimizer", self.optimizer, OPTIMIZERS)
        _choice(owner, "schedule", self.schedule, SCHEDULES)
        _choice(owner, "schedule_over", self.schedule_over, ("steps", "time"))
        if self.schedule_over == "time":
            if self.time_minutes is None:
                raise ValueError(f"{owner}: schedule_over='time' needs time_minutes")
            if self.schedule not in TIME_SCHEDULES:
                raise ValueError(
                    f"{owner}: schedule_over='time' works with schedule "
                    f"{' or '.join(map(repr, TIME_SCHEDULES))}, got {self.schedule!r}"
                )
        _choice(owner, "clip", self.clip, CLIPS)
        _choice(owner, "monitor_mode", self.monitor_mode, ("min", "max"))
        if not self.lr > 0:
            raise ValueError(f"{owner}: lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0 or self.momentum < 0:
            raise ValueError(f"{owner}: weight_decay and momentum must be >= 0")
        if self.clip != "none" and not self.clip_value > 0:
            raise ValueError(f"{owner}: clip_value must be > 0, got {self.clip_value!r}")
        for key in ("warmup_steps", "eval_every", "checkpoint_every", "log_every", "patience"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{owner}: {key} must be an integer >= 0, got {value!r}")
        _positive(owner, step_size=self.step_size, plateau_patience=self.plateau_patience)
        if not 0 < self.gamma <= 1:
            raise ValueError(f"{owner}: gamma must be in (0, 1], got {self.gamma!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"{owner}: min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.eval_batches is not None:
            _positive(owner, eval_batches=self.eval_batches)
