"""Loading weights saved by Keras' SimpleRNN, LSTM and GRU layers into rnnkit cells.

Keras stores `kernel` (D, G·H), `recurrent_kernel` (H, G·H) and `bias`, with gates in its own
order: LSTM i, f, c, o (PyTorch's i, f, g, o); GRU z, r, h (PyTorch's r, z, n). A GRU saved
with reset_after=True has bias (2, 3H) — input and recurrent biases — and matches
GRUCell(reset_after=True); with reset_after=False it has a single bias (3H,) and matches
GRUCell(reset_after=False) with bias_hh = 0. Keras' LSTM and SimpleRNN have one bias, which
goes to bias_ih (bias_hh = 0).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .elman import ElmanCell
from .gru import GRUCell
from .lstm import LSTMCell


def load_keras_weights(cell: nn.Module, kernel, recurrent_kernel, bias=None) -> None:
    """Copy Keras weights (numpy arrays or tensors) into `cell`, in place.

    Args:
        cell: an ElmanCell (from SimpleRNN), LSTMCell (base form) or GRUCell.
        kernel: (D, G·H); recurrent_kernel: (H, G·H); bias: (G·H,) or, for a GRU with
            reset_after=True, (2, G·H).

    Example:
        >>> cell = GRUCell(8, 16, reset_after=True)
        >>> load_keras_weights(cell, *keras_layer.get_weights())
    """
    k, rk = _tensor(kernel), _tensor(recurrent_kernel)
    b = None if bias is None else _tensor(bias)
    if isinstance(cell, GRUCell):
        order = [1, 0, 2]  # Keras z, r, h -> PyTorch r, z, n
        if b is not None and b.dim() == 2 and not cell.reset_after:
            raise ValueError("load_keras_weights: a (2, 3H) bias is Keras' reset_after=True layout")
        if b is not None and b.dim() == 1 and cell.reset_after:
            raise ValueError("load_keras_weights: a (3H,) bias is Keras' reset_after=False layout")
    elif isinstance(cell, LSTMCell):
        if cell.peepholes or cell.layer_norm or cell.proj_size:
            raise ValueError(
                "load_keras_weights: Keras' LSTM has no peepholes, layer norm or projection"
            )
        order = [0, 1, 2, 3]
    elif isinstance(cell, ElmanCell):
        order = [0]
    else:
        raise TypeError(f"load_keras_weights: no Keras layout for {type(cell).__name__}")
    G, H, D = len(order), cell.hidden_size, cell.input_size
    _check("kernel", k, (D, G * H))
    _check("recurrent_kernel", rk, (H, G * H))

    def reorder(w: torch.Tensor) -> torch.Tensor:  # (·, G·H) in Keras order -> (G·H, ·) ours
        blocks = w.reshape(*w.shape[:-1], G, H)[..., order, :]
        return blocks.reshape(*w.shape[:-1], G * H).T if w.dim() == 2 else blocks.reshape(G * H)

    with torch.no_grad():
        cell.weight_ih.copy_(reorder(k))
        cell.weight_hh.copy_(reorder(rk))
        if b is None:
            if cell.bias:
                raise ValueError("load_keras_weights: the cell has biases but no bias was given")
            return
        if not cell.bias:
            raise ValueError("load_keras_weights: a bias was given but the cell has bias=False")
        if b.dim() == 2:
            _check("bias", b, (2, G * H))
            cell.bias_ih.copy_(reorder(b[0]))
            cell.bias_hh.copy_(reorder(b[1]))
        else:
            _check("bias", b, (G * H,))
            cell.bias_ih.copy_(reorder(b))
            cell.bias_hh.zero_()


def _tensor(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def _check(name: str, t: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(t.shape) != shape:
        raise ValueError(
            f"load_keras_weights: expected {name} of shape {shape}, got {tuple(t.shape)}"
        )
