"""`Recurrent.step` at the speed of the native kernels, and the streamer's Python fallback.

`StepPlan` is the cached fast path of `Recurrent.step` for a unidirectional stack of one
kernel family (Elman, GRU or base LSTM, equal hidden sizes): a `kernels.KernelStreamer` (one
native call for the whole stack, state in preallocated buffers) behind the layer's
state-in / state-out contract. What makes a call cheap (a few microseconds on top of the
kernel):

- validation happens when the plan is built; a call only compares x_t's shape and dtype and
  the weights' (data pointer, version) stamp, so an optimizer step or `load_state_dict`
  rebuilds the plan instead of serving stale weights;
- the state a call returns is remembered: passing it back (the streaming loop
  `y, state = layer.step(x, state)`) skips copying it into the kernel's buffers; any other
  state is copied in, and a state modified in place is noticed by its version counter;
- the new state is one fresh tensor per state tensor (a stack of the layers' buffers, or a
  clone for one layer), so a returned state is never overwritten by a later step.

With a gradient wanted (grad enabled and x_t, the state or a weight requiring grad) the plan
steps aside: `torch_cell_steps` runs torch's own cell ops where torch.nn runs the layer
(impl_used "torch"; autograd in C++), the cells step otherwise. Measured against the kernel inside
an autograd.Function whose backward recomputes the step through the cells (commit de28687):
its forward was 1.7-4.3x faster, but forward + backward 1.8-2.3x slower (a nested autograd
call per step), and a gradient asked for is a backward to come (benchmarks/README.md,
"Recurrent.step"). Under torch.no_grad(), or with grad enabled but nothing requiring grad (a
frozen model), the kernel runs.

`CellStreamer` is what `Recurrent.streamer()` returns when the kernels cannot run the layer:
the same step / state / reset interface, stepping the layer through `Recurrent.step`.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import Tensor

from ..cells import family_of
from .state import leaves, stack_states, unstack_state

_grad_enabled = torch.is_grad_enabled
_version = operator.attrgetter("_version")
_data_ptr = Tensor.data_ptr
_is_tracing = torch._C._is_tracing
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
    """The layer's plans by (batch, dtype): dropped by copy and pickle (they hold raw pointers
    into their own buffers), rebuilt on the next step."""

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
        self.cells = tuple(layer.cells)
        self.params = tuple(
            p for c in self.cells for p in c._parameters.values() if p is not None
        )
        self.xshape = torch.Size((batch, layer.input_size))
        self.dtype, self.num_layers = dtype, len(self.cells)
        self.lstm = isinstance(self.cells[0].init_state(1), tuple)
        self.width = self.cells[0].hidden_size
        self._build()

    def _build(self) -> None:
        from .fused import make_streamer

        self.streamer = make_streamer(self.layer_ref, self.xshape[0])
        parts = self.streamer.state
        self.hbufs = [p[0] if self.lstm else p for p in parts]
        self.cbufs = [p[1] for p in parts] if self.lstm else []
        self.stamp = self._stamp()
        self.forget()

    def forget(self) -> None:
        """The buffers hold no state a step returned (after a reset or a copy into them)."""
        self.last: Any = None  # the state object the last step returned, as returned
        self.last_versions: tuple[int, ...] = ()

    def _stamp(self) -> tuple:
        return (*map(_data_ptr, self.params), *map(_version, self.params))

    def __call__(self, x_t: Tensor, state: Any):
        """(y_t, state) as `Recurrent.step` returns them, or None: not this plan's case
        (the caller then takes the general path, which checks and explains)."""
        if (
            type(x_t) is not Tensor  # fake tensors, tensor subclasses
            or x_t.shape != self.xshape
            or x_t.dtype is not self.dtype
            or not x_t.is_cpu
            or x_t.stride(1) != 1  # rows may be strided: x[:, t] of a (B, T, D) batch
            or _is_tracing()
            or _is_compiling()
            or _transforms() is not None
        ):
            return None
        if _grad_enabled() and (
            x_t.requires_grad
            or (state is not None and any(t.requires_grad for t in leaves(state)))
            or any(p.requires_grad for p in self.params)
        ):
            return None  # a gradient is wanted: the cells step (see the module docstring)
        if self._stamp() != self.stamp:  # the weights were updated: take a new snapshot
            self._build()
        if state is None or state is not self.last or self._changed(state):
            if not self._load(state):
                return None
        self.streamer.step(x_t)
        # fresh memory, never overwritten by a later step; one layer: clone + view is cheaper
        if self.num_layers == 1:
            y = self.hbufs[0].clone()
            hs = y[None]
        else:
            hs = torch.stack(self.hbufs)  # (L, B, H)
            y = hs[-1]
        if self.lstm:
            cs = torch.stack(self.cbufs)
            new = self.last = (hs, cs)
            self.last_versions = (hs._version, cs._version)
        else:
            new = self.last = hs
            self.last_versions = (hs._version,)
        return y, new

    def _changed(self, state) -> bool:
        """Whether the last returned state was modified in place since (its versions)."""
        if self.lstm:
            return (state[0]._version, state[1]._version) != self.last_versions
        return state._version != self.last_versions[0]

    def _load(self, state: Any) -> bool:
        """Put `state` (None: zeros) in the kernel's buffers; False if it is not in the
        stacked layout."""
        self.forget()
        if state is None:
            self.streamer.reset()
            return True
        parts = (state,) if isinstance(state, Tensor) else state
        shape = (self.num_layers, self.xshape[0], self.width)
        if not (
            isinstance(parts, tuple)
            and len(parts) == (2 if self.lstm else 1)
            and all(isinstance(p, Tensor) and p.shape == shape for p in parts)
        ):
            return False
        with torch.no_grad():
            for bufs, part in zip((self.hbufs, self.cbufs), parts, strict=False):
                for k, buf in enumerate(bufs):
                    buf.copy_(part[k])
        return True


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
