"""Whole-sequence fused kernels with explicit BPTT backward (Elman, GRU, LSTM).

Each public function validates its inputs, then calls a ``torch.autograd.Function`` whose
forward runs the native time loop and whose backward runs the native backward sweep (the
explicit BPTT equations) followed by the weight gradients as a few large GEMMs.

Shapes: x (B, T, D), h0/c0 (B, H), out (B, T, H); weights as in torch.nn (G gates):
weight_ih (G*H, D), weight_hh (G*H, H), bias_ih/bias_hh (G*H,) or None.
Memory saved for backward: x (GRU/LSTM: a (T, B, D) time-major copy; Elman: x itself), the
states (T+1, B, H) (and cells for LSTM; Elman: (B, T, H) batch-major plus h_T), the gate
activations (T, B, G*H) and, for GRU, one more (T, B, H).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ._build import native

_ACTIVATIONS = {"tanh": 0, "sigmoid": 1, "relu": 2, "identity": 3}
_DTYPES = {torch.float32: 0, torch.float64: 1}


def lib():
    """The loaded native module; raises RuntimeError with the build's reason if unavailable."""
    module, status = native()
    if module is None:
        raise RuntimeError(f"rnnkit native kernels are unavailable: {status.reason}")
    return module


def _ptr(t: torch.Tensor | None) -> int:
    return 0 if t is None else t.data_ptr()


def _dtype_code(t: torch.Tensor) -> int:
    try:
        return _DTYPES[t.dtype]
    except KeyError:
        raise TypeError(
            f"fused kernels support float32 and float64, got {t.dtype}; convert with .float()"
        ) from None


def _check(name, x, states, weight_ih, weight_hh, bias_ih, bias_hh, gates, lengths):
    """Validate shapes/dtypes/devices; return (B, T, D, H, lengths or None)."""
    if x.dim() != 3:
        raise ValueError(f"{name}: x must be (B, T, D), got shape {tuple(x.shape)}")
    B, T, D = x.shape
    if weight_hh.dim() != 2 or weight_hh.shape[0] % gates:
        raise ValueError(f"{name}: weight_hh must be ({gates}*H, H), got {tuple(weight_hh.shape)}")
    H = weight_hh.shape[1]
    expect = {
        "weight_ih": (weight_ih, (gates * H, D)),
        "weight_hh": (weight_hh, (gates * H, H)),
        "bias_ih": (bias_ih, (gates * H,)),
        "bias_hh": (bias_hh, (gates * H,)),
    }
    for i, s in enumerate(states):
        expect[f"state[{i}]"] = (s, (B, H))
    for key, (t, shape) in expect.items():
        if t is None:
            continue
        if tuple(t.shape) != shape:
            raise ValueError(f"{name}: {key} must have shape {shape}, got {tuple(t.shape)}")
        if t.dtype != x.dtype:
            raise TypeError(f"{name}: {key} is {t.dtype} but x is {x.dtype}; use one dtype")
        if t.device.type != "cpu":
            raise ValueError(f"{name}: fused kernels run on the CPU; {key} is on {t.device}")
    if x.device.type != "cpu":
        raise ValueError(f"{name}: fused kernels run on the CPU; x is on {x.device}")
    _dtype_code(x)
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
        lengths = lengths.to(device="cpu", dtype=torch.int64)
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > T:
            raise ValueError(f"{name}: lengths must lie in [1, {T}], got min {lo} max {hi}")
        lengths = None if lo == T else lengths.contiguous()
    return B, T, D, H, lengths


