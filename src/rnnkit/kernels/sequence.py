"""Whole-sequence fused kernels with explicit BPTT backward (Elman, GRU, LSTM).

Each public function validates its inputs, then calls its operator ``torch.ops.rnnkit.*_fwd``,
whose CPU kernel runs the native time loop and whose registered backward (``ops.py``) runs
``*_bwd``: the native backward sweep (the explicit BPTT equations) followed by the weight
gradients as a few large GEMMs. The operators have fake kernels, so FakeTensor,
torch.export and torch.compile (no graph break) capture them as single nodes.

Shapes: x (B, T, D), h0/c0 (B, H), out (B, T, H); weights as in torch.nn (G gates):
weight_ih (G*H, D), weight_hh (G*H, H), bias_ih/bias_hh (G*H,) or None.
Memory saved for backward: x itself (GRU/LSTM make a (T, B, D) time-major copy in each call), the
states (T+1, B, H) (and cells for LSTM; Elman: (B, T, H) batch-major plus h_T), the gate
activations (T, B, G*H) and, for GRU, one more (T, B, H).
"""

from __future__ import annotations

import torch

from ._build import load_error, native

_ACTIVATIONS = {"tanh": 0, "sigmoid": 1, "relu": 2, "identity": 3}
_DTYPES = (torch.float32, torch.float64)


def lib():
    """The loaded native module; raises RuntimeError with the build's reason if unavailable."""
    module, status = native()
    if module is None:
        raise RuntimeError(f"rnnkit native kernels are unavailable: {status.reason}")
    return module


def _require() -> None:
    """Load the kernels (and their operators) or raise with the reason; traceable by dynamo."""
    why = load_error()
    if why:
        raise RuntimeError(f"rnnkit native kernels are unavailable: {why}")


def _check_dtype(t: torch.Tensor) -> None:
    if t.dtype not in _DTYPES:
        raise TypeError(
            f"fused kernels support float32 and float64, got {t.dtype}; convert with .float()"
        )


def _check(name, x, states, weight_ih, weight_hh, bias_ih, bias_hh, gates, lengths):
    """Validate shapes/dtypes/devices; return (B, T, D, H, lengths or None)."""
    if x.dim() != 3:
        raise ValueError(f"{name}: x must be (B, T, D), got shape {tuple(x.shape)}")
    B, T, D = x.shape
    if weight_hh.dim() != 2 or weight_hh.shape[0] % gates:
        raise ValueError(f"{name}: weight_hh must be ({gates}*H, H), got {tuple(weight_hh.shape)}")
    H = weight_hh.shape[1]
    GH = gates * H
    # runs on every call, as dear as a small kernel call itself: plain tuples, no dict, and a
    # state's name is only formatted for its error message
    expect = (
        ("weight_ih", weight_ih, (GH, D)),
        ("weight_hh", weight_hh, (GH, H)),
        ("bias_ih", bias_ih, (GH,)),
        ("bias_hh", bias_hh, (GH,)),
        *((i, s, (B, H)) for i, s in enumerate(states)),
    )
    dtype = x.dtype
    for key, t, shape in expect:
        if t is None:
            continue
        if t.shape == shape and t.dtype == dtype and t.device.type == "cpu":
            continue
        key = f"state[{key}]" if isinstance(key, int) else key
        if t.shape != shape:
            raise ValueError(f"{name}: {key} must have shape {shape}, got {tuple(t.shape)}")
        if t.dtype != dtype:
            raise TypeError(f"{name}: {key} is {t.dtype} but x is {x.dtype}; use one dtype")
        if t.device.type != "cpu":
            raise ValueError(f"{name}: fused kernels run on the CPU; {key} is on {t.device}")
    if x.device.type != "cpu":
        raise ValueError(f"{name}: fused kernels run on the CPU; x is on {x.device}")
    _check_dtype(x)
    if T == 0 or B == 0:
        raise ValueError(f"{name}: empty input of shape {tuple(x.shape)}")
    if lengths is not None:
        if not isinstance(lengths, torch.Tensor):
            lengths = torch.as_tensor(lengths)
        if lengths.shape != (B,) or lengths.is_floating_point() or lengths.is_complex():
            raise ValueError(
                f"{name}: lengths must be an integer tensor of shape ({B},), got "
                f"{lengths.dtype} {tuple(lengths.shape)}"
            )
        # the range [1, T] is checked by the operator (a data-dependent check, so it stays out
        # of what torch.compile and torch.export trace)
        lengths = lengths.to(device="cpu", dtype=torch.int64)
    return B, T, D, H, lengths


