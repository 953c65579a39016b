"""Layer states: the per-(layer, direction) cell states, stacked the way torch.nn does.

A cell's state is a Tensor (B, ·) or a tuple of Tensors. A layer with L layers and D
directions holds L·D cell states, ordered layer-major (index = layer·D + direction), and
presents them as torch.nn does: a Tensor (L·D, B, ·), or a tuple of such Tensors. When the
cells' states differ in shape (a list of cells of different sizes), it is a plain list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def tree_map(fn: Callable[..., Tensor], *states: Any) -> Any:
    """Apply fn leaf-wise over states of the same structure (Tensor or tuple of Tensors)."""
    first = states[0]
    if isinstance(first, Tensor):
        return fn(*states)
    return tuple(fn(*leaves) for leaves in zip(*states, strict=True))


def leaves(state: Any) -> tuple[Tensor, ...]:
    return (state,) if isinstance(state, Tensor) else tuple(state)


def stack_states(states: list[Any]) -> Any:
    """L·D cell states -> torch.nn layout, or the list itself when shapes differ."""
    # compared with ==, not hashed: under torch.jit.trace sizes are tensors, hashed by identity
    shapes = [tuple(t.shape for t in leaves(s)) for s in states]
    if any(s != shapes[0] for s in shapes[1:]):
        return list(states)
    return tree_map(lambda *ts: torch.stack(ts, 0), *states)


def unstack_state(state: Any, templates: list[Any], owner: str) -> list[Any]:
    """The inverse of `stack_states`, checking shapes against `templates` (one per cell)."""
    n = len(templates)
    if isinstance(state, list):
        if len(state) != n:
            raise ValueError(f"{owner}: expected a list of {n} cell states, got {len(state)}")
        out = list(state)
    else:
        parts = leaves(state) if isinstance(state, tuple | Tensor) else None
        if parts is None:
            raise TypeError(f"{owner}: state must be a Tensor, a tuple of Tensors or a list")
        tmpl_leaves = leaves(templates[0])
        if len(parts) != len(tmpl_leaves):
            raise ValueError(
                f"{owner}: expected a state of {len(tmpl_leaves)} tensor(s), got {len(parts)}"
            )
        for p, t in zip(parts, tmpl_leaves, strict=True):
            want = (n, *t.shape)
            if not isinstance(p, Tensor) or tuple(p.shape) != want:
                got = tuple(p.shape) if isinstance(p, Tensor) else type(p).__name__
                raise ValueError(f"{owner}: expected state of shape {want}, got {got}")
        if isinstance(state, Tensor):
            out = list(state.unbind(0))
        else:
            out = [tuple(p[i] for p in parts) for i in range(n)]
    for i, (s, t) in enumerate(zip(out, templates, strict=True)):
        got = tuple(tuple(x.shape) for x in leaves(s))
        want = tuple(tuple(x.shape) for x in leaves(t))
        if got != want:
            raise ValueError(f"{owner}: state {i} should have shapes {want}, got {got}")
    return out
