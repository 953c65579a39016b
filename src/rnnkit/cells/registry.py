"""The cell-family registry: config name -> cell, and the faster paths each family has.

A family registers itself once, in its own file, with `register_cell(CellFamily(...))`: its cell
class, its config name (and aliases), how to build it from a CellConfig, and optionally its
torch.nn equivalent and its own sequence implementations (e.g. a parallel scan). Other code
adds implementations to a family with `register_impl` (rnnkit.layers.fused adds the native
kernels as "fused"). `build_cell` and `Recurrent` dispatch through this registry only, so a new
family is one new file that touches no existing one.

Dispatch is on the cell's exact class: a subclass (say a leaky ElmanCell) computes something
else, so it never inherits its parent's kernels; it registers as a family of its own.
Imports: torch and rnnkit.config only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from torch import Tensor, nn

from ..config import CellConfig
from .base import Cell, State

RESERVED = ("auto", "reference", "torch")  # impl names Recurrent itself gives meaning to


class SequenceImpl(Protocol):
    """A faster way to run one direction of one layer of a family's cells over a sequence.

    It must compute what the cell's step loop computes (Recurrent's impl="reference"), to float
    tolerance. Optional: `step(cell, x_t, state) -> (y_t, state)`, one step for streaming
    inference, called only under torch.no_grad(); `recurrent_dropout = True` when `run` takes a
    recurrent-dropout mask (otherwise it is called with hmask=None only).
    """

    def unsupported(self, cell: Cell, x: Tensor | None) -> str | None:
        """Why this cell (on x, when given) cannot run here, or None if it can."""
        ...

    def run(
        self, cell: Cell, x: Tensor, state: State, lengths: Tensor | None, hmask: Tensor | None
    ) -> tuple[Tensor, State]:
        """x (B, T, D) -> (out (B, T, O), zero past each length; state at each last step)."""
        ...


@dataclasses.dataclass(frozen=True)
class TorchEquivalent:
    """The torch.nn module that computes a stack of a family's cells, with the same parameters.

    `Recurrent` checks what every family shares (one cell class, hidden size and bias across
    the layers, no recurrent dropout); the family says the rest.

    Args:
        module: torch.nn.RNN, LSTM or GRU.
        options: the module's keyword arguments taken from a cell beyond the shared ones
            (e.g. {"nonlinearity": "relu"}); every layer must give the same.
        from_module: a first-layer cell with the module's options (for `from_torch`).
        unsupported: why torch.nn cannot run these cells, or None.
    """

    module: type[nn.RNNBase]
    from_module: Callable[[nn.RNNBase], Cell]
    options: Callable[[Cell], dict[str, Any]] = lambda cell: {}
    unsupported: Callable[[Sequence[Cell]], str | None] = lambda cells: None


@dataclasses.dataclass(frozen=True)
class CellFamily:
    """One cell family as the registry knows it.

    Args:
        name: the config name (CellConfig.kind, RNNConfig.cell), e.g. "gru".
        cell: the cell class; `cell.config().kind` must be `name`.
        build: a fresh cell from its CellConfig; default `cell(input_size, hidden_size,
            **options)`.
        aliases: further config names accepted for this family.
        torch: its torch.nn equivalent, if torch.nn has one (enables impl="torch", to_torch,
            from_torch).
        impls: the family's own sequence implementations by impl name.
        prefer_for_inference: impl names impl="auto" tries first when no gradient is needed,
            before the default order (the registered impls in order, then "torch").
    """

    name: str
    cell: type[nn.Module]
    build: Callable[[CellConfig], Cell] | None = None
    aliases: tuple[str, ...] = ()
    torch: TorchEquivalent | None = None
    impls: dict[str, SequenceImpl] = dataclasses.field(default_factory=dict)
    prefer_for_inference: tuple[str, ...] = ()


FAMILIES: dict[str, CellFamily] = {}  # by name and alias
_BY_CLASS: dict[type, CellFamily] = {}
_IMPLS: dict[type, dict[str, SequenceImpl]] = {}  # cell class -> impl name -> impl


def register_cell(family: CellFamily) -> CellFamily:
    """Add a cell family: its names resolve in `build_cell` and its cells run in `Recurrent`.

    Example:
        >>> register_cell(CellFamily("leaky", LeakyCell))
        >>> layer = build_rnn(RNNConfig("leaky", 32, options={"leak": 0.5}), input_size=8)
    """
    for name in (family.name, *family.aliases):
        if not isinstance(name, str) or not name:
            raise ValueError(f"register_cell: a family name must be a non-empty str, got {name!r}")
        if name in FAMILIES:
            raise ValueError(f"register_cell: a cell family {name!r} is already registered")
    if family.cell in _BY_CLASS:
        raise ValueError(f"register_cell: {family.cell.__name__} is already registered")
    for name in (family.name, *family.aliases):
        FAMILIES[name] = family
    _BY_CLASS[family.cell] = family
    _IMPLS[family.cell] = {}
    for name, impl in family.impls.items():
        register_impl(family.cell, name, impl)
    return family


def register_impl(cell: type[nn.Module], name: str, impl: SequenceImpl) -> None:
    """Let `Recurrent(..., impl=name)` run a registered family's cells through `impl`."""
    if cell not in _IMPLS:
        raise ValueError(f"register_impl: {cell.__name__} is not a registered cell family")
    if name in RESERVED:
        raise ValueError(f"register_impl: {name!r} is reserved (one of {RESERVED})")
    if name in _IMPLS[cell]:
        raise ValueError(f"register_impl: {cell.__name__} already has an impl {name!r}")
    _IMPLS[cell][name] = impl


def family_of(cell: Cell) -> CellFamily | None:
    """The family of a cell (by its exact class), or None for an unregistered one."""
    return _BY_CLASS.get(type(cell))


def families() -> tuple[CellFamily, ...]:
    """Every registered family once, in the order they were registered."""
    return tuple(_BY_CLASS.values())


def impls_of(cell: Cell) -> dict[str, SequenceImpl]:
    """The sequence implementations a cell's family has, in the order they were registered."""
    return _IMPLS.get(type(cell), {})


def impl_names() -> tuple[str, ...]:
    """Every name `Recurrent(impl=...)` accepts: auto, reference, torch and registered ones."""
    own = {name: None for impls in _IMPLS.values() for name in impls}
    return (*RESERVED, *own)


def build_cell(config: CellConfig) -> Cell:
    """A fresh cell from its config (e.g. read from config.json)."""
    family = FAMILIES.get(config.kind)
    if family is None:
        raise ValueError(
            f"unknown cell kind {config.kind!r}; expected one of {sorted(FAMILIES)}"
        )
    if family.build is not None:
        return family.build(config)
    return family.cell(config.input_size, config.hidden_size, **config.options)
