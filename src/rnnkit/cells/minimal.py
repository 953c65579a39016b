"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): gates from x_t alone.

    minGRU:  z = σ(W_z x + b_z),  h̃ = g(W_h x + b_h),  h' = (1 - z) ⊙ h + z ⊙ h̃
    minLSTM: f = σ(W_f x + b_f),  i = σ(W_i x + b_i),  h̃ = g(W_h x + b_h),
             f' = f / (f + i),  i' = i / (f + i),       h' = f' ⊙ h + i' ⊙ h̃

with g(v) = v + 1/2 for v ≥ 0, σ(v) otherwise (continuous, positive: the paper's log-space
form, so h̃ > 0 and log h̃ exists). The state h (B, H) enters linearly and no gate reads it, so
a whole sequence is one linear recurrence h_t = a_t ⊙ h_{t-1} + b_t, computed by the
log-space parallel scan (rnnkit.cells.scan.log_scan; impl "scan", which `Recurrent` picks).

Diagonal recurrence: ∂h_t/∂h_{t-1} = diag(a_t), and unit j's parameters (row j of each
weight) reach h_t only through h_t[j]. The RTRL influence matrix ∂h_t/∂θ therefore has one
non-zero row per parameter: exact RTRL costs O(P) per step (as much as the forward pass)
instead of O(H²·P) for a dense cell.

Work per step: O(B·kH·D), k = 2 (minGRU) or 3 (minLSTM); state: h (B, H). Parameters: one
stacked `weight_ih` (kH, D) and `bias_ih` (kH,), gate order z, h (minGRU) or f, i, h (minLSTM).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.functional import linear, softplus

from ..config import CellConfig
from .base import check_sizes, check_state_tensor, check_step_input
from .registry import CellFamily, register_cell
from .scan import chunked_scan, finish, step_loop


def g(v: Tensor) -> Tensor:
    """The positive activation of the log-space form: v + 1/2 (v ≥ 0), σ(v) (v < 0)."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_g(v: Tensor) -> Tensor:
    """log g(v), computed without forming g: log(relu(v) + 1/2) or -softplus(-v)."""
    return torch.where(v >= 0, torch.log(torch.relu(v) + 0.5), -softplus(-v))


class _MinCell(nn.Module):
    """What minGRU and minLSTM share: the stacked input projection and the state checks."""

    kind = ""
    gates = 0  # blocks of H rows in `weight_ih`

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        check_sizes(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(self.gates * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default: U(±1/sqrt(D)) (there are no recurrent weights to scale by H)
        bound = 1.0 / math.sqrt(self.input_size)
        for p in self.parameters(recurse=False):
            nn.init.uniform_(p, -bound, bound)

    def init_state(self, batch: int, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def projections(self, x: Tensor) -> tuple[Tensor, ...]:
        """x (..., D) -> the `gates` pre-activations, each (..., H)."""
        return linear(x, self.weight_ih, self.bias_ih).chunk(self.gates, dim=-1)

    def coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (..., D) -> (log a, log b), each (..., H): h' = a ⊙ h + b."""
        raise NotImplementedError

    def forward(self, x_t: Tensor, state: Tensor, hmask: Tensor | None = None):
        check_step_input(self, x_t)
        check_state_tensor(self, "h", state, x_t.shape[0], self.hidden_size)
        if hmask is not None:
            raise ValueError(
                f"{type(self).__name__}: no recurrent weights, so recurrent_dropout does not "
                "apply (use dropout between layers)"
            )
        log_a, log_b = self.coefficients(x_t)
        h = torch.exp(log_a) * state + torch.exp(log_b)
        return h, h

    def config(self) -> CellConfig:
        return CellConfig(self.kind, self.input_size, self.hidden_size, {"bias": self.bias})

    def replicate(self, input_size: int) -> _MinCell:
        return type(self)(input_size, self.hidden_size, self.bias)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class MinGRUCell(_MinCell):
    """minGRU: a GRU whose update gate and candidate read x_t only (see the module docstring).

    Example:
        >>> cell = MinGRUCell(3, 8)
        >>> y, h = cell(torch.randn(2, 3), cell.init_state(2))
    """

    kind, gates = "mingru", 2

    def coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self.projections(x)
        # log z = -softplus(-k), log(1 - z) = -softplus(k): exact in the tails, unlike log σ
        return -softplus(k), -softplus(-k) + log_g(v)


class MinLSTMCell(_MinCell):
    """minLSTM: normalised forget and input gates from x_t only (see the module docstring).

    Example:
        >>> cell = MinLSTMCell(3, 8)
        >>> y, h = cell(torch.randn(2, 3), cell.init_state(2))
    """

    kind, gates = "minlstm", 3

    def coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f, i, v = self.projections(x)
        # log f' = log f - log(f + i) = -softplus(log i - log f), with log σ(u) = -softplus(-u)
        diff = softplus(-f) - softplus(-i)
        return -softplus(diff), -softplus(-diff) + log_g(v)


class LogScan:
    """impl "scan" of minGRU and minLSTM: all T steps by `log_scan` (in blocks: `chunked_scan`)."""

    traces_a_loop = True  # under torch.jit.trace: a loop over T (rnnkit.export reads this)

    def unsupported(self, cell: _MinCell, x: Tensor | None) -> str | None:
        return None

    def run(self, cell: _MinCell, x: Tensor, state: Tensor, lengths: Tensor | None, hmask=None):
        """x (B, T, D), h_0 (B, H) -> (h (B, T, H), zero past each length; h at each last step)."""
        log_a, log_b = cell.coefficients(x)  # (B, T, H) each
        if torch.jit.is_tracing():  # a loop the exporter keeps dynamic in T (see scan.py)
            return finish(step_loop(torch.exp(log_a), torch.exp(log_b), state), lengths)
        return finish(chunked_scan(log_a, log_b, state, log=True), lengths)


register_cell(CellFamily("mingru", MinGRUCell, impls={"scan": LogScan()}))
register_cell(CellFamily("minlstm", MinLSTMCell, impls={"scan": LogScan()}))
