"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks").

A complex diagonal linear recurrence with a real readout:

    λ = exp(-exp(ν) + i·exp(θ))                    (N,) complex, |λ| < 1 for every ν
    h' = λ ⊙ h + γ ⊙ (B x),   γ = exp(γ_log)       h (B, N) complex, B (N, D) complex
    y = f(Re(C h') + D x)                          C (H, N) complex, D (H, D) real

The exponential parameterisation keeps every eigenvalue inside the unit disc (stable) at any
parameter value; γ starts at sqrt(1 - |λ|²), so the state's scale does not grow as |λ| → 1;
λ starts uniform on the ring r_min ≤ |λ| ≤ r_max with phase in [0, max_phase]. The paper
follows each LRU with an MLP; here `activation` f (default tanh, "identity" for the bare LRU)
keeps a stack of LRU layers from collapsing into one linear map.

The state is (y, h_re, h_im): y_t (B, H) is kept as its first tensor so the online algorithms
(RTRL) see the output as part of the state (it does not feed back: h alone is the recurrence),
and h is split into real parts so every tensor is real. The step computes the complex
product by hand; a sequence runs as a complex parallel scan (impl "scan", which `Recurrent`
picks). Diagonal recurrence: each unit's λ_j, γ_j and row j of B reach h only through h_j,
so exact RTRL carries 2 (re, im) × its own parameters per unit, O(N·D) per step, not O(N²·P).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.functional import linear

from ..config import CellConfig
from .base import check_sizes, check_state_tensor, check_step_input, resolve_activation
from .registry import CellFamily, register_cell
from .scan import chunked_scan, complex_step_loop, finish


class LRUCell(nn.Module):
    """Linear Recurrent Unit cell.

    Args:
        input_size: D.
        hidden_size: H, the readout's size (the cell's output).
        state_size: N, complex state units (default: H).
        r_min, r_max: the ring |λ| is drawn from at init (0.9, 0.999 for long-range tasks).
        max_phase: the largest phase arg λ at init (radians; the paper uses π/10 for long
            sequences).
        activation: "tanh", "sigmoid", "relu" or "identity" on the readout.

    Example:
        >>> cell = LRUCell(3, 8, state_size=16, r_min=0.9, r_max=0.999)
        >>> y, (y_, h_re, h_im) = cell(torch.randn(2, 3), cell.init_state(2))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        state_size: int | None = None,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        activation: str = "tanh",
    ):
        super().__init__()
        N = hidden_size if state_size is None else state_size
        check_sizes("LRUCell", input_size=input_size, hidden_size=hidden_size, state_size=N)
        if not 0.0 <= r_min < r_max <= 1.0:
            raise ValueError(f"LRUCell: need 0 <= r_min < r_max <= 1, got {r_min}, {r_max}")
        if not isinstance(activation, str):
            raise ValueError("LRUCell: activation must be a name (it is saved in config.json)")
        self.act = resolve_activation(activation)
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.state_size, self.activation = N, activation
        self.r_min, self.r_max, self.max_phase = r_min, r_max, max_phase
        self.nu_log = nn.Parameter(torch.empty(N))
        self.theta_log = nn.Parameter(torch.empty(N))
        self.gamma_log = nn.Parameter(torch.empty(N))
        self.B_re = nn.Parameter(torch.empty(N, input_size))
        self.B_im = nn.Parameter(torch.empty(N, input_size))
        self.C_re = nn.Parameter(torch.empty(hidden_size, N))
        self.C_im = nn.Parameter(torch.empty(hidden_size, N))
        self.D = nn.Parameter(torch.empty(hidden_size, input_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's init: |λ|² uniform on [r_min², r_max²], phase uniform on [0, max_phase],
        γ = sqrt(1 - |λ|²), B ~ CN(0, 1/D), C ~ CN(0, 1/N), D ~ N(0, 1/D)."""
        N, D = self.state_size, self.input_size
        with torch.no_grad():
            u1, u2 = torch.rand(N), torch.rand(N)
            r2 = u1 * (self.r_max**2 - self.r_min**2) + self.r_min**2
            # |λ| = exp(-exp(ν)) = sqrt(r2); clamp keeps r_max = 1 finite
            self.nu_log.copy_(torch.log(-0.5 * torch.log(r2.clamp(1e-8, 1 - 1e-8))))
            self.theta_log.copy_(torch.log((self.max_phase * u2).clamp_min(1e-8)))
            modulus = torch.exp(-torch.exp(self.nu_log))
            self.gamma_log.copy_(0.5 * torch.log1p(-modulus.square()))
            for p, fan in ((self.B_re, 2 * D), (self.B_im, 2 * D), (self.C_re, 2 * N),
                           (self.C_im, 2 * N), (self.D, D)):
                nn.init.normal_(p, 0.0, 1.0 / math.sqrt(fan))

    def eigenvalues(self) -> tuple[Tensor, Tensor]:
        """λ's real and imaginary parts, each (N,)."""
        modulus, phase = torch.exp(-torch.exp(self.nu_log)), torch.exp(self.theta_log)
        return modulus * torch.cos(phase), modulus * torch.sin(phase)

    def drive(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """γ ⊙ (B x): x (..., D) -> real and imaginary parts, each (..., N)."""
        gamma = torch.exp(self.gamma_log)
        return gamma * linear(x, self.B_re), gamma * linear(x, self.B_im)

    def readout(self, x: Tensor, h_re: Tensor, h_im: Tensor) -> Tensor:
        """f(Re(C h) + D x): (..., D), (..., N) × 2 -> (..., H)."""
        return self.act(linear(h_re, self.C_re) - linear(h_im, self.C_im) + linear(x, self.D))

    def init_state(self, batch: int, device=None, dtype=None) -> tuple[Tensor, Tensor, Tensor]:
        N, H = self.state_size, self.hidden_size
        return (
            torch.zeros(batch, H, device=device, dtype=dtype),
            torch.zeros(batch, N, device=device, dtype=dtype),
            torch.zeros(batch, N, device=device, dtype=dtype),
        )

    def forward(self, x_t: Tensor, state: tuple[Tensor, Tensor, Tensor], hmask=None):
        check_step_input(self, x_t)
        B = x_t.shape[0]
        if not isinstance(state, tuple) or len(state) != 3:
            raise ValueError("LRUCell: expected state (y, h_re, h_im)")
        for what, t, size in zip(("y", "h_re", "h_im"), state,
                                 (self.hidden_size, self.state_size, self.state_size), strict=True):
            check_state_tensor(self, what, t, B, size)
        if hmask is not None:
            raise ValueError(
                "LRUCell: no recurrent weights, so recurrent_dropout does not apply "
                "(use dropout between layers)"
            )
        _, h_re, h_im = state
        lam_re, lam_im = self.eigenvalues()
        u_re, u_im = self.drive(x_t)
        h_re, h_im = lam_re * h_re - lam_im * h_im + u_re, lam_re * h_im + lam_im * h_re + u_im
        y = self.readout(x_t, h_re, h_im)
        return y, (y, h_re, h_im)

    def config(self) -> CellConfig:
        options = {
            "state_size": self.state_size,
            "r_min": self.r_min,
            "r_max": self.r_max,
            "max_phase": self.max_phase,
            "activation": self.activation,
        }
        return CellConfig("lru", self.input_size, self.hidden_size, options)

    def replicate(self, input_size: int) -> LRUCell:
        return LRUCell(input_size, self.hidden_size, **self.config().options)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, state_size={self.state_size}"


class ComplexScan:
    """impl "scan" of the LRU: h over all T steps by `linear_scan` on complex tensors (in blocks:
    `chunked_scan`)."""

    traces_a_loop = True  # under torch.jit.trace: a loop over T (rnnkit.export reads this)

    def unsupported(self, cell: LRUCell, x: Tensor | None) -> str | None:
        return None

    def run(self, cell: LRUCell, x: Tensor, state, lengths: Tensor | None, hmask=None):
        """x (B, T, D), state (y, h_re, h_im) -> (y (B, T, H), zero past each length; the
        state at each sequence's last step)."""
        _, h0_re, h0_im = state
        if torch.jit.is_tracing() or torch.compiler.is_exporting():
            # real pairs (ONNX has no complex type) in a loop: the TorchScript exporter keeps it
            # dynamic in T; torch.export holds the example's T anyway (Recurrent refuses more)
            h_re, h_im = complex_step_loop(*cell.eigenvalues(), *cell.drive(x), h0_re, h0_im)
        else:
            # torch has no complex bf16 and little complex fp16: a half-precision layer scans
            # in complex64 (more accurate over long T anyway) and returns its own dtype
            wide = torch.promote_types(x.dtype, torch.float32)

            def pair(re: Tensor, im: Tensor) -> Tensor:
                return torch.complex(re.to(wide), im.to(wide))

            lam = pair(*cell.eigenvalues())[None, None]  # (1, 1, N): time-invariant
            b = pair(*cell.drive(x))  # (B, T, N)
            h = chunked_scan(lam, b, pair(h0_re, h0_im), log=False)
            h_re, h_im = h.real.to(x.dtype), h.imag.to(x.dtype)
        y = cell.readout(x, h_re, h_im)
        y, y_last = finish(y, lengths)
        _, re_last = finish(h_re, lengths)
        _, im_last = finish(h_im, lengths)
        return y, (y_last, re_last, im_last)


register_cell(CellFamily("lru", LRUCell, impls={"scan": ComplexScan()}))