def _c(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.contiguous()


def _time_major(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(0, 1).contiguous()  # (T, B, D)


class _ElmanFunction(torch.autograd.Function):
    # Batch-major throughout (see _cells.h): x is used as given (no time-major copy), P
    # (B, T, H) holds the state entering each step and hN (B, H) the last one.
    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias_ih, bias_hh, act, lengths):
        B, T, D = x.shape
        H = weight_hh.shape[1]
        X = x.contiguous()
        w_ih, w_hh, b_ih, b_hh, h0c = map(_c, (weight_ih, weight_hh, bias_ih, bias_hh, h0))
        work = x.new_empty(B, T, H)
        P = x.new_empty(B, T, H)
        hN = x.new_empty(B, H)
        out = x.new_empty(B, T, H)
        lib().elman_fwd(
            _dtype_code(x),
            T,
            B,
            D,
            H,
            act,
            X.data_ptr(),
            w_ih.data_ptr(),
            w_hh.data_ptr(),
            _ptr(b_ih),
            _ptr(b_hh),
            _ptr(lengths),
            h0c.data_ptr(),
            work.data_ptr(),
            P.data_ptr(),
            hN.data_ptr(),
            out.data_ptr(),
            torch.get_num_threads(),
        )
        ctx.save_for_backward(X, w_ih, w_hh, P, hN, lengths)
        ctx.meta = (act, bias_ih is not None, bias_hh is not None)
        return out, hN.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, dout, dhn):
        X, w_ih, w_hh, P, hN, lengths = ctx.saved_tensors
        act, has_bih, has_bhh = ctx.meta
        B, T, D = X.shape
        H = w_hh.shape[1]
        need = ctx.needs_input_grad
        dX = X.new_empty(B, T, D) if need[0] else None
        dh0 = X.new_empty(B, H) if need[1] else None
        dWih = torch.empty_like(w_ih) if need[2] else None
        dWhh = torch.empty_like(w_hh) if need[3] else None
        dbih = X.new_empty(H) if need[4] and has_bih else None
        dbhh = X.new_empty(H) if need[5] and has_bhh else None
        dout, dhn = _c(dout), _c(dhn)
        lib().elman_bwd(
            _dtype_code(X),
            T,
            B,
            D,
            H,
            act,
            X.data_ptr(),
            w_ih.data_ptr(),
            w_hh.data_ptr(),
            _ptr(lengths),
            P.data_ptr(),
            hN.data_ptr(),
            _ptr(dout),
            _ptr(dhn),
            _ptr(dh0),
            _ptr(dX),
            _ptr(dWih),
            _ptr(dWhh),
            _ptr(dbih),
            _ptr(dbhh),
            torch.get_num_threads(),
        )
        return dX, dh0, dWih, dWhh, dbih, dbhh, None, None


class _GRUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias_ih, bias_hh, reset_after, lengths):
        B, T, D = x.shape
        H = weight_hh.shape[1]
        X = _time_major(x)
        w_ih, w_hh, b_ih, b_hh, h0c = map(_c, (weight_ih, weight_hh, bias_ih, bias_hh, h0))
        gates = x.new_empty(T, B, 3 * H)  # r, z, n after the step
        ext = x.new_empty(T, B, H)  # W_hn h + b_hn (reset_after) or r * h (reset before)
        hs = x.new_empty(T + 1, B, H)
        out = x.new_empty(B, T, H)
        lib().gru_fwd(
            _dtype_code(x),
            T,
            B,
            D,
            H,
            int(reset_after),
            X.data_ptr(),
            w_ih.data_ptr(),
            w_hh.data_ptr(),
            _ptr(b_ih),
            _ptr(b_hh),
            _ptr(lengths),
            h0c.data_ptr(),
            gates.data_ptr(),
            hs.data_ptr(),
            ext.data_ptr(),
            out.data_ptr(),
            torch.get_num_threads(),
        )
        ctx.save_for_backward(X, w_ih, w_hh, hs, gates, ext, lengths)
        ctx.meta = (int(reset_after), bias_ih is not None, bias_hh is not None)
        return out, hs[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, dout, dhn):
        X, w_ih, w_hh, hs, gates, ext, lengths = ctx.saved_tensors
        ra, has_bih, has_bhh = ctx.meta
        T, B, D = X.shape
        H = w_hh.shape[1]
        need = ctx.needs_input_grad
        dX = X.new_empty(T, B, D) if need[0] else None
        dh0 = X.new_empty(B, H) if need[1] else None
        dWih = torch.empty_like(w_ih) if need[2] else None
        dWhh = torch.empty_like(w_hh) if need[3] else None
        dbih = X.new_empty(3 * H) if need[4] and has_bih else None
        dbhh = X.new_empty(3 * H) if need[5] and has_bhh else None
        dout, dhn = _c(dout), _c(dhn)
        lib().gru_bwd(
            _dtype_code(X),
            T,
            B,
            D,
            H,
            ra,
            X.data_ptr(),
            w_ih.data_ptr(),
            w_hh.data_ptr(),
            _ptr(lengths),
            hs.data_ptr(),
            gates.data_ptr(),
            ext.data_ptr(),
            _ptr(dout),
            _ptr(dhn),
            _ptr(dh0),
            _ptr(dX),
            _ptr(dWih),
            _ptr(dWhh),
            _ptr(dbih),
            _ptr(dbhh),
            torch.get_num_threads(),
        )
        dx = dX.transpose(0, 1) if dX is not None else None
        return dx, dh0, dWih, dWhh, dbih, dbhh, None, None


