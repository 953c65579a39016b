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
    kwargs = {}
    for name, value in data.items():
        ftype = hints.get(name)
        if isinstance(value, dict) and dataclasses.is_dataclass(ftype):
            value = from_dict(ftype, value)
        elif isinstance(value, list) and name in fields:
            value = tuple(value) if _is_tuple(fields[name]) else value
        kwargs[name] = value
    return cls(**kwargs)


def from_json(cls: type[T], text: str) -> T:
    return from_dict(cls, json.loads(text))


def _resolved_types(cls: type) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(cls)
    except Exception:  # forward references to names we cannot see: fall back to no nesting
        return {}


def _is_tuple(field: dataclasses.Field) -> bool:
    return "tuple" in str(field.type)


@dataclasses.dataclass(frozen=True)
class CellConfig:
    """Which cell family and its options; enough to rebuild the cell with fresh weights.

    `kind` is one of "elman", "jordan", "lstm", "gru"; `options` holds the family's
    keyword arguments (JSON values only).
    """

    kind: str
    input_size: int
    hidden_size: int
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RecurrentConfig:
    """A `Recurrent` layer: one CellConfig per layer (forward direction's), plus options."""

    cells: tuple[CellConfig, ...]
    bidirectional: bool = False
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    impl: str = "auto"
