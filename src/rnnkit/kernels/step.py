"""Streaming single-step kernels for stateful inference (no autograd), batch 1-8.

Each call is one native call: the two small GEMMs and the gate math, with only the checks
that keep bad input from reaching C. They mirror the Cell contract, ``y_t, state = step(...)``.
Shapes: x_t (B, D), h and c (B, H), weights as in ``sequence``.
"""

from __future__ import annotations

import torch

from .sequence import _ACTIVATIONS, lib

_F32 = torch.float32
_F64 = torch.float64


def _bad(name: str, x_t, states, weight_ih, weight_hh, bias_ih, bias_hh, gates: int) -> str:
    """Describe what is wrong with a step call's arguments ('' when nothing is)."""
    if torch.is_grad_enabled() and any(
        t is not None and t.requires_grad
        for t in (x_t, *states, weight_ih, weight_hh, bias_ih, bias_hh)
    ):
        return (f"{name} is for inference and records no autograd history; call it under "
                "torch.no_grad() (use the *_sequence kernels to train)")
    if x_t.dim() != 2:
        return f"{name}: x_t must be (B, D), got shape {tuple(x_t.shape)}"
    B, D = x_t.shape
    H = weight_hh.shape[-1]
    shapes = {"weight_ih": (weight_ih, (gates * H, D)), "weight_hh": (weight_hh, (gates * H, H)),
              "bias_ih": (bias_ih, (gates * H,)), "bias_hh": (bias_hh, (gates * H,))}
    for i, s in enumerate(states):
        shapes[f"state[{i}]"] = (s, (B, H))
    for key, (t, shape) in shapes.items():
        if t is None:
            continue
        if tuple(t.shape) != shape:
            return f"{name}: {key} must have shape {shape}, got {tuple(t.shape)}"
        if t.dtype != x_t.dtype or t.dtype not in (_F32, _F64):
            return f"{name}: {key} is {t.dtype}, x_t is {x_t.dtype}; use float32 or float64"
        if t.device.type != "cpu":
            return f"{name}: fused kernels run on the CPU; {key} is on {t.device}"
        if not t.is_contiguous():
            return f"{name}: {key} must be contiguous"
    if x_t.stride(1) != 1 or x_t.device.type != "cpu":
        return f"{name}: x_t must be a CPU tensor with contiguous rows"
    return ""


def _ok(x_t, h, weight_ih, weight_hh, gates: int) -> bool:
    """The common case, checked cheaply: float32, contiguous, matching shapes, no grad."""
    return (
        x_t.dtype is _F32 and h.dtype is _F32 and weight_ih.dtype is _F32
        and weight_hh.dtype is _F32 and not torch.is_grad_enabled()
        and h.is_contiguous() and weight_hh.is_contiguous() and weight_ih.is_contiguous()
        and x_t.dim() == 2 and x_t.stride(1) == 1 and x_t.shape[0] == h.shape[0]
        and weight_hh.shape[0] == gates * h.shape[1] and weight_hh.shape[1] == h.shape[1]
        and weight_ih.shape[1] == x_t.shape[1] and weight_ih.shape[0] == weight_hh.shape[0]
    )


def _full_check(name, x_t, states, weight_ih, weight_hh, bias_ih, bias_hh, gates):
    msg = _bad(name, x_t, states, weight_ih, weight_hh, bias_ih, bias_hh, gates)
    if msg:
        raise ValueError(msg)


def _bias_ok(b, n: int, dtype) -> bool:
    return b is None or (b.dtype is dtype and b.shape[0] == n and b.is_contiguous()
                         and b.dim() == 1)


def elman_step(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh, activation="tanh"):
    """One Elman step without autograd.

    Args:
        x_t: (B, D); h: (B, H); weights (H, D), (H, H); biases (H,) or None.

    Returns:
        (y_t, h_new): the same new (B, H) tensor twice, as a cell returns (output, state).
    """
    G = 1
    if not (_ok(x_t, h, weight_ih, weight_hh, G) and _bias_ok(bias_ih, weight_hh.shape[0], h.dtype)
            and _bias_ok(bias_hh, weight_hh.shape[0], h.dtype)):
        _full_check("elman_step", x_t, (h,), weight_ih, weight_hh, bias_ih, bias_hh, G)
    act = _ACTIVATIONS.get(activation)
    if act is None:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    B, D = x_t.shape
    H = h.shape[1]
    out = torch.empty_like(h)
    lib().elman_step(
        0 if h.dtype is _F32 else 1, B, D, H, act, x_t.data_ptr(), x_t.stride(0), h.data_ptr(),
        weight_ih.data_ptr(), weight_hh.data_ptr(),
        0 if bias_ih is None else bias_ih.data_ptr(), 0 if bias_hh is None else bias_hh.data_ptr(),
        out.data_ptr(),
    )
    return out, out


def gru_step(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after=True):
    """One GRU step without autograd (gates r, z, n; see ``gru_sequence`` for both forms).

    Args:
        x_t: (B, D); h: (B, H); weights (3H, D), (3H, H); biases (3H,) or None.

    Returns:
        (y_t, h_new): the same new (B, H) tensor twice.
    """
    if not (_ok(x_t, h, weight_ih, weight_hh, 3) and _bias_ok(bias_ih, weight_hh.shape[0], h.dtype)
            and _bias_ok(bias_hh, weight_hh.shape[0], h.dtype)):
        _full_check("gru_step", x_t, (h,), weight_ih, weight_hh, bias_ih, bias_hh, 3)
    B, D = x_t.shape
    H = h.shape[1]
    out = torch.empty_like(h)
    lib().gru_step(
        0 if h.dtype is _F32 else 1, B, D, H, 1 if reset_after else 0, x_t.data_ptr(),
        x_t.stride(0), h.data_ptr(), weight_ih.data_ptr(), weight_hh.data_ptr(),
        0 if bias_ih is None else bias_ih.data_ptr(), 0 if bias_hh is None else bias_hh.data_ptr(),
        out.data_ptr(),
    )
    return out, out


def lstm_step(x_t, state, weight_ih, weight_hh, bias_ih, bias_hh):
    """One LSTM step without autograd (gates i, f, g, o; base form).

    Args:
        x_t: (B, D); state: (h, c), each (B, H); weights (4H, D), (4H, H); biases (4H,) or None.

    Returns:
        (y_t, (h_new, c_new)) with y_t the same tensor as h_new.
    """
    h, c = state
    if not (_ok(x_t, h, weight_ih, weight_hh, 4) and c.dtype is _F32 and c.is_contiguous()
            and c.shape == h.shape and _bias_ok(bias_ih, weight_hh.shape[0], h.dtype)
            and _bias_ok(bias_hh, weight_hh.shape[0], h.dtype)):
        _full_check("lstm_step", x_t, (h, c), weight_ih, weight_hh, bias_ih, bias_hh, 4)
    B, D = x_t.shape
    H = h.shape[1]
    h_new = torch.empty_like(h)
    c_new = torch.empty_like(c)
    lib().lstm_step(
        0 if h.dtype is _F32 else 1, B, D, H, x_t.data_ptr(), x_t.stride(0), h.data_ptr(),
        c.data_ptr(), weight_ih.data_ptr(), weight_hh.data_ptr(),
        0 if bias_ih is None else bias_ih.data_ptr(), 0 if bias_hh is None else bias_hh.data_ptr(),
        h_new.data_ptr(), c_new.data_ptr(),
    )
    return h_new, (h_new, c_new)
