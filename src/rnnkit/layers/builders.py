"""`RNN`, `LSTM`, `GRU`: torch.nn-like constructors of a Recurrent layer, and `from_torch`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..cells import ElmanCell, GRUCell, LSTMCell, families
from .recurrent import Recurrent


def RNN(  # noqa: N802 - named like the torch.nn class it stands in for
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    impl: str = "auto",
    activation: str | Callable[[Tensor], Tensor] = "tanh",
    bias: bool = True,
    init: str = "uniform",
    init_scale: float = 1.0,
) -> Recurrent:
    """A stacked Elman RNN. `activation` as ElmanCell (torch.nn.RNN's `nonlinearity`).

    Example:
        >>> rnn = RNN(8, 64, activation="relu", init="identity")   # an IRNN
        >>> out, h = rnn(torch.randn(4, 100, 8))
    """
    cell = ElmanCell(input_size, hidden_size, activation, bias, init, init_scale)
    return Recurrent(cell, num_layers, bidirectional, dropout, recurrent_dropout, impl)


def LSTM(  # noqa: N802
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    impl: str = "auto",
    bias: bool = True,
    forget_bias: float = 1.0,
    peepholes: bool = False,
    layer_norm: bool = False,
    proj_size: int = 0,
) -> Recurrent:
    """A stacked LSTM; options as LSTMCell.

    Example:
        >>> lstm = LSTM(8, 64, num_layers=2, dropout=0.2)
        >>> out, (h, c) = lstm(torch.randn(4, 100, 8))
    """
    cell = LSTMCell(input_size, hidden_size, bias, forget_bias, peepholes, layer_norm, proj_size)
    return Recurrent(cell, num_layers, bidirectional, dropout, recurrent_dropout, impl)


def GRU(  # noqa: N802
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    impl: str = "auto",
    bias: bool = True,
    reset_after: bool = True,
) -> Recurrent:
    """A stacked GRU; `reset_after` as GRUCell.

    Example:
        >>> gru = GRU(8, 64, bidirectional=True)
        >>> out, h = gru(torch.randn(4, 100, 8))     # out (4, 100, 128), h (2, 4, 64)
    """
    cell = GRUCell(input_size, hidden_size, bias, reset_after)
    return Recurrent(cell, num_layers, bidirectional, dropout, recurrent_dropout, impl)


def from_torch(module: nn.RNNBase, impl: str = "auto") -> Recurrent:
    """A Recurrent layer holding copies of a torch.nn.RNN, LSTM or GRU's weights.

    The cell family is the registered one whose torch.nn equivalent the module is.

    Any number of layers and directions, LSTM projections included. The layout is the
    module's: time-first (T, B, D) for torch.nn's default, batch-first with batch_first=True.

    A torch.nn state_dict loads through the module: build it, `load_state_dict`, then
    from_torch (rnnkit's own keys are per cell, e.g. layers.0.0.weight_ih).

    Example:
        >>> m = nn.LSTM(8, 32, num_layers=2, bidirectional=True)
        >>> m.load_state_dict(torch.load("lstm.pt"))
        >>> layer = from_torch(m)               # fed (T, B, 8), as m is
        >>> back = layer.to_torch()
    """
    equivalent = next(
        (f.torch for f in families() if f.torch and isinstance(module, f.torch.module)), None
    )
    if equivalent is None:
        raise TypeError(
            f"from_torch: expected torch.nn.RNN, LSTM or GRU, got {type(module).__name__}"
        )
    cell = equivalent.from_module(module)
    layer = Recurrent(
        cell, module.num_layers, module.bidirectional, float(module.dropout), impl=impl,
        batch_first=module.batch_first,
    )  # fmt: skip
    first = next(module.parameters())
    layer = layer.to(device=first.device, dtype=first.dtype)
    with torch.no_grad():
        for name, p in layer.torch_parameters().items():
            p.copy_(getattr(module, name))
    layer.train(module.training)
    return layer
