"""The simple recurrent network: Elman (hidden state fed back) and Jordan (output fed back).

Elman (1990):  h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
Jordan (1986): h_t = f(W_ih x_t + b_ih + W_hh y_{t-1} + b_hh),  y_t = g(W_ho h_t + b_ho)

Work per step: O(B·H·(D + H)); state: h (B, H) for Elman, y (B, O) for Jordan.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..config import CellConfig
from .base import (
    check_sizes,
    check_state_tensor,
    check_step_input,
    resolve_activation,
    uniform_init,
)
from .registry import CellFamily, TorchEquivalent, register_cell

INITS = ("uniform", "orthogonal", "identity")


class ElmanCell(nn.Module):
    """Elman cell; parameters named as in torch.nn.RNN (weight_ih, weight_hh, bias_ih, bias_hh).

    Args:
        input_size: D.
        hidden_size: H.
        activation: "tanh", "sigmoid", "relu", "identity" or a callable (a callable is not
            written to config.json; give a name to save and reload).
        bias: whether to use b_ih and b_hh.
        init: "uniform" (PyTorch's U(±1/sqrt(H))), "orthogonal" (orthogonal W_hh, Xavier W_ih,
            zero biases) or "identity" (IRNN, Le et al. 2015: W_hh = init_scale·I,
            W_ih ~ N(0, 0.001²), zero biases; pair with activation="relu").
        init_scale: gain of the recurrent matrix for "orthogonal" and "identity".

    Example:
        >>> cell = ElmanCell(3, 8, activation="relu", init="identity")
        >>> h = cell.init_state(2)
        >>> y, h = cell(torch.randn(2, 3), h)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        activation: str | Callable[[Tensor], Tensor] = "tanh",
        bias: bool = True,
        init: str = "uniform",
        init_scale: float = 1.0,
    ):
        super().__init__()
        check_sizes(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        if init not in INITS:
            raise ValueError(f"ElmanCell: init must be one of {INITS}, got {init!r}")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.activation = activation
        self.act = resolve_activation(activation)
        self.bias, self.init, self.init_scale = bias, init, init_scale
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_recurrent(self, self.weight_hh, self.init, self.init_scale)

    def init_state(self, batch: int, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x_t: Tensor, state: Tensor, hmask: Tensor | None = None):
        check_step_input(self, x_t)
        check_state_tensor(self, "h", state, x_t.shape[0], self.hidden_size)
        h = state if hmask is None else state * hmask
        pre = nn.functional.linear(x_t, self.weight_ih, self.bias_ih)
        pre = pre + nn.functional.linear(h, self.weight_hh, self.bias_hh)
        h_new = self.act(pre)
        return h_new, h_new

    def config(self) -> CellConfig:
        return CellConfig("elman", self.input_size, self.hidden_size, self._options())

    def _options(self) -> dict:
        return {
            "activation": self.activation if isinstance(self.activation, str) else "callable",
            "bias": self.bias,
            "init": self.init,
            "init_scale": self.init_scale,
        }

    def replicate(self, input_size: int) -> ElmanCell:
        return ElmanCell(
            input_size, self.hidden_size, self.activation, self.bias, self.init, self.init_scale
        )

    def extra_repr(self) -> str:
        act = self.activation if isinstance(self.activation, str) else "callable"
        return f"{self.input_size}, {self.hidden_size}, activation={act}, bias={self.bias}"


class JordanCell(nn.Module):
    """Jordan cell: the previous *output* y_{t-1}, not h_{t-1}, is fed back.

    Parameters: weight_ih (H, D), weight_hh (H, O) — the recurrent weights read y_{t-1} —,
    weight_ho (O, H), and biases bias_ih, bias_hh (H,), bias_ho (O,).

    Args:
        input_size: D.
        hidden_size: H.
        output_size: O (default H).
        activation: f, the hidden activation (names as for ElmanCell).
        output_activation: g, applied to the output that is fed back (default "tanh",
            which keeps the feedback bounded).
        bias, init, init_scale: as for ElmanCell (the recurrent matrix is H × O).

    The cell's y_t is the output (B, O); the state is y_t too.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int | None = None,
        activation: str | Callable[[Tensor], Tensor] = "tanh",
        output_activation: str | Callable[[Tensor], Tensor] = "tanh",
        bias: bool = True,
        init: str = "uniform",
        init_scale: float = 1.0,
    ):
        super().__init__()
        output_size = hidden_size if output_size is None else output_size
        check_sizes(
            "JordanCell", input_size=input_size, hidden_size=hidden_size, output_size=output_size
        )
        if init not in INITS:
            raise ValueError(f"JordanCell: init must be one of {INITS}, got {init!r}")
        if init == "identity" and output_size != hidden_size:
            raise ValueError("JordanCell: init='identity' needs output_size == hidden_size")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.activation, self.output_activation = activation, output_activation
        self.act = resolve_activation(activation)
        self.out_act = resolve_activation(output_activation)
        self.bias, self.init, self.init_scale = bias, init, init_scale
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, output_size))
        self.weight_ho = nn.Parameter(torch.empty(output_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(hidden_size))
            self.bias_ho = nn.Parameter(torch.empty(output_size))
        else:
            for name in ("bias_ih", "bias_hh", "bias_ho"):
                self.register_parameter(name, None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_recurrent(self, self.weight_hh, self.init, self.init_scale)

    def init_state(self, batch: int, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch, self.output_size, device=device, dtype=dtype)

    def forward(self, x_t: Tensor, state: Tensor, hmask: Tensor | None = None):
        check_step_input(self, x_t)
        check_state_tensor(self, "y", state, x_t.shape[0], self.output_size)
        y_prev = state if hmask is None else state * hmask
        pre = nn.functional.linear(x_t, self.weight_ih, self.bias_ih)
        h = self.act(pre + nn.functional.linear(y_prev, self.weight_hh, self.bias_hh))
        y = self.out_act(nn.functional.linear(h, self.weight_ho, self.bias_ho))
        return y, y

    def config(self) -> CellConfig:
        name = lambda a: a if isinstance(a, str) else "callable"  # noqa: E731
        return CellConfig(
            "jordan",
            self.input_size,
            self.hidden_size,
            {
                "output_size": self.output_size,
                "activation": name(self.activation),
                "output_activation": name(self.output_activation),
                "bias": self.bias,
                "init": self.init,
                "init_scale": self.init_scale,
            },
        )

    def replicate(self, input_size: int) -> JordanCell:
        return JordanCell(
            input_size,
            self.hidden_size,
            self.output_size,
            self.activation,
            self.output_activation,
            self.bias,
            self.init,
            self.init_scale,
        )


def init_recurrent(cell: nn.Module, weight_hh: Tensor, init: str, scale: float) -> None:
    """Initialise a simple cell's parameters by the named scheme (see ElmanCell)."""
    with torch.no_grad():
        if init == "uniform":
            uniform_init(cell, cell.hidden_size)
            return
        for name, p in cell.named_parameters(recurse=False):
            if name.startswith("bias"):
                p.zero_()
            elif p is not weight_hh:
                if init == "identity":
                    nn.init.normal_(p, 0.0, 0.001)
                else:
                    nn.init.xavier_uniform_(p)
        if init == "identity":
            weight_hh.copy_(torch.eye(*weight_hh.shape) * scale)
        else:
            nn.init.orthogonal_(weight_hh, gain=scale)


def _torch_rnn_unsupported(cells) -> str | None:
    if any(c.activation not in ("tanh", "relu") for c in cells):
        return "torch.nn.RNN has only tanh and relu"
    return None


register_cell(
    CellFamily(
        "elman",
        ElmanCell,
        torch=TorchEquivalent(
            nn.RNN,
            from_module=lambda m: ElmanCell(m.input_size, m.hidden_size, m.nonlinearity, m.bias),
            options=lambda cell: {"nonlinearity": cell.activation},
            unsupported=_torch_rnn_unsupported,
        ),
    )
)
register_cell(CellFamily("jordan", JordanCell))