def _zeros_state(x: torch.Tensor, H: int) -> torch.Tensor:
    return x.new_zeros(x.shape[0], H)


def elman_sequence(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, activation="tanh", lengths=None):
    """Run an Elman RNN over a whole sequence: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).

    Args:
        x: (B, T, D) float32 or float64 CPU tensor (any strides).
        h0: (B, H) initial state, or None for zeros.
        weight_ih: (H, D); weight_hh: (H, H); bias_ih, bias_hh: (H,) or None.
        activation: "tanh", "sigmoid", "relu" or "identity".
        lengths: optional int64 CPU tensor (B,) with 1 <= lengths <= T; steps t >= lengths[b]
            keep sequence b's state and give out[b, t] = 0.

    Returns:
        out (B, T, H) and h_n (B, H), the state at each sequence's own last step. Both are
        differentiable w.r.t. x, h0 and all weights (explicit BPTT in the native backward).

    Example:
        >>> out, h_n = elman_sequence(x, None, cell.weight_ih, cell.weight_hh,
        ...                           cell.bias_ih, cell.bias_hh, "tanh")
    """
    try:
        act = _ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(
            f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
        ) from None
    H = weight_hh.shape[-1]
    h0 = _zeros_state(x, H) if h0 is None else h0
    _, _, _, _, lengths = _check(
        "elman_sequence", x, (h0,), weight_ih, weight_hh, bias_ih, bias_hh, 1, lengths
    )
    _require()
    out, h_n, _, _ = torch.ops.rnnkit.elman_fwd(
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, act, lengths
    )
    return out, h_n


def gru_sequence(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, reset_after=True, lengths=None):
    """Run a GRU (gates r, z, n) over a whole sequence.

    reset_after=True is PyTorch's form, n = tanh(W_in x + b_in + r * (W_hn h + b_hn));
    reset_after=False is Cho et al. 2014 / Keras, n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
    h' = (1 - z) * n + z * h.

    Args:
        x: (B, T, D); h0: (B, H) or None; weight_ih: (3H, D); weight_hh: (3H, H);
        bias_ih, bias_hh: (3H,) or None; lengths: as in ``elman_sequence``.

    Returns:
        out (B, T, H) and h_n (B, H), differentiable w.r.t. x, h0 and all weights.
    """
    H = weight_hh.shape[-1]
    h0 = _zeros_state(x, H) if h0 is None else h0
    _, _, _, _, lengths = _check(
        "gru_sequence", x, (h0,), weight_ih, weight_hh, bias_ih, bias_hh, 3, lengths
    )
    _require()
    out, h_n, _, _, _ = torch.ops.rnnkit.gru_fwd(
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, bool(reset_after), lengths
    )
    return out, h_n


def lstm_sequence(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths=None):
    """Run an LSTM (gates i, f, g, o; base form) over a whole sequence.

    c' = f * c + i * g; h' = o * tanh(c').

    Args:
        x: (B, T, D); h0, c0: (B, H) or None; weight_ih: (4H, D); weight_hh: (4H, H);
        bias_ih, bias_hh: (4H,) or None; lengths: as in ``elman_sequence``.

    Returns:
        out (B, T, H) and (h_n, c_n), each (B, H), differentiable w.r.t. x, h0, c0 and all
        weights.
    """
    H = weight_hh.shape[-1]
    h0 = _zeros_state(x, H) if h0 is None else h0
    c0 = _zeros_state(x, H) if c0 is None else c0
    _, _, _, _, lengths = _check(
        "lstm_sequence", x, (h0, c0), weight_ih, weight_hh, bias_ih, bias_hh, 4, lengths
    )
    _require()
    out, h_n, c_n, _, _, _ = torch.ops.rnnkit.lstm_fwd(
        x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths
    )
    return out, (h_n, c_n)
