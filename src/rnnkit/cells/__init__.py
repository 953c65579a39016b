"""Recurrent cells: one step of the network, one file per family.

A cell computes `y_t, state = cell(x_t, state)` and keeps nothing between calls, so BPTT,
truncated BPTT and RTRL can all drive it. Parameter names and gate order follow PyTorch.
Imports: torch and rnnkit.config only.
"""

from __future__ import annotations

from ..config import CellConfig
from .base import ACTIVATIONS, Cell, State
from .elman import ElmanCell, JordanCell
from .gru import GRUCell
from .keras import load_keras_weights
from .lstm import LSTMCell

CELLS = {"elman": ElmanCell, "jordan": JordanCell, "lstm": LSTMCell, "gru": GRUCell}


def build_cell(config: CellConfig) -> Cell:
    """A fresh cell from its config (e.g. read from config.json)."""
    if config.kind not in CELLS:
        raise ValueError(f"unknown cell kind {config.kind!r}; expected one of {sorted(CELLS)}")
    return CELLS[config.kind](config.input_size, config.hidden_size, **config.options)


__all__ = [
    "ACTIVATIONS",
    "CELLS",
    "Cell",
    "CellConfig",
    "ElmanCell",
    "GRUCell",
    "JordanCell",
    "LSTMCell",
    "State",
    "build_cell",
    "load_keras_weights",
]
