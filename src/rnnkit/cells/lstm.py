"""Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

Gate order i, f, g, o as in PyTorch:

    i, f, g, o = σ(.), σ(.), tanh(.), σ(.)  of  W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)                    (then h_t = W_hr h_t when proj_size > 0)

Options: peepholes (Gers & Schmidhuber 2000: diagonal weights from c into i, f (c_{t-1}) and
o (c_t)), layer normalisation (Ba et al. 2016: separately on the input and recurrent gate
pre-activations and on c_t before its tanh), projection (Sak et al. 2014, as nn.LSTM's proj_size).

Work per step: O(B·4H·(D + P)) with P = proj_size or H; state: (h (B, P), c (B, H)).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import CellConfig
from .base import check_sizes, check_state_tensor, check_step_input, uniform_init
from .registry import CellFamily, TorchEquivalent, register_cell


class LSTMCell(nn.Module):
    """LSTM cell with PyTorch's parameter names (weight_ih, weight_hh, bias_ih, bias_hh, weight_hr).

    Args:
        input_size: D.
        hidden_size: H.
        bias: whether to use b_ih and b_hh.
        forget_bias: added to the forget-gate part of b_ih at initialisation (Jozefowicz et al.
            2015 recommend 1.0); 0.0 gives PyTorch's initialisation exactly.
        peepholes: add weight_ci, weight_cf, weight_co (H,).
        layer_norm: normalise gate pre-activations and the cell state (adds ln_ih, ln_hh, ln_c).
        proj_size: P > 0 projects h_t to P units with weight_hr (P, H), as nn.LSTM.
        chrono: T_max >= 2 for the chrono initialisation (Tallec & Ollivier 2018): forget-gate
            biases b_f = log(u), u ~ U(1, T_max - 1), input-gate biases -b_f (set in b_ih;
            b_hh's parts for those gates are zeroed), so units start with memory time scales
            spread up to the longest dependency expected; it replaces forget_bias. 0: off.

    Example:
        >>> cell = LSTMCell(3, 8, proj_size=4)
        >>> h, c = cell.init_state(2)
        >>> y, (h, c) = cell(torch.randn(2, 3), (h, c))   # y, h: (2, 4); c: (2, 8)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        forget_bias: float = 1.0,
        peepholes: bool = False,
        layer_norm: bool = False,
        proj_size: int = 0,
        chrono: int = 0,
    ):
        super().__init__()
        check_sizes("LSTMCell", input_size=input_size, hidden_size=hidden_size)
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(f"LSTMCell: proj_size must be an integer >= 0, got {proj_size!r}")
        if proj_size >= hidden_size:
            raise ValueError(
                f"LSTMCell: proj_size must be smaller than hidden_size ({hidden_size}), "
                f"got {proj_size}"
            )
        if isinstance(chrono, bool) or not isinstance(chrono, int) or chrono < 0 or chrono == 1:
            raise ValueError(f"LSTMCell: chrono must be 0 (off) or an integer >= 2, got {chrono!r}")
        if chrono and not bias:
            raise ValueError("LSTMCell: chrono initialisation sets biases; it needs bias=True")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.chrono = chrono
        self.proj_size = proj_size
        self.output_size = proj_size or hidden_size
        self.bias, self.forget_bias = bias, forget_bias
        self.peepholes, self.layer_norm = peepholes, layer_norm
        H, P = hidden_size, self.output_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, P))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * H))
            self.bias_hh = nn.Parameter(torch.empty(4 * H))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        if proj_size:
            self.weight_hr = nn.Parameter(torch.empty(P, H))
        if peepholes:
            self.weight_ci = nn.Parameter(torch.empty(H))
            self.weight_cf = nn.Parameter(torch.empty(H))
            self.weight_co = nn.Parameter(torch.empty(H))
        if layer_norm:
            self.ln_ih = nn.LayerNorm(4 * H)
            self.ln_hh = nn.LayerNorm(4 * H)
            self.ln_c = nn.LayerNorm(H)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init(self, self.hidden_size)
        H = self.hidden_size
        with torch.no_grad():
            if self.chrono:
                b_f = torch.empty(H).uniform_(1.0, max(1.0, self.chrono - 1.0)).log_()
                self.bias_ih[H : 2 * H] = b_f
                self.bias_ih[:H] = -b_f
                self.bias_hh[: 2 * H] = 0.0
            elif self.bias and self.forget_bias:
                self.bias_ih[H : 2 * H] += self.forget_bias
            if self.layer_norm:
                for ln in (self.ln_ih, self.ln_hh, self.ln_c):
                    ln.reset_parameters()

    def init_state(self, batch: int, device=None, dtype=None) -> tuple[Tensor, Tensor]:
        h = torch.zeros(batch, self.output_size, device=device, dtype=dtype)
        c = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)
        return h, c

    def forward(self, x_t: Tensor, state: tuple[Tensor, Tensor], hmask: Tensor | None = None):
        check_step_input(self, x_t)
        if not isinstance(state, tuple | list) or len(state) != 2:
            raise ValueError("LSTMCell: state must be a tuple (h, c)")
        h, c = state
        B = x_t.shape[0]
        check_state_tensor(self, "h", h, B, self.output_size)
        check_state_tensor(self, "c", c, B, self.hidden_size)
        h_in = h if hmask is None else h * hmask
        gx = nn.functional.linear(x_t, self.weight_ih, self.bias_ih)  # (B, 4H)
        gh = nn.functional.linear(h_in, self.weight_hh, self.bias_hh)  # (B, 4H)
        if self.layer_norm:
            gx, gh = self.ln_ih(gx), self.ln_hh(gh)
        i, f, g, o = (gx + gh).chunk(4, dim=1)
        if self.peepholes:
            i = i + self.weight_ci * c
            f = f + self.weight_cf * c
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if self.peepholes:
            o = o + self.weight_co * c_new
        c_out = self.ln_c(c_new) if self.layer_norm else c_new
        h_new = torch.sigmoid(o) * torch.tanh(c_out)
        if self.proj_size:
            h_new = nn.functional.linear(h_new, self.weight_hr)
        return h_new, (h_new, c_new)

    def config(self) -> CellConfig:
        return CellConfig(
            "lstm",
            self.input_size,
            self.hidden_size,
            {
                "bias": self.bias,
                "forget_bias": self.forget_bias,
                "peepholes": self.peepholes,
                "layer_norm": self.layer_norm,
                "proj_size": self.proj_size,
                "chrono": self.chrono,
            },
        )

    def replicate(self, input_size: int) -> LSTMCell:
        return LSTMCell(input_size, self.hidden_size, **self.config().options)

    def extra_repr(self) -> str:
        opts = [f"{self.input_size}, {self.hidden_size}"]
        for name in ("peepholes", "layer_norm"):
            if getattr(self, name):
                opts.append(f"{name}=True")
        if self.proj_size:
            opts.append(f"proj_size={self.proj_size}")
        if self.chrono:
            opts.append(f"chrono={self.chrono}")
        return ", ".join(opts)


register_cell(
    CellFamily(
        "lstm",
        LSTMCell,
        torch=TorchEquivalent(
            nn.LSTM,
            # forget_bias 0: the weights are copied in whole, PyTorch's layout has no offset
            from_module=lambda m: LSTMCell(
                m.input_size, m.hidden_size, m.bias, 0.0, proj_size=m.proj_size
            ),
            options=lambda cell: {"proj_size": cell.proj_size},
            unsupported=lambda cells: (
                "torch.nn.LSTM has no peepholes or layer norm"
                if any(c.peepholes or c.layer_norm for c in cells)
                else None
            ),
        ),
        # no prefer_for_inference: since session 6 the fused kernel is at least oneDNN's speed
        # for inference too (benchmarks/README.md, "Eight rnnkit bench runs after session 6's
        # merge": 1.06-1.11x at the bench's three sizes, 2 threads)
    )
)
