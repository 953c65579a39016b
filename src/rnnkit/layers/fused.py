"""rnnkit's native kernels (rnnkit.kernels) registered as impl "fused" of Elman, GRU and LSTM.

Importing this module fills in the cell registry; rnnkit.kernels itself is imported only when
a kernel is checked or run, so a broken build never breaks importing the layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..cells import ElmanCell, GRUCell, LSTMCell, register_impl
from .capture import COMPILING, EXPORTING, graph_capture

FUSED_ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")
FUSED_DTYPES = (torch.float32, torch.float64)


class _Kernels:
    """What the three families' kernels share: availability, device, the weights they read."""

    kind = ""  # the kernels' name of the family (kernels.StreamLayer.kind)

    def unsupported(self, cell, x: Tensor | None) -> str | None:
        try:
            from .. import kernels
        except ImportError as err:  # the package is optional: a broken one must not break layers
            return f"rnnkit.kernels cannot be imported ({err})"
        if not hasattr(kernels, "load_error"):
            return "rnnkit.kernels has no native kernels in this build"
        why = kernels.load_error()
        if why:
            return f"native kernels unavailable: {why}"
        if x is not None and x.device.type != "cpu":
            return f"the kernels run on the CPU, x is on {x.device}"
        if x is None and cell.weight_hh.device.type not in ("cpu", "meta"):
            return f"the kernels run on the CPU, the weights are on {cell.weight_hh.device}"
        dtype = cell.weight_hh.dtype if x is None else x.dtype
        if dtype not in FUSED_DTYPES:
            return f"the kernels take float32 or float64, not {dtype}"
        why = graph_capture(x)
        # the kernels are torch.ops.rnnkit operators with fake kernels: torch.compile and
        # torch.export capture each as one node (no graph break; batch and length dynamic)
        if why and why not in (COMPILING, EXPORTING):
            return f"the native kernels cannot run here: {why}"
        return self.cell_unsupported(cell)

    def cell_unsupported(self, cell) -> str | None:
        return None

    def run(self, cell, x: Tensor, state: Any, lengths: Tensor | None, hmask=None):
        """One direction of one layer: (B, T, D) -> (B, T, O), final state."""
        from .. import kernels

        if hmask is not None:
            raise ValueError("impl 'fused': recurrent dropout is not supported by the kernels")
        p = cell._parameters  # direct, as in step()
        args = (p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
        lengths = None if lengths is None else lengths.cpu()
        return self.sequence(kernels, x, state, args, cell, lengths)

    def step(self, cell, x_t: Tensor, state: Any):
        """One step of one cell through the single-step kernels (inference only)."""
        from .. import kernels

        p = cell._parameters  # direct: nn.Module.__getattr__ costs ~1 µs a parameter here
        args = (p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
        return self.single_step(kernels, x_t, state, args, cell)

    def stream_layer(self, cell):
        """The cell's layer of a kernels.KernelStreamer (a snapshot of its weights)."""
        from .. import kernels

        return kernels.StreamLayer(
            self.kind,
            cell.weight_ih,
            cell.weight_hh,
            cell.bias_ih,
            cell.bias_hh,
            **self.stream_options(cell),
        )

    def stream_options(self, cell) -> dict[str, Any]:
        return {}


class _ElmanKernels(_Kernels):
    kind = "elman"

    def cell_unsupported(self, cell) -> str | None:
        if cell.activation not in FUSED_ACTIVATIONS:
            return f"the kernels have activations {FUSED_ACTIVATIONS} only"
        return None

    def sequence(self, kernels, x, state, args, cell, lengths):
        return kernels.elman_sequence(x, state, *args, activation=cell.activation, lengths=lengths)

    def single_step(self, kernels, x_t, state, args, cell):
        return kernels.elman_step(x_t, state, *args, activation=cell.activation)

    def stream_options(self, cell) -> dict[str, Any]:
        return {"activation": cell.activation}


class _GRUKernels(_Kernels):
    kind = "gru"

    def sequence(self, kernels, x, state, args, cell, lengths):
        return kernels.gru_sequence(x, state, *args, reset_after=cell.reset_after, lengths=lengths)

    def single_step(self, kernels, x_t, state, args, cell):
        return kernels.gru_step(x_t, state, *args, reset_after=cell.reset_after)

    def stream_options(self, cell) -> dict[str, Any]:
        return {"reset_after": cell.reset_after}


class _LSTMKernels(_Kernels):
    kind = "lstm"

    def cell_unsupported(self, cell) -> str | None:
        if cell.peepholes or cell.layer_norm or cell.proj_size:
            return "the LSTM kernel has no peepholes, layer norm or projection"
        return None

    def sequence(self, kernels, x, state, args, cell, lengths):
        h, c = state
        return kernels.lstm_sequence(x, h, c, *args, lengths=lengths)

    def single_step(self, kernels, x_t, state, args, cell):
        return kernels.lstm_step(x_t, state, *args)


register_impl(ElmanCell, "fused", _ElmanKernels())
register_impl(GRUCell, "fused", _GRUKernels())
register_impl(LSTMCell, "fused", _LSTMKernels())


def make_streamer(layer, batch: int, split: bool | str | None = None):
    """A kernels.KernelStreamer holding a snapshot of a unidirectional layer's weights."""
    from .. import kernels

    why = layer.impl_unsupported("fused")
    if why:
        raise ValueError(f"Recurrent.streamer: the fused kernels cannot run this layer: {why}")
    if layer.bidirectional:
        raise ValueError("Recurrent.streamer: a bidirectional layer needs the whole sequence")
    if layer.dropout > 0 and layer.training:
        raise ValueError("Recurrent.streamer: call layer.eval() first (dropout between layers)")
    impls = layer.impls("fused")
    specs = [impl.stream_layer(cell) for cell, impl in zip(layer.cells, impls, strict=True)]
    return kernels.KernelStreamer(specs, batch=batch, split=split)
