"""`Recurrent.step` at the speed of the native kernels, and the streamer's Python fallback.

`StepPlan` is the cached fast path of `Recurrent.step` for a unidirectional stack of one
kernel family (Elman, GRU or base LSTM, equal hidden sizes): a native plan
(`kernels.step.step_plan`, csrc/step.cpp) holding the layer's parameters and transposed copies
of its weights, behind the layer's state-in / state-out contract. One native call a step checks
x_t, the state and the weights' (data pointer, version) stamp, steps every layer and returns
fresh tensors (a returned state is never overwritten by a later step):

- without a gradient (torch.no_grad(), or nothing requiring grad: a frozen model) the
  kernels run directly;
- with one (grad enabled and x_t, the state or a weight requiring grad) each layer is one
  autograd node in C++ (rnnkit::*_step_fwd, saving its gates; backward rnnkit::*_step_bwd:
  dx, dh, dc and the weight gradients of that step), so a step with autograd costs about the
  kernel plus one node. Session 3's kernel-forward / recompute-backward autograd.Function was
  slower than torch's cells forward + backward (benchmarks/README.md, "Recurrent.step");
- a weight changed (an optimizer step, `load_state_dict`) rebuilds the plan; anything else
  unusual (another batch size or dtype, a tensor subclass, tracing, torch.compile, torch.func)
  returns None and the layer's general path checks and explains.

`CellStreamer` is what `Recurrent.streamer()` returns when the kernels cannot run the layer:
the same step / state / reset interface, stepping the layer through `Recurrent.step`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..cells import family_of
from .state import stack_states, unstack_state

_is_compiling = torch.compiler.is_compiling
_transforms = torch._C._functorch.peek_interpreter_stack


def plan_unsupported(layer, x_t: Tensor) -> str | None:
    """Why `StepPlan` cannot step `layer` on x_t, or None if it can."""
    cells = layer.cells
    if layer.impl not in ("auto", "fused"):
        return f"impl={layer.impl!r}"
    why = layer.impl_unsupported("fused", x_t)
    if why:
        return why
    if layer.bidirectional:
        return "a bidirectional layer"
    if layer.training and layer.dropout > 0:
        return "dropout between layers in training mode"
    first = cells[0]
    if any(type(c) is not type(first) or c.hidden_size != first.hidden_size for c in cells):
        return "the layers differ in cell type or size"
    return None


class PlanCache(dict):
    """The layer's plans by (batch, dtype): dropped by copy and pickle (a native plan holds the
    original's parameters and cannot be pickled), rebuilt on the next step."""

    def __init__(self):
        super().__init__()
        self.current: StepPlan | None = None  # the last plan used: tried first by `step`

    def __deepcopy__(self, memo):
        return PlanCache()

    def __reduce__(self):
        return PlanCache, ()


class StepPlan:
    """One layer's fast `step` at one batch size and dtype (see the module docstring)."""

    impl = "fused"

    def __init__(self, layer, batch: int, dtype: torch.dtype):
        # the layer's mode and impl setting the plan was made for: a change takes another
        self.layer_ref, self.training, self.asked = layer, layer.training, layer.impl
        self.batch, self.dtype = batch, dtype
        self._build()

    def _build(self) -> None:
        from ..kernels.step import step_plan

        layer = self.layer_ref
        impls = layer.impls("fused")
        specs = [impl.stream_layer(cell) for cell, impl in zip(layer.cells, impls, strict=True)]
        self.native, self._run = step_plan(specs, self.batch)

    def __call__(self, x_t: Tensor, state: Any):
        """(y_t, state) as `Recurrent.step` returns them, or None: not this plan's case
        (the caller then takes the general path, which checks and explains)."""
        if _is_compiling() or _transforms() is not None:
            return None
        out = self._run(self.native, x_t, state)
        if out is NotImplemented:  # a weight changed (an optimizer step, load_state_dict)
            self._build()
            out = self._run(self.native, x_t, state)
        return out


def torch_cell_steps(layer) -> tuple | None:
    """Per-cell step functions through torch's own cell ops (torch.rnn_tanh_cell, gru_cell,
    lstm_cell: what torch.nn's RNNCell/GRUCell/LSTMCell call, autograd in C++), for a layer
    torch.nn can run (the caller checks); None where no cell op has the configuration."""
    first = layer.cells[0]
    kind = family_of(first).name
    if kind == "elman":
        op = torch.rnn_tanh_cell if first.activation == "tanh" else torch.rnn_relu_cell
    elif kind == "gru":
        op = torch.gru_cell  # reset_after=True: torch.nn runs no other form
    elif kind == "lstm" and not first.proj_size:
        return tuple(_lstm_step for _ in layer.cells)
    else:
        return None

    def step(cell, x_t: Tensor, h: Tensor):
        p = cell._parameters
        h = op(x_t, h, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
        return h, h

    return tuple(step for _ in layer.cells)


def _lstm_step(cell, x_t: Tensor, state: tuple[Tensor, Tensor]):
    p = cell._parameters
    h, c = torch.lstm_cell(x_t, state, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
    return h, (h, c)


class CellStreamer:
    """`Recurrent.streamer()` when the native kernels cannot run the layer: the interface of
    `kernels.KernelStreamer` (step, state, reset, batch), stepping through `Recurrent.step`.

    Unlike the kernels' streamer it reads the layer's live weights (no snapshot); `step`
    returns a fresh tensor. `impl_used` says which path stepped ("torch": torch's cell ops,
    "reference": the cells).
    """

    def __init__(self, layer, batch: int, why: str):
        if batch < 1:
            raise ValueError(f"Recurrent.streamer: batch must be >= 1, got {batch}")
        self.layer, self.batch, self.why = layer, batch, why
        self._state: Any = None
        self.impl_used: str | None = None

    def step(self, x_t: Tensor) -> Tensor:
        """x_t (B, D) -> the top layer's output (B, O)."""
        if x_t.dim() != 2 or x_t.shape[0] != self.batch:
            raise ValueError(
                f"Recurrent.streamer: x_t must have shape ({self.batch}, "
                f"{self.layer.input_size}), got {tuple(x_t.shape)}"
            )
        with torch.no_grad():
            y, self._state = self.layer.step(x_t, self._state)
        self.impl_used = self.layer.impl_used
        return y

    @property
    def state(self) -> list:
        """Per-layer states, as KernelStreamer.state gives them."""
        templates = [c.init_state(self.batch) for c in self.layer.cells]
        if self._state is None:
            return templates
        return unstack_state(self._state, templates, "Recurrent.streamer")

    def reset(self, state: list | None = None) -> None:
        """Zero the state, or start from `state` (a list as `self.state` gives)."""
        if state is not None:
            templates = [c.init_state(self.batch) for c in self.layer.cells]
            unstack_state(list(state), templates, "Recurrent.streamer.reset")
            state = stack_states(list(state))
        self._state = state
