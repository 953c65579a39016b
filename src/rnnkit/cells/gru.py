"""Gated recurrent unit (Cho et al. 2014). Gate order r, z, n as in PyTorch.

    r = σ(W_ir x + b_ir + W_hr h + b_hr)
    z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))   reset_after=True: PyTorch, cuDNN, Keras default
    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)   reset_after=False: Cho et al. 2014
    h' = (1 - z) * n + z * h

Work per step: O(B·3H·(D + H)); state: h (B, H).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import CellConfig
from .base import check_sizes, check_state_tensor, check_step_input, uniform_init
from .registry import CellFamily, TorchEquivalent, register_cell


class GRUCell(nn.Module):
    """GRU cell with PyTorch's parameter names and layout in both formulations.

    Args:
        input_size: D.
        hidden_size: H.
        bias: whether to use b_ih and b_hh.
        reset_after: True applies the reset gate after the recurrent matmul (PyTorch/cuDNN);
            False before it (the original; Keras weights saved with reset_after=False load
            with bias_hh = 0, since Keras has a single bias in that layout).

    Example:
        >>> cell = GRUCell(3, 8, reset_after=False)
        >>> y, h = cell(torch.randn(2, 3), cell.init_state(2))
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, reset_after: bool = True
    ):
        super().__init__()
        check_sizes("GRUCell", input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.bias, self.reset_after = bias, reset_after
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(3 * H))
            self.bias_hh = nn.Parameter(torch.empty(3 * H))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init(self, self.hidden_size)

    def init_state(self, batch: int, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x_t: Tensor, state: Tensor, hmask: Tensor | None = None):
        check_step_input(self, x_t)
        check_state_tensor(self, "h", state, x_t.shape[0], self.hidden_size)
        h = state
        h_in = h if hmask is None else h * hmask
        H = self.hidden_size
        gx = nn.functional.linear(x_t, self.weight_ih, self.bias_ih)  # (B, 3H)
        x_r, x_z, x_n = gx.chunk(3, dim=1)
        if self.reset_after:
            gh = nn.functional.linear(h_in, self.weight_hh, self.bias_hh)  # (B, 3H)
            h_r, h_z, h_n = gh.chunk(3, dim=1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
        else:
            w_rz, w_n = self.weight_hh[: 2 * H], self.weight_hh[2 * H :]
            b_rz = b_n = None
            if self.bias_hh is not None:
                b_rz, b_n = self.bias_hh[: 2 * H], self.bias_hh[2 * H :]
            h_r, h_z = nn.functional.linear(h_in, w_rz, b_rz).chunk(2, dim=1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + nn.functional.linear(r * h_in, w_n, b_n))
        h_new = (1 - z) * n + z * h
        return h_new, h_new

    def config(self) -> CellConfig:
        return CellConfig(
            "gru",
            self.input_size,
            self.hidden_size,
            {"bias": self.bias, "reset_after": self.reset_after},
        )

    def replicate(self, input_size: int) -> GRUCell:
        return GRUCell(input_size, self.hidden_size, self.bias, self.reset_after)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, reset_after={self.reset_after}"


register_cell(
    CellFamily(
        "gru",
        GRUCell,
        torch=TorchEquivalent(
            nn.GRU,
            from_module=lambda m: GRUCell(m.input_size, m.hidden_size, m.bias),
            unsupported=lambda cells: (
                "torch.nn.GRU has only reset_after=True"
                if any(not c.reset_after for c in cells)
                else None
            ),
        ),
    )
)
