"""Unbiased online recurrent optimisation (UORO; Tallec & Ollivier 2017).

UORO replaces RTRL's influence matrix M_t = ds_t/dθ (S × P) by a random rank-one estimate
s̃_t θ̃_tᵀ with E[s̃_t θ̃_tᵀ] = M_t. With ν a vector of independent random signs,

    M_t = D_t M_{t-1} + I_t ≈ (ρ0 D_t s̃_{t-1} + ρ1 ν)(θ̃_{t-1}/ρ0 + νᵀ I_t/ρ1)ᵀ

is unbiased because E[ν νᵀ] = Id and ν has mean zero (the cross terms vanish in expectation).
ρ0 and ρ1 are the paper's variance-reducing scalings: they balance the norms of the two
factors in each product, which minimises the variance of the estimate among all scalings:

    ρ0 = sqrt(‖θ̃_{t-1}‖ / ‖D_t s̃_{t-1}‖),   ρ1 = sqrt(‖νᵀ I_t‖ / ‖ν‖)

Only D_t s̃ (a Jacobian-vector product) and νᵀ I_t (a vector-Jacobian product) are needed,
never D_t or I_t themselves, so a step costs a small constant times the forward step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .rtrl import RecurrentStep, _nbytes


class UORO:
    """UORO: a rank-one, unbiased estimate of the influence matrix, one per sequence.

    Cost per step: memory B·(S + P) for (s̃, θ̃) — the same order as the parameters, and
    independent of the sequence length; work O(B·P): one forward step, one JVP and one VJP of
    the step (about 3× the cost of a forward step).

    The gradient estimate at step t is g_t = Σ_b ((dL_t/ds_t)_b · s̃_t,b) θ̃_t,b; with the
    parameters held fixed its expectation over the random signs is the exact (BPTT/RTRL)
    gradient. Covers every core `RTRL` covers.

    Args:
        core: a cell or a unidirectional `Recurrent` layer (see `RecurrentStep`).
        eps: keeps ρ0 and ρ1 finite when a factor is zero (at t = 1, θ̃_0 = 0).
        generator: a torch.Generator for the random signs (reproducible runs).
        analytic: closed-form products for a single ElmanCell (else torch.func).
        rescale: use the ρ0, ρ1 scalings (False: ρ0 = ρ1 = 1, for comparison).

    Example:
        >>> alg = UORO(GRUCell(3, 8), generator=torch.Generator().manual_seed(0))
        >>> alg.reset(4)
        >>> y = alg.step(torch.randn(4, 3))
        >>> alg.backward((y ** 2).sum())
    """

    name = "uoro"

    def __init__(
        self,
        core: nn.Module,
        eps: float = 1e-7,
        generator: torch.Generator | None = None,
        analytic: bool = True,
        rescale: bool = True,
    ):
        self.fn = RecurrentStep(core, analytic)
        self.params = self.fn.params
        self.eps, self.generator, self.rescale = eps, generator, rescale
        self.state: Tensor | None = None
        self.s_tilde: Tensor | None = None
        self.theta_tilde: Tensor | None = None
        self._leaf: Tensor | None = None

    def reset(self, batch: int, device=None, dtype=None) -> None:
        """Start new sequences: zero state and a zero estimate (s̃_0 = 0, θ̃_0 = 0)."""
        p0 = self.params[0]
        device, dtype = device or p0.device, dtype or p0.dtype
        self.state = self.fn.init_state(batch, device, dtype)
        self.s_tilde = torch.zeros(batch, self.fn.S, device=device, dtype=dtype)
        self.theta_tilde = torch.zeros(batch, self.fn.P, device=device, dtype=dtype)
        self._leaf = None

    def step(self, x_t: Tensor) -> Tensor:
        """x_t (B, D) -> y_t (B, O), differentiable with respect to the state s_t only."""
        if self.state is None:
            raise RuntimeError("UORO: call reset(batch) before step()")
        s = self.state
        nu = self._signs(s)  # (B, S)
        with torch.no_grad():
            s_new, d_s = self.fn.state_jvp(s, x_t, self.s_tilde)  # D_t s̃ (B, S)
            nu_i = self.fn.param_vjp(s, x_t, nu)  # νᵀ I_t (B, P)
            eps = self.eps
            if self.rescale:
                rho0 = (self.theta_tilde.norm(dim=1) / (d_s.norm(dim=1) + eps)).sqrt() + eps
                rho1 = (nu_i.norm(dim=1) / (nu.norm(dim=1) + eps)).sqrt() + eps
            else:  # plain rank-one estimate: still unbiased, but with a larger variance
                rho0 = rho1 = torch.ones(s.shape[0], dtype=s.dtype, device=s.device)
            self.s_tilde = rho0[:, None] * d_s + rho1[:, None] * nu
            self.theta_tilde = self.theta_tilde / rho0[:, None] + nu_i / rho1[:, None]
        self.state = s_new
        self._leaf = s_new.detach().requires_grad_(True)
        return self._leaf[:, self.fn.out_slice]

    def _signs(self, like: Tensor) -> Tensor:
        bits = torch.randint(0, 2, like.shape, generator=self.generator, device=like.device)
        return bits.to(like.dtype) * 2 - 1

    def backward(self, loss: Tensor) -> None:
        """Backpropagate `loss` and add the UORO gradient estimate to the parameters' .grad."""
        loss.backward()
        leaf = self._leaf
        g = None if leaf is None else leaf.grad
        if leaf is not None:
            leaf.grad = None
        if g is not None:
            coef = (g * self.s_tilde).sum(dim=1)  # (B,)
            self.fn.add_to_grads(coef @ self.theta_tilde)

    def flush(self) -> None:
        """Nothing is pending: the estimate is complete at every step."""

    def carried_bytes(self) -> int:
        return _nbytes(self.state, self.s_tilde, self.theta_tilde)

    def state_tensors(self):
        return self.fn.unflatten(self.state)