class _LSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths):
        B, T, D = x.shape
        H = weight_hh.shape[1]
        X = _time_major(x)
        w_ih, w_hh, b_ih, b_hh, h0c, c0c = map(_c, (weight_ih, weight_hh, bias_ih, bias_hh, h0, c0))
        gates = x.new_empty(T, B, 4 * H)  # i, f, g, o after the step
        hs = x.new_empty(T + 1, B, H)
        cs = x.new_empty(T + 1, B, H)
        out = x.new_empty(B, T, H)
        lib().lstm_fwd(
            _dtype_code(x),
            T,
            B,
            D,
            H,
            X.data_ptr(),
            w_ih.data_ptr(),
            w_hh.data_ptr(),
            _ptr(b_ih),
            _ptr(b_hh),
            _ptr(lengths),
            h0c.data_ptr(),
            c0c.data_ptr(),
            gates.data_ptr(),
            hs.data_ptr(),
            cs.data_ptr(),
            out.data_ptr(),
            torch.get_num_threads(),
        )
        ctx.save_for_backward(X, w_ih, w_hh, hs, cs, gates, lengths)
        ctx.meta = (bias_ih is not None, bias_hh is not None)
        return out, hs[T].clone(), cs[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, dout, dhn, dcn):
        X, w_ih, w_hh, hs, cs, gates, lengths = ctx.saved_tensors
        has_bih, has_bhh = ctx.meta
        T, B, D = X.shape
        H = w_hh.shape[1]
        need = ctx.needs_input_grad
        dX = X.new_empty(T, B, D) if need[0] else None
        dh0 = X.new_empty(B, H) if need[1] else None
        dc0 = X.new_empty(B, H) if need[2] else None
        dWih = torch.empty_like(w_ih) if need[3] else None
        dWhh = torch.empty_like(w_hh) if need[4] else None
        dbih = X.new_empty(4 * H) if need[5] and has_bih else None
        dbhh = X.new_empty(4 * H) if need[6] and has_bhh else None
        dout, dhn, dcn = _c(dout), _c(dhn), _c(dcn)
        lib().lstm_bwd(
            _dtype_code(X),
            T,
            B,
            D,
            H,
            X.data_ptr(),
            w_ih.data_ptr(),
            w_hh.data_ptr(),
            _ptr(lengths),
            hs.data_ptr(),
            cs.data_ptr(),
            gates.data_ptr(),
            _ptr(dout),
            _ptr(dhn),
            _ptr(dcn),
            _ptr(dh0),
            _ptr(dc0),
            _ptr(dX),
            _ptr(dWih),
            _ptr(dWhh),
            _ptr(dbih),
            _ptr(dbhh),
            torch.get_num_threads(),
        )
        dx = dX.transpose(0, 1) if dX is not None else None
        return dx, dh0, dc0, dWih, dWhh, dbih, dbhh, None


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
    return _ElmanFunction.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, act, lengths)


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
    return _GRUFunction.apply(
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, bool(reset_after), lengths
    )


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
    out, h_n, c_n = _LSTMFunction.apply(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths)
    return out, (h_n, c_n)
