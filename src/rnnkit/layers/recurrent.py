"""`Recurrent`: loops any cell over time; stacking, bidirectional, variable lengths, dropout.

The reference implementation is a plain Python loop over t of the cell's forward; autograd
through it is backpropagation through time. Every other path comes from the cell registry
(rnnkit.cells.registry): `impl="torch"` runs the same weights through PyTorch's RNN kernels
(oneDNN on CPU, cuDNN on GPU) for families with a torch.nn equivalent; any other name runs a
sequence implementation the family registered (`impl="fused"`: rnnkit's own kernels, added by
rnnkit.layers.fused); `impl="auto"` takes the family's fastest path that supports the
configuration. `layer.impl_used` says which ran last.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..cells import Cell, SequenceImpl, build_cell, family_of, impl_names, impls_of
from ..config import CellConfig, RNNConfig
from .capture import graph_capture, vmapping
from .state import leaves, stack_states, tree_map, unstack_state
from .stepping import CellStreamer, PlanCache, StepPlan, plan_unsupported, torch_cell_steps

DYNAMIC_LENGTH = (
    "Recurrent: torch.export cannot keep the length dynamic (the recurrence is unrolled over "
    "the example's T, as for torch.nn.LSTM); export with a static length (a dynamic batch "
    "works), or export with impl='fused' (rnnkit's operators keep T dynamic; the program then "
    "needs rnnkit to run), or use rnnkit.export.export_onnx for an ONNX graph with a dynamic "
    "length"
)


class Recurrent(nn.Module):
    """A (stacked, optionally bidirectional) recurrent layer over batch-first sequences.

    Args:
        cell: a cell for the first layer (further layers are fresh copies of it reading the
            layer below), or a list of cells, one per layer.
        num_layers: L, with a single cell.
        bidirectional: also run a copy of each layer's cell backwards over each sequence
            (within its own length); outputs of both directions are concatenated.
        dropout: dropout on the outputs of every layer but the last (as torch.nn.LSTM).
        recurrent_dropout: variational dropout on the recurrent input h_{t-1}: one mask per
            sequence, shared over time (Gal & Ghahramani 2016).
        impl: "auto", "reference", "torch", or an impl a cell family registered, such as
            "fused" (see the module docstring).
        batch_first: False reads and writes time-first (T, B, ·) tensors, as torch.nn's
            default (`from_torch` keeps the module's layout); state and lengths are unchanged.

    Call: `out, state = layer(x, state=None, lengths=None)` with x (B, T, D); out is
    (B, T, O·dirs), zero past each sequence's length; `state` as torch.nn (L·dirs, B, ·),
    taken at each sequence's own last step.

    Example:
        >>> layer = Recurrent(LSTMCell(8, 32), num_layers=2, bidirectional=True)
        >>> out, (h, c) = layer(torch.randn(4, 10, 8), lengths=torch.tensor([10, 7, 3, 1]))
        >>> out.shape, h.shape
        (torch.Size([4, 10, 64]), torch.Size([4, 4, 32]))
    """

    def __init__(
        self,
        cell: Cell | Sequence[Cell],
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        impl: str = "auto",
        batch_first: bool = True,
    ):
        super().__init__()
        if isinstance(cell, Sequence):
            cells = list(cell)
            if not cells:
                raise ValueError("Recurrent: the list of cells is empty")
            if num_layers not in (1, len(cells)):
                raise ValueError(
                    f"Recurrent: num_layers={num_layers} but {len(cells)} cells were given"
                )
        else:
            if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
                raise ValueError(f"Recurrent: num_layers must be >= 1, got {num_layers!r}")
            cells = [cell]
        for c in cells:
            if not isinstance(c, nn.Module) or not hasattr(c, "init_state"):
                raise TypeError(f"Recurrent: expected a cell, got {type(c).__name__}")
        for name, p in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"Recurrent: {name} must be in [0, 1), got {p}")
        if impl not in impl_names():
            raise ValueError(f"Recurrent: impl must be one of {impl_names()}, got {impl!r}")
        dirs = 2 if bidirectional else 1
        while len(cells) < num_layers:
            cells.append(cells[0].replicate(cells[-1].output_size * dirs))
        for k in range(1, len(cells)):
            want = cells[k - 1].output_size * dirs
            if cells[k].input_size != want:
                raise ValueError(
                    f"Recurrent: layer {k} reads {cells[k].input_size} features but layer "
                    f"{k - 1} gives {want}"
                )
        self.layers = nn.ModuleList(
            nn.ModuleList([c] + ([c.replicate(c.input_size)] if bidirectional else []))
            for c in cells
        )
        self.num_layers, self.bidirectional, self.num_directions = len(cells), bidirectional, dirs
        self.dropout, self.recurrent_dropout, self.impl = dropout, recurrent_dropout, impl
        self.input_size = cells[0].input_size
        self.hidden_size = cells[-1].hidden_size
        self.output_size = cells[-1].output_size * dirs
        self.impl_used: str | None = None
        self.batch_first = bool(batch_first)
        self._cell_tuple()  # now: torch.compile reads it, and must not have to write it
        if self._torch_config_unsupported() is None:
            self._torch_module()  # now, not at the first call: torch.compile cannot build it

    # ---- construction from / to configs -------------------------------------------------

    def config(self) -> RNNConfig:
        """The RNNConfig that rebuilds this layer (fresh weights), its input_size included.

        Only a stack of one family with the same options in every layer has one: a stack
        built from a list of differing cells is rebuilt from those cells.
        """
        first = self.layers[0][0].config()
        repeated = (first.kind, first.hidden_size, first.options)
        for k, layer in enumerate(self.layers[1:], start=1):
            cfg = layer[0].config()
            if (cfg.kind, cfg.hidden_size, cfg.options) != repeated:
                raise ValueError(
                    f"Recurrent.config: layer {k} ({cfg.kind}, hidden {cfg.hidden_size}) "
                    f"differs from layer 0 ({first.kind}, hidden {first.hidden_size}) in family, "
                    "size or options; an RNNConfig describes one cell repeated over the layers"
                )
        return RNNConfig(
            cell=first.kind,
            hidden_size=first.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            impl=self.impl,
            options=dict(first.options),
            input_size=first.input_size,
        )

    @classmethod
    def from_config(cls, config: RNNConfig, input_size: int | None = None) -> Recurrent:
        """A fresh layer from its config; `input_size` is given when the config leaves it to
        what feeds the layer (as in a model's config), and must agree with it otherwise."""
        if input_size is None:
            input_size = config.input_size
        elif config.input_size is not None and config.input_size != input_size:
            raise ValueError(
                f"Recurrent.from_config: the config reads input_size={config.input_size} "
                f"but {input_size} features feed it"
            )
        if input_size is None:
            raise ValueError("Recurrent.from_config: the config has no input_size; pass one")
        cell = build_cell(
            CellConfig(config.cell, input_size, config.hidden_size, dict(config.options))
        )
        return cls(
            cell,
            config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout,
            recurrent_dropout=config.recurrent_dropout,
            impl=config.impl,
        )

    @property
    def cells(self) -> list[Cell]:
        """All cells, layer-major: [layer0 fwd, layer0 bwd, layer1 fwd, ...]."""
        return [c for layer in self.layers for c in layer]

    def init_state(self, batch: int, device=None, dtype=None) -> Any:
        return stack_states([c.init_state(batch, device, dtype) for c in self.cells])

    # ---- the forward pass ---------------------------------------------------------------

    def forward(self, x: Tensor, state: Any = None, lengths: Tensor | Sequence[int] | None = None):
        """x (B, T, D) -> (out (B, T, O·dirs), final state); (T, B, ·) if not batch_first."""
        if self.batch_first:
            return self._forward(x, state, lengths)
        self._check_input(x)  # its message names the (T, B, D) layout
        out, final = self._forward(x.transpose(0, 1), state, lengths)
        return out.transpose(0, 1), final

    def _forward(self, x: Tensor, state: Any, lengths: Tensor | Sequence[int] | None):
        B, T = self._check_input(x)
        impl = self.resolve_impl(x)
        # only the fused kernels' operators take T as data; every other path loops over it
        if impl != "fused" and isinstance(T, torch.SymInt) and torch.compiler.is_exporting():
            raise RuntimeError(DYNAMIC_LENGTH)
        # under torch.export and torch.compile the values are unknown (reading them would fail
        # the export, and break torch.compile's graph); the fused operators check them as they run
        capture = torch.compiler.is_compiling() or torch.compiler.is_exporting()
        traced = impl == "fused" and capture
        lengths = self._check_lengths(lengths, B, T, values=not traced)
        self.__dict__["impl_used"] = impl  # not nn.Module.__setattr__: ~3 us a call
        if impl == "torch" and state is None:  # torch.nn makes the zero state itself
            return self._forward_torch(x, None, lengths)
        cells = self._cell_tuple()
        templates = [c.init_state(B, x.device, x.dtype) for c in cells]
        states = templates if state is None else unstack_state(state, templates, "Recurrent")
        if impl == "reference" and torch.jit.is_tracing():
            raise RuntimeError(self._untraceable(T))
        if impl == "torch":
            return self._forward_torch(x, states, lengths)
        if impl == "reference":
            return self._forward_loop(x, states, lengths, self.run_cell)
        runs = {id(c): i.run for c, i in zip(cells, self.impls(impl), strict=True)}
        return self._forward_loop(
            x, states, lengths, lambda cell, *args: runs[id(cell)](cell, *args)
        )

    def _untraceable(self, T: int) -> str:
        why = (
            f"torch.nn cannot run it: {self.torch_unsupported()}"
            if self.impl == "auto"
            else f"impl={self.impl!r} was asked for"
        )
        return (
            f"Recurrent: cannot trace or ONNX-export the cell loop ({why}): it would be unrolled "
            f"for T={T} and wrong at any other length; export a configuration torch.nn runs "
            "(impl 'auto' or 'torch'), or run the layer in Python"
        )

    def __prepare_scriptable__(self):
        # torch.jit.script calls this first: one line instead of a TorchScript compile error
        raise RuntimeError(
            "Recurrent: torch.jit.script cannot compile rnnkit layers (Python-level cells and "
            "impls); use torch.jit.trace or torch.onnx.export(model, x, dynamo=False), which "
            "take torch.nn's kernels, or rnnkit.export.export_onnx"
        )

    def step(self, x_t: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """One time step through every layer, for stateful streaming inference.

        x_t (B, D) -> (y_t (B, O), state); `state` as `forward` returns it. A unidirectional
        stack of one kernel family (Elman, GRU, base LSTM) runs the native step kernel, one
        call for the whole stack (impl_used "fused"; see rnnkit.layers.stepping), with its
        C++ backward when a gradient is wanted; other layers step their cells, autograd
        through them. Unidirectional layers only: a backward direction needs the whole
        sequence.

        Example:
            >>> state = None
            >>> with torch.no_grad():
            ...     for x_t in stream:            # x_t (B, D)
            ...         y_t, state = layer.step(x_t, state)
        """
        plans = self.__dict__.get("_step_plans")
        plan = None if plans is None else plans.current
        if plan is not None and plan.training == self.training and plan.asked == self.impl:
            out = plan(x_t, state)  # None unless this is the plan's case: then the checks below
            if out is not None:
                # plain attribute write: nn.Module.__setattr__ costs microseconds on this path
                self.__dict__["impl_used"] = plan.impl
                return out
        return self._step_general(x_t, state, tried=plan)

    def _step_general(self, x_t: Tensor, state: Any, tried: StepPlan | None) -> tuple[Tensor, Any]:
        if self.bidirectional:
            raise ValueError("Recurrent.step: a bidirectional layer needs the whole sequence")
        if not isinstance(x_t, Tensor) or x_t.dim() != 2 or x_t.shape[1] != self.input_size:
            got = tuple(x_t.shape) if isinstance(x_t, Tensor) else type(x_t).__name__
            raise ValueError(
                f"Recurrent.step: expected x_t of shape (B, {self.input_size}), got {got}"
            )
        plan = self._step_plan(x_t)
        if plan is not None and plan is not tried:
            out = plan(x_t, state)
            if out is not None:
                self.__dict__["impl_used"] = plan.impl
                return out
        cells = self._cell_tuple()
        states = self._step_states(cells, state, x_t)
        name, steps = self._step_impl(x_t)
        self.__dict__["impl_used"] = name
        y, finals = x_t, []
        for k, cell in enumerate(cells):
            if k > 0 and self.dropout > 0:
                y = nn.functional.dropout(y, self.dropout, self.training)
            y, new = cell(y, states[k]) if steps is None else steps[k](cell, y, states[k])
            finals.append(new)
        return y, stack_states(finals)

    def _step_plan(self, x_t: Tensor) -> StepPlan | None:
        """The cached kernel plan for this batch, dtype and mode, or None where none applies."""
        if graph_capture(x_t):
            return None
        plans = self.__dict__.get("_step_plans")
        if plans is None:
            plans = self.__dict__["_step_plans"] = PlanCache()
        key = (self.impl, x_t.shape[0], x_t.dtype, self.training)
        if key not in plans:
            why = plan_unsupported(self, x_t)
            plans[key] = None if why else StepPlan(self, x_t.shape[0], x_t.dtype)
        plans.current = plans[key]
        return plans.current

    def _cell_tuple(self) -> tuple:
        cached = self.__dict__.get("_cells_cache")
        if cached is None:
            cached = self.__dict__["_cells_cache"] = tuple(self.cells)
        return cached

    def _step_states(self, cells: tuple, state: Any, x_t: Tensor) -> list[Any]:
        """Per-cell states for `step`: a cheap shape check in the common stacked case,
        the full check (with its messages) otherwise."""
        B = x_t.shape[0]
        if state is None:
            return [c.init_state(B, x_t.device, x_t.dtype) for c in cells]
        widths = self.__dict__.get("_state_widths")
        if widths is None:
            widths = self.__dict__["_state_widths"] = tuple(
                tuple(t.shape[1] for t in leaves(c.init_state(1))) for c in cells
            )
        parts = (state,) if isinstance(state, Tensor) else state
        n = len(cells)
        if (
            isinstance(parts, tuple)
            and len(parts) == len(widths[0])
            and all(isinstance(p, Tensor) and p.dim() == 3 for p in parts)
            and all(tuple(p.shape) == (n, B, w) for p, w in zip(parts, widths[0], strict=True))
            and len(set(widths)) == 1
        ):
            if isinstance(state, Tensor):
                return list(state.unbind(0))
            return list(zip(*(p.unbind(0) for p in parts), strict=True))
        templates = [c.init_state(B, x_t.device, x_t.dtype) for c in cells]
        return unstack_state(state, templates, "Recurrent.step")

    def _step_impl(self, x_t: Tensor) -> tuple[str, tuple | None]:
        """(impl name, per-cell step functions) for `step`; ("reference", None) runs the cells.

        impl="auto" takes the first path of its order that has a single-step form and supports
        this layer ("torch": torch's own cell ops, autograd in C++, where torch.nn runs the
        layer); a named impl without one steps the cells; a named impl with one raises when it
        cannot run.
        """
        if self.impl == "reference":
            return "reference", None
        key = (
            torch.is_grad_enabled(),
            self.training,
            x_t.device.type,
            x_t.dtype,
            self.recurrent_dropout,
        )
        cache = self.__dict__.setdefault("_step_support", {})
        if graph_capture(x_t):  # traced, compiled or transformed: never cached, never native
            found = self._choose_step(x_t) if self.impl != "auto" else ("reference", None)
        else:
            if (self.impl, key) not in cache:
                cache[self.impl, key] = self._choose_step(x_t)
            found = cache[self.impl, key]
        if isinstance(found, str):
            raise ValueError(f"Recurrent.step: impl={self.impl!r} cannot run this step: {found}")
        return found

    def _choose_step(self, x_t: Tensor) -> tuple[str, tuple | None] | str:
        """What `_step_impl` returns, or why the requested impl cannot step (a str)."""
        names = self._auto_order(x_t) if self.impl == "auto" else (self.impl,)
        for name in names:
            if name == "torch":
                steps = None if self.impl_unsupported("torch") else torch_cell_steps(self)
                if steps is not None:
                    return name, steps
                continue  # no torch cell op for it (an LSTM projection): the cells step
            why = self.impl_unsupported(name, x_t)
            impls = self.impls(name)
            if why is None and not all(hasattr(i, "step") for i in impls):
                continue  # a sequence-only impl: the cells step
            if why is None and torch.is_grad_enabled():
                why = "the single-step kernels run only under torch.no_grad()"
            if why is None:
                return name, tuple(i.step for i in impls)
            if self.impl != "auto":
                return why
        return "reference", None

    def streamer(self, batch: int = 1, split: bool | str | None = None):
        """The fastest streaming inference: a `rnnkit.kernels.KernelStreamer` over this layer.

        One native call per step for the whole stack, state kept in preallocated buffers.
        It holds a snapshot of the weights (build a new one after training more) and
        `step(x_t)` returns its own output buffer, overwritten by the next step.
        Unidirectional layers of Elman, GRU or base LSTM cells, in eval mode. Any other
        unidirectional layer (LSTM options, minGRU, minLSTM, LRU, ...), or any layer when the
        kernels are unavailable, gets a `CellStreamer` (same interface, stepped from Python
        through `step`; with a one-line RuntimeWarning when a kernel family could not run);
        its `impl_used` says which path stepped. ``split`` (the KernelStreamer's: None times
        one thread, a split over torch's threads and a split with the streamer's own worker
        thread, keeping the fastest; False / True / "worker" force one) is reported by its
        ``split``, ``split_mode`` and ``split_reason``.

        Example:
            >>> s = layer.eval().streamer(batch=1)
            >>> for x_t in stream:                 # x_t (1, D)
            ...     y_t = s.step(x_t).clone()      # (1, O)
        """
        from .fused import make_streamer

        if self.bidirectional:
            raise ValueError("Recurrent.streamer: a bidirectional layer needs the whole sequence")
        if self.dropout > 0 and self.training:
            raise ValueError("Recurrent.streamer: call layer.eval() first (dropout between layers)")
        why = self.impl_unsupported("fused")
        if why is None:
            return make_streamer(self, batch, split)
        if all(i is not None for i in self.impls("fused")):  # kernels exist, cannot run here
            warnings.warn(
                f"Recurrent.streamer: the native kernels cannot run this layer ({why}); "
                "stepping it from Python instead (torch's cell ops or the cells)",
                RuntimeWarning,
                stacklevel=2,
            )
        return CellStreamer(self, batch, why)

    def _forward_loop(self, x: Tensor, states: list[Any], lengths: Tensor | None, run):
        """Layers bottom-up, each direction run by `run(cell, x, state, lengths, hmask)`."""
        dirs = self.num_directions
        layer_in, finals = x, []
        for k, layer in enumerate(self.layers):
            if k > 0 and self.dropout > 0:
                layer_in = nn.functional.dropout(layer_in, self.dropout, self.training)
            outs = []
            for d, cell in enumerate(layer):
                inp = layer_in if d == 0 else reverse_padded(layer_in, lengths)
                hmask = self.recurrent_mask(cell, inp.shape[0], inp)
                out, final = run(cell, inp, states[k * dirs + d], lengths, hmask)
                outs.append(out if d == 0 else reverse_padded(out, lengths))
                finals.append(final)
            layer_in = outs[0] if dirs == 1 else torch.cat(outs, dim=-1)
        return layer_in, stack_states(finals)

    @staticmethod
    def run_cell(cell: Cell, x: Tensor, state: Any, lengths: Tensor | None, hmask=None):
        """One direction of one layer, step by step: (B, T, D) -> (B, T, O), final state."""
        T = x.shape[1]
        steps = None
        if lengths is not None:
            steps = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]
        ys = []
        for t in range(T):
            y, new = cell(x[:, t], state, hmask)
            if steps is None:
                state = new
            else:
                m = steps[:, t : t + 1]  # (B, 1): past its length a sequence keeps its state
                state = tree_map(lambda a, b, m=m: torch.where(m, a, b), new, state)
                y = y * m
            ys.append(y)
        return torch.stack(ys, dim=1), state  # (B, T, O)

    def recurrent_mask(self, cell: Cell, batch: int, like: Tensor) -> Tensor | None:
        if not (self.training and self.recurrent_dropout > 0):
            return None
        p = self.recurrent_dropout
        width = recurrent_width(cell)
        keep = torch.full((batch, width), 1.0 - p, device=like.device, dtype=like.dtype)
        return torch.bernoulli(keep) / (1.0 - p)

    # ---- choosing the implementation ----------------------------------------------------

    def resolve_impl(self, x: Tensor | None = None) -> str:
        """The implementation a call on x will use (raises if the requested one can't run)."""
        if self.impl == "reference":
            return "reference"
        if self.impl != "auto":
            why = self.impl_unsupported(self.impl, x)
            if why:
                raise ValueError(f"Recurrent: impl={self.impl!r} cannot run this layer: {why}")
            return self.impl
        for name in self._auto_order(x):
            if not self.impl_unsupported(name, x):
                return name
        return "reference"

    def _auto_order(self, x: Tensor | None) -> tuple[str, ...]:
        """impl="auto"'s order, from the first layer's family: under inference its
        `prefer_for_inference`, then its registered impls in order, then torch.nn."""
        first = self._cell_tuple()[0]
        family = family_of(first)
        inference = not (torch.is_grad_enabled() and self._needs_grad(x))
        preferred = family.prefer_for_inference if family is not None and inference else ()
        order = tuple(dict.fromkeys((*preferred, *impls_of(first), "torch")))
        if torch.compiler.is_exporting():
            # an exported program of torch's own ops runs (and converts to ONNX) without
            # rnnkit; impl="fused" exports rnnkit's operators, asked for by name
            order = tuple(name for name in order if name != "fused")
        return order

    def impls(self, name: str) -> list[SequenceImpl | None]:
        """Each cell's registered sequence implementation `name` (None where it has none)."""
        return [impls_of(c).get(name) for c in self._cell_tuple()]

    def impl_unsupported(self, name: str, x: Tensor | None = None) -> str | None:
        """Why impl `name` cannot run this layer (on x, when given), or None if it can."""
        if name == "reference":
            return None
        if name == "torch":
            if vmapping():
                return "torch.nn's RNN ops have no torch.func.vmap batching rule"
            return self.torch_unsupported()
        cells, impls = self._cell_tuple(), self.impls(name)
        for cell, impl in zip(cells, impls, strict=True):
            if impl is None:
                return f"no {name!r} implementation for {type(cell).__name__}"
        for cell, impl in zip(cells, impls, strict=True):
            why = impl.unsupported(cell, x)
            if why:
                return why
        if self.training and self.recurrent_dropout > 0:
            if not all(getattr(impl, "recurrent_dropout", False) for impl in impls):
                return f"recurrent_dropout is not in impl {name!r}"
        return None

    def _needs_grad(self, x: Tensor | None) -> bool:
        return (x is not None and x.requires_grad) or any(
            p.requires_grad for p in self.parameters()
        )

    def torch_unsupported(self) -> str | None:
        """Why torch.nn's kernels cannot run this layer, or None if they can."""
        if self.training and self.recurrent_dropout > 0:
            return "recurrent_dropout is not in torch.nn"
        return self._torch_config_unsupported()

    def _torch_config_unsupported(self) -> str | None:
        """Why no torch.nn module has this layer's cells and shape (whatever the mode); once
        per layer, like _cell_tuple (the cells and their options are fixed once built)."""
        why = self.__dict__.get("_torch_why", False)
        if why is False:
            why = self.__dict__["_torch_why"] = self._torch_config_why()
        return why

    def _torch_config_why(self) -> str | None:
        cells = self.cells
        first = cells[0]
        if any(type(c) is not type(first) for c in cells):
            return "the layers mix cell types"
        family = family_of(first)
        if family is None or family.torch is None:
            return f"torch.nn has no {type(first).__name__}"
        if any(c.hidden_size != first.hidden_size or c.bias != first.bias for c in cells):
            return "the layers differ in hidden size or bias"
        why = family.torch.unsupported(cells)
        if why:
            return why
        options = family.torch.options(first)
        for c in cells:
            for key, value in family.torch.options(c).items():
                if value != options[key]:
                    return f"the layers differ in {key}"
        return None

    # ---- torch.nn interop ---------------------------------------------------------------

    def _torch_module(self) -> nn.RNNBase:
        """A torch.nn.RNN/LSTM/GRU of the same shape with its weights on the meta device.

        It only lends its forward: our parameters are put in place for each call. Built once,
        at construction: on the meta device it costs no memory and consumes no random
        numbers (a resumed run must see the same RNG stream as an unbroken one). Kept outside
        the module tree so it never shows in parameters() or state_dict().
        """
        shadow = self.__dict__.get("_shadow")
        if shadow is None:
            shadow = self.__dict__["_shadow"] = self._new_torch_module(device="meta")
        return shadow

    def _new_torch_module(self, device=None, dtype=None) -> nn.RNNBase:
        why = self._torch_config_unsupported()
        if why:
            raise ValueError(f"Recurrent: no torch.nn equivalent: {why}")
        first = self.cells[0]
        torch_equivalent = family_of(first).torch
        return torch_equivalent.module(
            input_size=self.input_size,
            hidden_size=first.hidden_size,
            num_layers=self.num_layers,
            bias=first.bias,
            batch_first=True,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
            device=device,
            dtype=dtype,
            **torch_equivalent.options(first),
        )

    def torch_parameters(self) -> dict[str, Tensor]:
        """Our parameters under torch.nn's names (weight_ih_l0, weight_hh_l1_reverse, ...)."""
        params = {}
        for k, layer in enumerate(self.layers):
            for d, cell in enumerate(layer):
                suffix = f"_l{k}" + ("_reverse" if d else "")
                for name, p in cell._parameters.items():  # named_parameters: ~4x the time
                    if p is not None:
                        params[name + suffix] = p
        return params

    def _forward_torch(self, x: Tensor, states: list[Any] | None, lengths: Tensor | None):
        module = self._torch_module()
        if module.training != self.training:
            module.train(self.training)
        hx = None if states is None else stack_states(states)
        inp = x
        if lengths is not None:
            inp = nn.utils.rnn.pack_padded_sequence(
                x, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
        # our parameters put in the shadow's place for this call: torch.func.functional_call
        # would do the same but refuses under torch.jit.trace, which ONNX export needs
        params, saved = self.torch_parameters(), dict(module._parameters)
        module._parameters.update(params)
        try:
            out, final = module(inp, hx)
        finally:
            module._parameters.update(saved)
        if lengths is not None:
            out, _ = nn.utils.rnn.pad_packed_sequence(
                out, batch_first=True, total_length=x.shape[1]
            )
        return out, final

    def to_torch(self) -> nn.RNNBase:
        """A torch.nn.RNN/LSTM/GRU, in this layer's layout, holding copies of its weights."""
        first = next(self.parameters())
        module = self._new_torch_module(device=first.device, dtype=first.dtype)
        module.batch_first = self.batch_first
        with torch.no_grad():
            for name, p in self.torch_parameters().items():
                getattr(module, name).copy_(p)
        return module

    # ---- input checks -------------------------------------------------------------------

    def _check_input(self, x: Tensor) -> tuple[int, int]:
        if not isinstance(x, Tensor):
            raise TypeError(f"Recurrent: x must be a Tensor (B, T, D), got {type(x).__name__}")
        if x.dim() != 3:
            layout = "(B, T, {}) (batch-first)" if self.batch_first else "(T, B, {}) (time-first)"
            raise ValueError(
                f"Recurrent: expected x of shape {layout.format(self.input_size)}, "
                f"got {x.dim()}-D shape {tuple(x.shape)}"
            )
        B, T, D = x.shape
        if D != self.input_size:
            raise ValueError(
                f"Recurrent: expected {self.input_size} features per step, got x of shape "
                f"{tuple(x.shape)}"
            )
        if T == 0 or B == 0:
            raise ValueError(f"Recurrent: x has an empty dimension: {tuple(x.shape)}")
        return B, T

    def _check_lengths(self, lengths: Any, B: int, T: int, values: bool = True) -> Tensor | None:
        """lengths as int64 (B,), checked (their range too, if `values`), or None."""
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.shape[0] != B:
            raise ValueError(
                f"Recurrent: lengths must have shape ({B},) (one per sequence), "
                f"got {tuple(lengths.shape)}"
            )
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise TypeError(f"Recurrent: lengths must be integers, got {lengths.dtype}")
        lengths = lengths.to(torch.int64)
        if not values:
            return lengths
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > T:
            raise ValueError(
                f"Recurrent: lengths must be in [1, T={T}], got values from {lo} to {hi}"
            )
        return lengths

    def extra_repr(self) -> str:
        return (
            f"num_layers={self.num_layers}, bidirectional={self.bidirectional}, "
            f"dropout={self.dropout}, recurrent_dropout={self.recurrent_dropout}, "
            f"impl={self.impl!r}" + ("" if self.batch_first else ", batch_first=False")
        )


def recurrent_width(cell: Cell) -> int:
    """Width of the recurrent input h_{t-1} (y_{t-1} for Jordan, the projection for LSTM)."""
    state = cell.init_state(1)
    h = state if isinstance(state, Tensor) else state[0]
    return h.shape[1]


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence within its own length; padding stays where it is. (B, T, ·)."""
    if lengths is None:
        return x.flip(1)
    B, T = x.shape[:2]
    t = torch.arange(T, device=x.device)[None, :].expand(B, T)
    L = lengths.to(x.device)[:, None]
    idx = torch.where(t < L, L - 1 - t, t)  # (B, T)
    return x.gather(1, idx[:, :, None].expand_as(x))
