"""The unfolded network: every hidden state h_t and every dL/dh_t of one sequence batch.

Unfolded over T steps, a recurrent layer is a T-layer feed-forward network with tied weights.
`unfold` runs it step by step (the reference loop), keeps each h_t as a node of the graph and
returns the total derivative dL/dh_t — the gradient that reaches step t from the loss at all
later steps. Its norm against t is the gradient-through-time profile: it shrinks backwards in
time when gradients vanish and grows when they explode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Unfolded:
    """What `unfold` returns.

    Attributes:
        outputs: (B, T, O) the layer's output.
        hidden: per layer (bottom first, forward direction), the states h_t (B, T, H').
        grads: per layer, dL/dh_t (B, T, H') — zero where h_t does not influence the loss.
        loss: the scalar loss.
    """

    outputs: Tensor
    hidden: list[Tensor]
    grads: list[Tensor]
    loss: Tensor

    def grad_norms(self, layer: int = -1) -> Tensor:
        """||dL/dh_t|| averaged over the batch, per step t: (T,)."""
        return self.grads[layer].norm(dim=-1).mean(dim=0)


def unfold(
    layer,
    x: Tensor,
    loss_fn: Callable[[Tensor], Tensor],
    state=None,
) -> Unfolded:
    """Run `layer` (a Recurrent layer, unidirectional) or a single cell over x, step by step.

    Args:
        layer: a `Recurrent` (unidirectional) or a cell.
        x: (B, T, D).
        loss_fn: maps the outputs (B, T, O) to a scalar loss.
        state: initial state (as the layer takes it), default zeros.

    Returns:
        Unfolded with every h_t and dL/dh_t. Parameter gradients are accumulated into .grad
        as a side effect, exactly as loss.backward() on the layer would.

    Example:
        >>> u = unfold(rnnkit.RNN(1, 16), torch.randn(8, 100, 1), lambda y: y[:, -1].sum())
        >>> u.grad_norms()   # (100,), small at early t when gradients vanish
    """
    from ..layers import Recurrent
    from ..layers.state import unstack_state

    if isinstance(layer, Recurrent):
        if layer.bidirectional:
            raise ValueError("unfold: the layer must be unidirectional")
        cells = layer.cells
    else:
        cells = [layer]
    if x.dim() != 3:
        raise ValueError(f"unfold: expected x of shape (B, T, D), got {tuple(x.shape)}")
    B, T, _ = x.shape
    templates = [c.init_state(B, x.device, x.dtype) for c in cells]
    if state is None:
        states = templates
    elif isinstance(layer, Recurrent):
        states = unstack_state(state, templates, "unfold")
    else:
        states = [state]
    hidden: list[list[Tensor]] = [[] for _ in cells]
    inp = x
    for k, cell in enumerate(cells):
        s = states[k]
        ys = []
        for t in range(T):
            y, s = cell(inp[:, t], s)
            h = s if isinstance(s, Tensor) else s[0]
            h.retain_grad()
            hidden[k].append(h)
            ys.append(y)
        inp = torch.stack(ys, dim=1)  # (B, T, O)
        states[k] = s
    loss = loss_fn(inp)
    loss.backward()
    hs = [torch.stack([h.detach() for h in hk], dim=1) for hk in hidden]
    grads = [
        torch.stack([h.grad if h.grad is not None else torch.zeros_like(h) for h in hk], dim=1)
        for hk in hidden
    ]
    return Unfolded(inp.detach(), hs, grads, loss.detach())
