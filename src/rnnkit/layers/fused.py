"""Routing a Recurrent layer's directions to rnnkit's native kernels (rnnkit.kernels)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..cells import ElmanCell, GRUCell, LSTMCell

FUSED_ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")


def fused_unsupported(layer, x: Tensor | None = None) -> str | None:
    """Why rnnkit's kernels cannot run this layer (on x), or None if they can."""
    try:
        from .. import kernels
    except ImportError as err:  # the package is optional: a broken one must not break layers
        return f"rnnkit.kernels cannot be imported ({err})"
    if not hasattr(kernels, "available"):
        return "rnnkit.kernels has no native kernels in this build"
    status = kernels.available()
    if not status:
        return f"native kernels unavailable: {status.reason}"
    if x is not None and x.device.type != "cpu":
        return f"the kernels run on the CPU, x is on {x.device}"
    if layer.training and layer.recurrent_dropout > 0:
        return "recurrent_dropout is not in the kernels"
    for cell in layer.cells:
        if isinstance(cell, ElmanCell):
            if cell.activation not in FUSED_ACTIVATIONS:
                return f"the kernels have activations {FUSED_ACTIVATIONS} only"
        elif isinstance(cell, LSTMCell):
            if cell.peepholes or cell.layer_norm or cell.proj_size:
                return "the LSTM kernel has no peepholes, layer norm or projection"
        elif not isinstance(cell, GRUCell):
            return f"no kernel for {type(cell).__name__}"
    return None


def run_fused(cell, x: Tensor, state: Any, lengths: Tensor | None, hmask=None):
    """One direction of one layer through the matching kernel: (B, T, D) -> (B, T, O), state."""
    from .. import kernels

    if hmask is not None:
        raise ValueError("run_fused: recurrent dropout is not supported by the kernels")
    args = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    lengths = None if lengths is None else lengths.cpu()
    if isinstance(cell, LSTMCell):
        h, c = state
        return kernels.lstm_sequence(x, h, c, *args, lengths=lengths)
    if isinstance(cell, GRUCell):
        return kernels.gru_sequence(x, state, *args, reset_after=cell.reset_after, lengths=lengths)
    return kernels.elman_sequence(x, state, *args, activation=cell.activation, lengths=lengths)


def step_fused(cell, x_t: Tensor, state: Any):
    """One step of one cell through the single-step kernels (inference only)."""
    from ..kernels import elman_step, gru_step, lstm_step

    p = cell._parameters  # direct: nn.Module.__getattr__ costs ~1 µs a parameter here
    args = (p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
    if isinstance(cell, LSTMCell):
        return lstm_step(x_t, state, *args)
    if isinstance(cell, GRUCell):
        return gru_step(x_t, state, *args, reset_after=cell.reset_after)
    return elman_step(x_t, state, *args, activation=cell.activation)


def make_streamer(layer, batch: int):
    """A kernels.Streamer holding a snapshot of a unidirectional layer's weights."""
    from .. import kernels

    why = fused_unsupported(layer)
    if why:
        raise ValueError(f"Recurrent.streamer: the fused kernels cannot run this layer: {why}")
    if layer.bidirectional:
        raise ValueError("Recurrent.streamer: a bidirectional layer needs the whole sequence")
    if layer.dropout > 0 and layer.training:
        raise ValueError("Recurrent.streamer: call layer.eval() first (dropout between layers)")
    specs = []
    for cell in layer.cells:
        kind = (
            "lstm"
            if isinstance(cell, LSTMCell)
            else "gru"
            if isinstance(cell, GRUCell)
            else "elman"
        )
        specs.append(
            kernels.StreamLayer(
                kind,
                cell.weight_ih,
                cell.weight_hh,
                cell.bias_ih,
                cell.bias_hh,
                activation=getattr(cell, "activation", "tanh"),
                reset_after=getattr(cell, "reset_after", True),
            )
        )
    return kernels.Streamer(specs, batch=batch)
