"""Task options: each option declared once, validated in one place, turned into CLI flags.

An application's options are a frozen dataclass made with `@options`. Every field carries its
help text and its bounds in `opt(...)`; the CLI derives its flags (`--hidden`, `--seq-len`)
and their help from these fields, and `check_options` validates every field against them, so
adding an option touches one line. Options shared by every training command (the vocabulary
`--data --cell --hidden --layers --steps --epochs --minutes --lr --batch --seed --threads
--device`)
are declared once in `TrainOptions`; a task subclasses it and may give a field a new default
(`hidden: int = 128`) or new choices (`cell: str = opt("gru", choices=("gru", "lstm"))`),
keeping the help and bounds declared here.

Errors name the field (`hidden must be >= 1, got 0`); only the CLI maps fields to flags.

Stdlib only: the CLI imports this to build `--help` without importing torch.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

SEED_MAX = 2**32 - 1  # numpy's seed range; torch takes more, numpy does not
HUGE = 10**9  # the upper bound of counts nobody means to exceed (steps, sizes)
# --cell name -> rnnkit cell family (rnnkit.cells.registry); the CLI's "rnn" is the Elman cell
CELL_FAMILIES = {
    "lstm": "lstm", "gru": "gru", "rnn": "elman", "mingru": "mingru", "minlstm": "minlstm",
    "lru": "lru",
}


class OptionError(ValueError):
    """An option value out of range or of the wrong type. `field` names the option."""

    def __init__(self, field: str, requirement: str, value: Any = dataclasses.MISSING):
        self.field, self.requirement, self.value = field, requirement, value
        got = "" if value is dataclasses.MISSING else f", got {value!r}"
        super().__init__(f"{field} must be {requirement}{got}")

    def for_flag(self, flag: str) -> str:
        """The message with the field written as the CLI flag that set it."""
        got = "" if self.value is dataclasses.MISSING else f", got {self.value!r}"
        return f"{flag} must be {self.requirement}{got}"


def opt(
    default: Any,
    help: str | None = None,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[str, ...] | None = None,
    cli: bool = True,
) -> Any:
    """A task option: its default, its help text and its bounds, in one place.

    Args:
        default: the value when the option is not given (None: "not set").
        help: one sentence for `--help`; None inherits the help of the same field in a base.
        ge, gt, le, lt: bounds for numbers (>=, >, <=, <).
        choices: the allowed strings.
        cli: False for fields set by the library only (e.g. computed from the data).
    """
    meta = {"help": help, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "cli": cli}
    meta = {k: v for k, v in meta.items() if v is not None}
    return dataclasses.field(default=default, metadata=meta)


def options(cls: type) -> type:
    """Make `cls` a frozen options dataclass whose redeclared fields keep their base's help and
    bounds (a plain `hidden: int = 128` in a subclass changes only the default)."""
    inherited = {}
    for base in cls.__mro__[1:]:
        for f in dataclasses.fields(base) if dataclasses.is_dataclass(base) else ():
            inherited.setdefault(f.name, f.metadata)
    for name in cls.__dict__.get("__annotations__", {}):
        if name not in inherited:
            continue
        value = cls.__dict__.get(name, dataclasses.MISSING)
        if isinstance(value, dataclasses.Field):
            value.metadata = {**inherited[name], **value.metadata}  # type: ignore[misc]
        elif value is not dataclasses.MISSING:
            setattr(cls, name, dataclasses.field(default=value, metadata=dict(inherited[name])))
    return dataclasses.dataclass(frozen=True)(cls)


def field_specs(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """(field, resolved type) for each option of an options class, in declaration order."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def base_type(tp: Any) -> tuple[type, bool]:
    """(the type inside `X | None`, whether None is allowed)."""
    args = typing.get_args(tp)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def check_value(f: dataclasses.Field, tp: Any, value: Any) -> None:
    """Raise OptionError if `value` is not what field `f` of type `tp` accepts."""
    kind, optional = base_type(tp)
    name, meta = f.name, f.metadata
    if value is None:
        if optional:
            return
        raise OptionError(name, f"a {kind.__name__}", value)
    if kind is bool:
        if not isinstance(value, bool):
            raise OptionError(name, "true or false", value)
        return
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionError(name, "an integer", value)
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionError(name, "a number", value)
        if not math.isfinite(value):
            raise OptionError(name, "a finite number", value)
    elif kind is str:
        if not isinstance(value, str):
            raise OptionError(name, "a string", value)
        choices = meta.get("choices")
        if choices and value not in choices:
            raise OptionError(name, f"one of {', '.join(choices)}", value)
        return
    for key, test, word in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ):
        bound = meta.get(key)
        if bound is not None and not test(value, bound):
            raise OptionError(name, f"{word} {_num(bound)}", value)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def check_options(obj: Any) -> None:
    """Validate every field of an options object, then its own cross-field `check()`."""
    for f, tp in field_specs(type(obj)):
        check_value(f, tp, getattr(obj, f.name))
    check = getattr(obj, "check", None)
    if callable(check):
        check()


