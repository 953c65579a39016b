"""Layers: `Recurrent` loops any cell over time (stacking, bidirectional, lengths, dropout).

Also the torch.nn-like constructors RNN / LSTM / GRU and `from_torch`.
Imports: rnnkit.config, rnnkit.cells, and rnnkit.kernels (lazily, for impl="fused").
"""

from .builders import GRU, LSTM, RNN, from_torch
from .recurrent import IMPLS, Recurrent, reverse_padded

__all__ = ["GRU", "IMPLS", "LSTM", "RNN", "Recurrent", "from_torch", "reverse_padded"]
