"""Gradient flow through time: step Jacobians, their singular values, recurrent spectra.

The gradient that reaches step t from a loss at step T is a product of step Jacobians,

    dL/ds_t = dL/ds_T · J_T J_{T-1} ··· J_{t+1},    J_k = ds_k/ds_{k-1}  (S × S)

so it vanishes when the J_k's singular values stay below 1 and may explode when they exceed 1
(Bengio et al. 1994; Pascanu et al. 2013). For an Elman cell J_k = diag(f'(a_k)) W_hh, so the
spectral radius of W_hh bounds the growth for tanh and sigmoid (|f'| ≤ 1, resp. 1/4) and is
the growth rate of a linear or IRNN network. This module computes those quantities and a
verdict from them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import Tensor, nn


def _step_of(core: Any):
    """RecurrentStep for a cell, a unidirectional layer, or the forward cells of any layer."""
    from ..algorithms.rtrl import RecurrentStep
    from ..layers import Recurrent

    if isinstance(core, Recurrent):
        if core.bidirectional:
            # The forward direction of the first layer: a causal chain of its own.
            return RecurrentStep(core.layers[0][0], analytic=True)
        return RecurrentStep([layer[0] for layer in core.layers])
    return RecurrentStep(core)


@torch.no_grad()
def step_jacobians(core: Any, x: Tensor, state: Any = None) -> Tensor:
    """The step Jacobians J_t = ds_t/ds_{t-1} along the trajectory driven by x.

    Args:
        core: a cell, or a `Recurrent` layer (all layers of a unidirectional stack form one
            state; for a bidirectional layer, the forward direction of its first layer).
        x: (B, T, D) inputs of the core.
        state: initial flat state (B, S), default the cells' zero state.

    Returns:
        (B, T, S, S): J_t for t = 1..T, S = the flat state size (h for Elman/GRU, (h, c)
        for LSTM, every layer's state for a stack). Work: T·S vector-Jacobian products.
    """
    fn = _step_of(core)
    if x.dim() != 3:
        raise ValueError(f"step_jacobians: expected x of shape (B, T, D), got {tuple(x.shape)}")
    B, T, _ = x.shape
    s = fn.init_state(B, x.device, x.dtype) if state is None else state
    out = []
    for t in range(T):
        s, J = fn.state_jacobian(s, x[:, t])
        out.append(J)
    return torch.stack(out, dim=1)  # (B, T, S, S)


def jacobian_singular_values(core: Any, x: Tensor, state: Any = None) -> Tensor:
    """Singular values of every step Jacobian, largest first: (B, T, S)."""
    return torch.linalg.svdvals(step_jacobians(core, x, state))


def recurrent_blocks(module: nn.Module) -> dict[str, Tensor]:
    """Every `weight_hh` in `module` cut into its gate blocks: {"<name>[<gate>]": (H, ·)}.

    (G·H, H) -> G blocks (H, H): Elman has one block, GRU r, z, n, LSTM i, f, g, o.
    """
    out: dict[str, Tensor] = {}
    gates_of = {1: ("",), 3: ("r", "z", "n"), 4: ("i", "f", "g", "o")}
    for name, p in module.named_parameters():
        if name.split(".")[-1] != "weight_hh":
            continue
        W = p.detach().double().cpu()
        rows, cols = W.shape
        G = rows // cols if rows % cols == 0 else 1
        labels = gates_of.get(G, tuple(str(i) for i in range(G)))
        for g, block in enumerate(W.view(G, rows // G, cols)):
            out[f"{name}[{labels[g]}]" if labels[g] else name] = block
    return out


def spectral_radius(module: nn.Module) -> dict[str, float]:
    """max |eigenvalue| of each recurrent block of `module` (see `recurrent_blocks`).

    Non-square blocks (LSTM with proj_size, Jordan with O ≠ H) report their largest singular
    value instead.

    Returns:
        {"<parameter name>[<gate>]": radius}, e.g. {"layers.0.0.weight_hh[f]": 0.93}.
    """
    out = {}
    for key, block in recurrent_blocks(module).items():
        if block.shape[0] == block.shape[1]:
            out[key] = torch.linalg.eigvals(block).abs().max().item()
        else:
            out[key] = torch.linalg.svdvals(block)[0].item()
    return out


@dataclasses.dataclass(frozen=True)
class GradientFlow:
    """How the gradient of the last step's loss travels back through time.

    Attributes:
        norms: (T,) ||dL/dh_t|| averaged over the batch.
        gain: norms[0] / norms[-1]: > 1 the gradient grew going back T - 1 steps, < 1 it shrank.
        rate: the per-step factor exp(slope of log ||dL/dh_t|| against steps back in time)
            from a least-squares fit (1 = neutral, > 1 exploding, < 1 vanishing).
        max_singular: (T,) largest singular value of J_t, averaged over the batch (or None).
        verdict: "exploding", "vanishing", "non-finite" or "stable".
    """

    norms: Tensor
    gain: float
    rate: float
    max_singular: Tensor | None
    verdict: str

    def summary(self) -> dict[str, Any]:
        out = {"gain": self.gain, "rate_per_step": self.rate, "verdict": self.verdict}
        out["steps"] = int(self.norms.shape[0])
        if self.max_singular is not None:
            ms = self.max_singular
            out["max_singular_mean"] = float(ms.mean())
            out["fraction_steps_max_singular_above_1"] = float((ms > 1).float().mean())
        return out


def detect_gradient_problems(
    norms: Tensor,
    max_singular: Tensor | None = None,
    explode_gain: float = 1e3,
    vanish_gain: float = 1e-3,
) -> GradientFlow:
    """Classify a gradient-through-time profile.

    Args:
        norms: (T,) ||dL/dh_t|| for t = 1..T (the loss at step T).
        max_singular: optional (T,) largest singular value of each step Jacobian.
        explode_gain: the verdict is "exploding" when the gradient grows by more than this
            factor between step T and step 1 (or is non-finite anywhere).
        vanish_gain: "vanishing" when it shrinks below this factor.

    Returns:
        GradientFlow with gain, per-step rate and verdict.
    """
    norms = norms.detach().double().cpu()
    if not torch.isfinite(norms).all():
        return GradientFlow(norms, math.inf, math.inf, max_singular, "non-finite")
    T = norms.shape[0]
    last = norms[-1].item()
    gain = norms[0].item() / last if last > 0 else math.inf
    logs = norms.clamp_min(1e-300).log()
    back = torch.arange(T - 1, -1, -1, dtype=torch.float64)  # steps back from T
    rate = 1.0
    if T > 1:
        bc = back - back.mean()
        rate = math.exp(float((bc * (logs - logs.mean())).sum() / (bc * bc).sum()))
    if gain > explode_gain:
        verdict = "exploding"
    elif gain < vanish_gain:
        verdict = "vanishing"
    else:
        verdict = "stable"
    return GradientFlow(norms, gain, rate, max_singular, verdict)


class GradientSpikeDetector:
    """Online detection of exploding gradients during training: a spike or a non-finite norm.

    Call `observe(norm)` with the total gradient norm of each update; it returns True when the
    norm is non-finite or exceeds `factor` × the median of the last `window` norms (after
    `window` observations) — the sign that gradient clipping is needed (Pascanu et al. 2013).

    Example:
        >>> det = GradientSpikeDetector()
        >>> norm = torch.nn.utils.clip_grad_norm_(params, float("inf"))
        >>> if det.observe(float(norm)): print("exploding gradient at", det.count)
    """

    def __init__(self, factor: float = 10.0, window: int = 50):
        self.factor, self.window = factor, window
        self.history: list[float] = []
        self.count = 0
        self.spikes: list[int] = []

    def observe(self, norm: float) -> bool:
        self.count += 1
        spike = not math.isfinite(norm)
        if not spike and len(self.history) >= self.window:
            median = sorted(self.history)[len(self.history) // 2]
            spike = norm > self.factor * median
        if math.isfinite(norm):
            self.history = (self.history + [norm])[-self.window :]
        if spike:
            self.spikes.append(self.count)
        return spike