class Validated:
    """Mixin: options are checked when made, so a bad value never reaches training."""

    def __post_init__(self) -> None:
        check_options(self)


def idle_threads_option() -> Any:
    """`threads` for tasks that pick the thread count themselves when it is not given
    (rnnkit.training.set_auto_threads: the cores other work leaves idle)."""
    return opt(
        None, "torch CPU threads, capped at the machine's cores (default: the cores other work "
        "leaves idle).", ge=1, le=1 << 20,
    )  # fmt: skip


@options
class TrainOptions(Validated):
    """The options every training command shares, with one name each across the commands.

    Budgets: `steps` (optimiser updates), `epochs` (passes over the training split) and
    `minutes` (wall-clock training time) may be combined; training stops at the first reached.
    """

    data: str | None = opt(None, "A data set name or a file.")
    cell: str = opt("lstm", "Recurrent cell.", choices=tuple(CELL_FAMILIES))
    hidden: int = opt(128, "Hidden units per layer (and direction).", ge=1, le=65536)
    layers: int = opt(1, "Stacked recurrent layers.", ge=1, le=64)
    steps: int | None = opt(None, "Optimiser updates (a budget).", ge=1, le=HUGE)
    epochs: float | None = opt(None, "Passes over the training split (a budget).", gt=0, le=1e6)
    minutes: float | None = opt(None, "Wall-clock training time (a budget).", gt=0, le=7 * 24 * 60)
    lr: float = opt(1e-3, "Learning rate.", gt=0, le=10)
    batch: int = opt(32, "Examples per batch.", ge=1, le=1_000_000)
    seed: int = opt(0, "Random seed.", ge=0, le=SEED_MAX)
    threads: int | None = opt(
        None, "torch CPU threads, capped at the machine's cores (default: torch's).",
        ge=1, le=1 << 20,
    )
    device: str = opt(
        "cpu", "Where training runs: cpu, cuda, cuda:N, mps or auto (cuda when available, else "
        "cpu). Evaluation and the saved model are on the CPU.",
    )

    def check(self) -> None:
        if self.steps is None and self.epochs is None and self.minutes is None:
            raise OptionError("steps, epochs or minutes", "set: training needs a budget")

    def total_steps(self, steps_per_epoch: int) -> int:
        """The step budget: the smaller of --steps and --epochs (in steps), else unbounded
        (--minutes alone bounds training)."""
        candidates = [self.steps] if self.steps is not None else []
        if self.epochs is not None:
            candidates.append(max(1, math.ceil(self.epochs * max(1, steps_per_epoch))))
        return min(candidates) if candidates else HUGE

    def train_config(self, steps: int, **fields: Any) -> Any:
        """The TrainConfig of a run: `steps`, --minutes, --batch, --lr, --seed, and AdamW when a
        task's `weight_decay` option is set (else Adam); `fields` are the task's own settings
        (schedule, clipping, monitor, ...) and win over these."""
        from ..config import TrainConfig

        decay = getattr(self, "weight_decay", 0.0)
        return TrainConfig(**{
            "steps": steps, "time_minutes": self.minutes, "batch_size": self.batch, "lr": self.lr,
            "seed": self.seed, "weight_decay": decay, "optimizer": "adamw" if decay else "adam",
            **fields,
        })  # fmt: skip


def resolve_device(name: str) -> Any:
    """The torch.device that `--device name` trains on, checked against this machine: "auto"
    is the CUDA device when torch sees one, else the CPU; "cuda", "cuda:N" and "mps" must be
    present here. Imports torch (this module otherwise does not); run at training time, so a
    run trained on a GPU still loads its options on a machine without one.

    Raises:
        OptionError: (field "device") a name torch cannot parse, not a CPU, CUDA or MPS
            device, or a device this machine does not have.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kinds = "cpu, cuda, cuda:N, mps or auto"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise OptionError("device", kinds, name) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise OptionError("device", "a device of this machine (torch sees no CUDA GPU; "
                              "use cpu or auto)", name)  # fmt: skip
        if (device.index or 0) >= count:
            raise OptionError("device", f"a device of this machine (torch sees {count} CUDA "
                              f"GPU(s): cuda:0 to cuda:{count - 1})", name)  # fmt: skip
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise OptionError("device", "a device of this machine (torch sees no MPS device; "
                              "use cpu or auto)", name)  # fmt: skip
    elif device.type != "cpu":
        raise OptionError("device", kinds, name)
    return device


def to_dict(obj: Any) -> dict[str, Any]:
    """An options object as JSON-ready values (for config.json)."""
    return dataclasses.asdict(obj)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild options stored by `to_dict`; unknown keys (from another version) are dropped,
    missing ones take today's defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
