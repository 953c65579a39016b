"""rnnkit: recurrent neural networks on PyTorch — cells, layers, training through time, tools.

Public API (re-exports only). See README.md for a tour.
"""

from .cells import Cell, ElmanCell, GRUCell, JordanCell, LSTMCell, build_cell
from .config import CellConfig, RecurrentConfig
from .diagnostics import Unfolded, unfold
from .layers import GRU, LSTM, RNN, Recurrent, from_torch

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Cell",
    "CellConfig",
    "ElmanCell",
    "GRUCell",
    "JordanCell",
    "LSTMCell",
    "Recurrent",
    "RecurrentConfig",
    "Unfolded",
    "build_cell",
    "from_torch",
    "unfold",
]
