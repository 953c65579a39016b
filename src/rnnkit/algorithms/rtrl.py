"""Exact real-time recurrent learning (Williams & Zipser 1989).

RTRL carries the influence matrix M_t = ds_t/dθ forward in time, next to the state:

    s_t = F(θ, s_{t-1}, x_t)
    M_t = D_t M_{t-1} + I_t,     D_t = ∂F/∂s_{t-1} (S × S),  I_t = ∂F/∂θ (S × P)
    dL_t/dθ = (dL_t/ds_t) M_t

so the gradient of a loss at step t is available at step t, with no unrolling and no memory
of the past beyond M_t. `RecurrentStep` is the recurrent core as a pure per-sample function,
from which the per-step Jacobians come (torch.func); RTRL, UORO and SnAp all use it.

Shapes: B batch, D input, S state (all state tensors concatenated: H for Elman/GRU, H + H for
LSTM's (h, c)), P recurrent parameters (all of the core's parameters, flattened).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap


class RecurrentStep:
    """The recurrent core as a pure function of one sample: s_t = F(θ, s_{t-1}, x_t).

    Args:
        core: a cell (ElmanCell, GRUCell, LSTMCell, JordanCell or any cell whose output y_t is
            the first tensor of its state), a unidirectional `Recurrent` layer with no
            dropout, or a list of cells (a stack, bottom first). A stack of L layers is
            treated as one cell whose state is all L layers' states and whose parameters are
            all L layers' parameters, which keeps RTRL exact.
        analytic: use the closed-form Jacobians of a single ElmanCell (named activation);
            False (or any other core) takes them from torch.func (jacrev, jvp, vjp + vmap).

    Attributes:
        params: the core's parameters, in `named_parameters` order; P = their total size.
        S: the flat state size; O: the output size (the top cell's y_t).
    """

    def __init__(self, core: nn.Module, analytic: bool = True):
        from ..layers import Recurrent

        if isinstance(core, Recurrent):
            if core.bidirectional:
                raise ValueError("RTRL needs a causal core: the Recurrent layer is bidirectional")
            if core.dropout > 0 or core.recurrent_dropout > 0:
                raise ValueError(
                    "RTRL drives the cells step by step and applies no dropout: build the "
                    "Recurrent layer with dropout=0 and recurrent_dropout=0"
                )
            cells = list(core.cells)
        elif isinstance(core, list | tuple):
            cells = list(core)  # a stack given as its cells, bottom first (no dropout)
        elif hasattr(core, "init_state") and hasattr(core, "input_size"):
            cells = [core]
        else:
            raise TypeError(f"RTRL: expected a cell or a Recurrent layer, got {type(core)}")
        self.core, self.cells = core, cells
        self.input_size = cells[0].input_size
        self.names: list[tuple[int, str]] = []
        self.params: list[nn.Parameter] = []
        for k, cell in enumerate(cells):
            for name, p in cell.named_parameters():
                self.names.append((k, name))
                self.params.append(p)
        self.sizes = [p.numel() for p in self.params]
        self.P = sum(self.sizes)
        p0 = self.params[0]
        # Leaf widths of every cell's state, in order; the flat state is their concatenation.
        self.widths = [
            [t.shape[1] for t in _leaves(c.init_state(1, p0.device, p0.dtype))] for c in cells
        ]
        self._tensor_state = [
            isinstance(c.init_state(1, p0.device, p0.dtype), Tensor) for c in cells
        ]
        self.S = sum(sum(w) for w in self.widths)
        top = sum(sum(w) for w in self.widths[:-1])
        self.O = cells[-1].output_size
        self.out_slice = slice(top, top + self.widths[-1][0])
        self._check_output_is_state()
        # Elman cells have their Jacobians in closed form (much cheaper than torch.func).
        self.analytic = analytic and self._analytic_ok()

    def _check_output_is_state(self) -> None:
        """y_t must be the top cell's first state tensor, so dL/dy_t is a gradient on s_t."""
        cell, p0 = self.cells[-1], self.params[0]
        x = torch.randn(2, cell.input_size, device=p0.device, dtype=p0.dtype)
        with torch.no_grad():
            y, state = cell(x, cell.init_state(2, p0.device, p0.dtype))
        if not torch.equal(y, _leaves(state)[0]):
            raise ValueError(
                f"RTRL: {type(cell).__name__}'s output is not its first state tensor; "
                "online algorithms need y_t to be part of the state"
            )

    def unit_matrix(self) -> Tensor:
        """(S, S) bool: rows of the same unit — entry i of each equal-width state tensor of one
        cell (an LSTM's h_i and c_i); every other row is a unit of its own."""
        U = torch.eye(self.S, dtype=torch.bool)
        start = 0
        for widths in self.widths:
            if len(widths) > 1 and len(set(widths)) == 1:
                w = widths[0]
                idx = start + torch.arange(w)
                for a in range(len(widths)):
                    for b in range(len(widths)):
                        U[idx + a * w, idx + b * w] = True
            start += sum(widths)
        return U

    # ---- flat states ----------------------------------------------------------------------

    def init_state(self, batch: int, device=None, dtype=None) -> Tensor:
        """The cells' initial states, flattened: (B, S)."""
        return self.flatten([c.init_state(batch, device, dtype) for c in self.cells])

    def flatten(self, states: list[Any]) -> Tensor:
        """Per-cell states -> (B, S)."""
        return torch.cat([t for s in states for t in _leaves(s)], dim=1)

    def unflatten(self, flat: Tensor) -> list[Any]:
        """(B, S) -> per-cell states (a Tensor or a tuple, as each cell takes it)."""
        out, i = [], 0
        for widths, is_tensor in zip(self.widths, self._tensor_state, strict=True):
            parts = []
            for w in widths:
                parts.append(flat[:, i : i + w])
                i += w
            out.append(parts[0] if is_tensor else tuple(parts))
        return out

    # ---- the step as a function -----------------------------------------------------------

    def batched(self, params: tuple[Tensor, ...], s: Tensor, x: Tensor) -> Tensor:
        """F on a batch: params (as `self.params`), s (B, S), x (B, D) -> s_t (B, S)."""
        per_cell: list[dict[str, Tensor]] = [{} for _ in self.cells]
        for (k, name), p in zip(self.names, params, strict=True):
            per_cell[k][name] = p
        states, inp, new = self.unflatten(s), x, []
        for k, cell in enumerate(self.cells):
            inp, st = functional_call(cell, per_cell[k], (inp, states[k]))
            new.append(st)
        return self.flatten(new)

    def single(self, params: tuple[Tensor, ...], s: Tensor, x: Tensor) -> Tensor:
        """F on one sample: s (S,), x (D,) -> s_t (S,). Batch samples never interact."""
        return self.batched(params, s[None], x[None])[0]

    def detached_params(self) -> tuple[Tensor, ...]:
        return tuple(p.detach() for p in self.params)

    def jacobians(
        self, s: Tensor, x: Tensor, params: tuple[Tensor, ...] | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """s_t, D_t = ds_t/ds_{t-1}, I_t = ∂s_t/∂θ for every sample.

        Args:
            s: (B, S) s_{t-1}; x: (B, D) x_t.
            params: parameter values to evaluate at (default: the core's own).

        Returns:
            s_t (B, S), D_t (B, S, S), I_t (B, S, P). Work: S vector-Jacobian products of the
            step per sample, O(B·S·P); memory O(B·S·(S + P)).
        """
        if self.analytic and params is None:
            s_new, D = self.state_jacobian(s, x)
            eye = torch.eye(self.S, dtype=s.dtype, device=s.device).expand(s.shape[0], -1, -1)
            return s_new, D, self.param_vjp(s, x, eye)

        def f(params, s1, x1):
            out = self.single(params, s1, x1)
            return out, out

        jac = vmap(jacrev(f, argnums=(0, 1), has_aux=True), in_dims=(None, 0, 0))
        params = self.detached_params() if params is None else params
        (j_params, j_state), s_new = jac(params, s, x)
        B = s.shape[0]
        I = torch.cat([j.reshape(B, self.S, -1) for j in j_params], dim=2)  # (B, S, P)
        return s_new, j_state, I

    def state_jacobian(self, s: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """s_t (B, S) and D_t = ds_t/ds_{t-1} (B, S, S)."""
        if self.analytic:
            s_new, fprime = self._elman(s, x)
            return s_new, fprime[:, :, None] * self.cells[0].weight_hh.detach()[None]
        params = self.detached_params()

        def f(s1, x1):
            out = self.single(params, s1, x1)
            return out, out

        D, s_new = vmap(jacrev(f, has_aux=True))(s, x)
        return s_new, D

    def state_jvp(self, s: Tensor, x: Tensor, tangent: Tensor) -> tuple[Tensor, Tensor]:
        """s_t (B, S) and D_t·tangent (B, S) for a tangent (B, S): one forward-mode product."""
        if self.analytic:
            s_new, fprime = self._elman(s, x)
            return s_new, fprime * (tangent @ self.cells[0].weight_hh.detach().T)
        params = self.detached_params()
        # Batch samples are independent, so the JVP of the batched step is per sample.
        return jvp(lambda s_: self.batched(params, s_, x), (s,), (tangent,))

    def param_vjp(self, s: Tensor, x: Tensor, cot: Tensor) -> Tensor:
        """Per-sample products cotᵀ ∂s_t/∂θ: cot (B, S) -> (B, P), or (B, C, S) -> (B, C, P).

        Parameters are shared across the batch, so per-sample products need vmap over B.
        """
        squeeze = cot.dim() == 2
        cot3 = cot[:, None] if squeeze else cot  # (B, C, S)
        if self.analytic:
            out = self._elman_param_vjp(s, x, cot3)
        else:
            params = self.detached_params()

            def one(s1, x1, c1):
                _, pullback = vjp(lambda *p: self.single(p, s1, x1), *params)
                grads = vmap(pullback)(c1)  # per parameter (C, *shape)
                return torch.cat([g.reshape(g.shape[0], -1) for g in grads], dim=1)

            out = vmap(one)(s, x, cot3)
        return out[:, 0] if squeeze else out

    # ---- the closed form for Elman cells --------------------------------------------------

    def _analytic_ok(self) -> bool:
        from ..cells import ElmanCell

        cell = self.cells[0]
        return (
            len(self.cells) == 1
            and type(cell) is ElmanCell
            and cell.activation in ("tanh", "sigmoid", "relu", "identity")
        )

    def _elman(self, s: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """h_t (B, H) and f'(a_t) (B, H) for an Elman cell, from h_t alone where possible."""
        cell = self.cells[0]
        with torch.no_grad():
            h = cell(x, s)[1]
            act = cell.activation
            if act == "tanh":
                fprime = 1 - h * h
            elif act == "sigmoid":
                fprime = h * (1 - h)
            elif act == "relu":
                fprime = (h > 0).to(h.dtype)  # relu'(0) = 0, as autograd has it
            else:
                fprime = torch.ones_like(h)
        return h, fprime

    def _elman_param_vjp(self, s: Tensor, x: Tensor, cot: Tensor) -> Tensor:
        """cot (B, C, H) -> (B, C, P): a = W_ih x + b_ih + W_hh h + b_hh, h_t = f(a)."""
        _, fprime = self._elman(s, x)
        g = cot * fprime[:, None, :]  # (B, C, H): dL/da per product
        B, C, _ = g.shape
        parts = {
            "weight_ih": g[..., :, None] * x[:, None, None, :],  # (B, C, H, D)
            "weight_hh": g[..., :, None] * s[:, None, None, :],  # (B, C, H, H)
            "bias_ih": g,
            "bias_hh": g,
        }
        return torch.cat([parts[name].reshape(B, C, -1) for _, name in self.names], dim=2)

    def add_to_grads(self, flat_grad: Tensor) -> None:
        """Accumulate a flat gradient (P,) into each parameter's .grad, as backward() would."""
        for p, g in zip(self.params, flat_grad.split(self.sizes), strict=True):
            g = g.view_as(p).to(p.dtype)
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.add_(g)


class RTRL:
    """Exact RTRL: the full influence matrix M_t = ds_t/dθ, (B, S, P), carried forward.

    Cost per step: memory B·S·P for M_t (Elman: S = H, P = H² + HD + 2H, so O(H³) per sample);
    work O(B·S²·P) for M_t = D_t M_{t-1} + I_t — O(H⁴) for H units — plus O(B·S·P) to form the
    Jacobians. Gradients equal BPTT's exactly while the parameters are held fixed; online, with
    updates every step, M_t mixes Jacobians of past parameter values (the usual RTRL
    approximation, which vanishes as the learning rate does).

    Covered: ElmanCell (every activation and init), JordanCell, GRUCell (reset_after True and
    False), LSTMCell (every option: peepholes, layer_norm, proj_size — the Jacobians come from
    torch.func, so any cell whose y_t is its first state tensor works), and unidirectional
    stacks of them (one core whose state is every layer's state).

    Jacobians: closed form for a single ElmanCell (`analytic=True`, the default), torch.func
    otherwise.

    Use: `alg.reset(B)`, then per step `y = alg.step(x_t)`; compute a loss from y and call
    `alg.backward(loss)`, which adds dL/dθ = Σ_b (dL/ds_t)_b M_t,b to each parameter's .grad.

    Example:
        >>> alg = RTRL(ElmanCell(3, 8))
        >>> alg.reset(4)
        >>> y = alg.step(torch.randn(4, 3))          # (4, 8)
        >>> alg.backward((y ** 2).sum())             # cell.weight_hh.grad is now set
    """

    name = "rtrl"

    def __init__(self, core: nn.Module, analytic: bool = True):
        self.fn = RecurrentStep(core, analytic)
        self.params = self.fn.params
        self.state: Tensor | None = None
        self.influence: Tensor | None = None
        self._leaf: Tensor | None = None

    def reset(self, batch: int, device=None, dtype=None) -> None:
        """Start new sequences: zero state and zero influence (s_0 does not depend on θ)."""
        p0 = self.params[0]
        device, dtype = device or p0.device, dtype or p0.dtype
        self.state = self.fn.init_state(batch, device, dtype)
        self.influence = torch.zeros(batch, self.fn.S, self.fn.P, device=device, dtype=dtype)
        self._leaf = None

    def step(self, x_t: Tensor) -> Tensor:
        """x_t (B, D) -> y_t (B, O), differentiable with respect to the state s_t only."""
        self._require_reset()
        with torch.no_grad():
            s_new, D, I = self.fn.jacobians(self.state, x_t)
            self.influence = torch.baddbmm(I, D, self.influence)  # (B, S, P)
        self.state = s_new
        return self._output(s_new)

    def _output(self, s_new: Tensor) -> Tensor:
        self._leaf = s_new.detach().requires_grad_(True)
        return self._leaf[:, self.fn.out_slice]

    def backward(self, loss: Tensor) -> None:
        """Backpropagate `loss` (a function of this step's y_t and of other modules, e.g. a
        readout) and add its gradient with respect to the core's parameters to their .grad."""
        loss.backward()
        g = self._take_state_grad()
        if g is not None:
            self.fn.add_to_grads(torch.einsum("bs,bsp->p", g, self.influence))

    def _take_state_grad(self) -> Tensor | None:
        g = None if self._leaf is None else self._leaf.grad
        if self._leaf is not None:
            self._leaf.grad = None
        return g

    def flush(self) -> None:
        """Nothing is pending: RTRL's gradients are complete at every step."""

    def carried_bytes(self) -> int:
        """Bytes this algorithm keeps between steps (state and influence)."""
        return _nbytes(self.state, self.influence)

    def state_tensors(self) -> list[Any]:
        """The current state, per cell, as the cells take it."""
        return self.fn.unflatten(self.state)

    def _require_reset(self) -> None:
        if self.state is None:
            raise RuntimeError(f"{type(self).__name__}: call reset(batch) before step()")


def _leaves(state: Any) -> tuple[Tensor, ...]:
    return (state,) if isinstance(state, Tensor) else tuple(state)


def _nbytes(*tensors: Tensor | None) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)
