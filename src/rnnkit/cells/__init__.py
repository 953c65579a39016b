"""Recurrent cells: one step of the network, one file per family.

A cell computes `y_t, state = cell(x_t, state)` and keeps nothing between calls, so BPTT,
truncated BPTT and RTRL can all drive it. Parameter names and gate order follow PyTorch.
Each family's file registers it (`registry`): a new family is one new file.
Imports: torch and rnnkit.config only.
"""

from __future__ import annotations

from ..config import CellConfig
from .base import ACTIVATIONS, Cell, State
from .elman import ElmanCell, JordanCell
from .gru import GRUCell
from .keras import load_keras_weights
from .lru import LRUCell
from .lstm import LSTMCell
from .minimal import MinGRUCell, MinLSTMCell
from .registry import (
    FAMILIES,
    CellFamily,
    SequenceImpl,
    TorchEquivalent,
    build_cell,
    families,
    family_of,
    impl_names,
    impls_of,
    register_cell,
    register_impl,
)

__all__ = [
    "ACTIVATIONS",
    "FAMILIES",
    "Cell",
    "CellConfig",
    "CellFamily",
    "ElmanCell",
    "GRUCell",
    "JordanCell",
    "LRUCell",
    "LSTMCell",
    "MinGRUCell",
    "MinLSTMCell",
    "SequenceImpl",
    "State",
    "TorchEquivalent",
    "build_cell",
    "families",
    "family_of",
    "impl_names",
    "impls_of",
    "load_keras_weights",
    "register_cell",
    "register_impl",
]
