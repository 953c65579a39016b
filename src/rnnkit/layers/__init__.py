"""Layers: `Recurrent` loops any cell over time (stacking, bidirectional, lengths, dropout).

Also the torch.nn-like constructors RNN / LSTM / GRU and `from_torch`. Importing the package
registers rnnkit's native kernels as impl "fused" of the Elman, GRU and LSTM families.
Imports: rnnkit.config, rnnkit.cells, and rnnkit.kernels (lazily, when a kernel runs).
"""

from . import fused  # noqa: F401 - registers impl "fused" in the cell registry
from .builders import GRU, LSTM, RNN, from_torch
from .recurrent import Recurrent, reverse_padded

__all__ = ["GRU", "LSTM", "RNN", "Recurrent", "from_torch", "reverse_padded"]
