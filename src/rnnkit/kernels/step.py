"""Streaming single-step kernels for stateful inference (no autograd), batch 1-8.

One native call per step: both projections and the gate math. They mirror the Cell contract,
``y_t, state = step(x_t, state, ...)``. Shapes: x_t (B, D), h and c (B, H), weights as in
``sequence``.

Why a cache: at B <= 8 a step reads every weight once, so the kernel wants W^T (rows of G*H
contiguous) and the per-call Python work must be tiny. The first call with a set of weights
validates them and keeps W_ih^T, W_hh^T; later calls only check that each weight is still the
same tensor, storage and version (``_version`` moves on every in-place update such as an
optimizer step), so an updated weight is re-read, never served stale.
"""

from __future__ import annotations

import torch

from .sequence import _ACTIVATIONS, lib

_F32 = torch.float32
_F64 = torch.float64
_grad_enabled = torch.is_grad_enabled
_CACHE_SIZE = 16
_cache: dict = {}


class _Prepared:
    """Validated weights of one cell: transposed copies and the biases' pointers."""

    __slots__ = ("refs", "stamp", "wih_t", "whh_t", "args", "D", "H", "dtype", "code",
                 "x_stride", "h_stride")

    def __init__(self, name, weight_ih, weight_hh, bias_ih, bias_hh, gates):
        H = weight_hh.shape[-1]
        D = weight_ih.shape[-1] if weight_ih.dim() == 2 else -1
        shapes = {
            "weight_ih": (weight_ih, (gates * H, D)), "weight_hh": (weight_hh, (gates * H, H)),
            "bias_ih": (bias_ih, (gates * H,)), "bias_hh": (bias_hh, (gates * H,)),
        }
        for key, (t, shape) in shapes.items():
            if t is None:
                continue
            if tuple(t.shape) != shape:
                raise ValueError(f"{name}: {key} must have shape {shape}, got {tuple(t.shape)}")
            if t.dtype not in (_F32, _F64) or t.dtype != weight_hh.dtype:
                raise TypeError(f"{name}: {key} is {t.dtype}; weights must all be float32 or "
                                "all float64")
            if t.device.type != "cpu":
                raise ValueError(f"{name}: fused kernels run on the CPU; {key} is on {t.device}")
        self.refs = (weight_ih, weight_hh, bias_ih, bias_hh)  # keeps ids from being reused
        self.stamp = _stamp(weight_ih, weight_hh, bias_ih, bias_hh)
        with torch.no_grad():
            self.wih_t = weight_ih.detach().t().contiguous()  # (D, G*H)
            self.whh_t = weight_hh.detach().t().contiguous()  # (H, G*H)
            b = [None if t is None else t.detach().contiguous() for t in (bias_ih, bias_hh)]
        self.args = (self.wih_t.data_ptr(), self.whh_t.data_ptr(),
                     0 if b[0] is None else b[0].data_ptr(), 0 if b[1] is None else b[1].data_ptr())
        self.refs += tuple(b)
        self.D, self.H, self.dtype = D, H, weight_hh.dtype
        self.code = 0 if self.dtype is _F32 else 1
        self.x_stride, self.h_stride = (D, 1), (H, 1)


def _stamp(weight_ih, weight_hh, bias_ih, bias_hh):
    # Written out (no loop, no generator): this runs on every step and costs ~0.1 us a read.
    return (
        weight_ih.data_ptr(), weight_ih._version, weight_hh.data_ptr(), weight_hh._version,
        0 if bias_ih is None else bias_ih.data_ptr(), 0 if bias_hh is None else bias_hh.data_ptr(),
    )


def _prepared(name, weight_ih, weight_hh, bias_ih, bias_hh, gates) -> _Prepared:
    key = (id(weight_ih), id(weight_hh), id(bias_ih), id(bias_hh), gates)
    p = _cache.get(key)
    if p is None or p.stamp != _stamp(weight_ih, weight_hh, bias_ih, bias_hh):
        p = _Prepared(name, weight_ih, weight_hh, bias_ih, bias_hh, gates)
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[key] = p
    return p


def _check_io(name, p: _Prepared, x_t, states, weights):
    """Raise unless x_t (B, D) and the states (B, H) fit the weights; returns B."""
    if torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x_t, *states, *weights)
    ):
        raise ValueError(f"{name} is for inference and records no autograd history; call it "
                         "under torch.no_grad() (use the *_sequence kernels to train)")
    if x_t.dim() != 2 or x_t.shape[1] != p.D:
        raise ValueError(f"{name}: x_t must be (B, {p.D}), got shape {tuple(x_t.shape)}")
    B = x_t.shape[0]
    for i, s in enumerate(states):
        if tuple(s.shape) != (B, p.H):
            raise ValueError(f"{name}: state[{i}] must have shape {(B, p.H)}, got "
                             f"{tuple(s.shape)}")
        if s.dtype != p.dtype or not s.is_contiguous() or s.device.type != "cpu":
            raise ValueError(f"{name}: state[{i}] must be a contiguous {p.dtype} CPU tensor")
    if x_t.dtype != p.dtype or x_t.stride(1) != 1 or x_t.device.type != "cpu":
        raise ValueError(f"{name}: x_t must be a {p.dtype} CPU tensor with contiguous rows")
    return B


def _fast(p: _Prepared, x_t, h) -> bool:
    # The common case in a few attribute reads; anything else goes through _check_io.
    # x_t.stride() == (D, 1) also pins x_t to 2-D; h.stride() == (H, 1) with the shape check
    # makes h contiguous.
    return (x_t.dtype is p.dtype and h.dtype is p.dtype and not _grad_enabled()
            and x_t.stride() == p.x_stride and h.stride() == p.h_stride
            and h.shape[0] == x_t.shape[0])


def elman_step(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh, activation="tanh"):
    """One Elman step without autograd.

    Args:
        x_t: (B, D); h: (B, H); weights (H, D), (H, H); biases (H,) or None;
        activation: "tanh", "sigmoid", "relu" or "identity".

    Returns:
        (y_t, h_new): the same new (B, H) tensor twice, as a cell returns (output, state).
    """
    p = _prepared("elman_step", weight_ih, weight_hh, bias_ih, bias_hh, 1)
    if not _fast(p, x_t, h):
        _check_io("elman_step", p, x_t, (h,), (weight_ih, weight_hh, bias_ih, bias_hh))
    act = _ACTIVATIONS.get(activation)
    if act is None:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    out = torch.empty_like(h)
    lib().elman_step(p.code, x_t.shape[0], p.D, p.H, act, x_t.data_ptr(), x_t.stride(0),
                     h.data_ptr(), *p.args, out.data_ptr())
    return out, out


def gru_step(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after=True):
    """One GRU step without autograd (gates r, z, n; both forms as in ``gru_sequence``).

    Args:
        x_t: (B, D); h: (B, H); weights (3H, D), (3H, H); biases (3H,) or None.

    Returns:
        (y_t, h_new): the same new (B, H) tensor twice.
    """
    p = _prepared("gru_step", weight_ih, weight_hh, bias_ih, bias_hh, 3)
    if not _fast(p, x_t, h):
        _check_io("gru_step", p, x_t, (h,), (weight_ih, weight_hh, bias_ih, bias_hh))
    out = torch.empty_like(h)
    lib().gru_step(p.code, x_t.shape[0], p.D, p.H, 1 if reset_after else 0, x_t.data_ptr(),
                   x_t.stride(0), h.data_ptr(), *p.args, out.data_ptr())
    return out, out


def lstm_step(x_t, state, weight_ih, weight_hh, bias_ih, bias_hh):
    """One LSTM step without autograd (gates i, f, g, o; base form).

    Args:
        x_t: (B, D); state: (h, c), each (B, H); weights (4H, D), (4H, H); biases (4H,) or None.

    Returns:
        (y_t, (h_new, c_new)) with y_t the same tensor as h_new.
    """
    h, c = state
    p = _prepared("lstm_step", weight_ih, weight_hh, bias_ih, bias_hh, 4)
    if not (_fast(p, x_t, h) and c.dtype is p.dtype and c.shape == h.shape
            and c.is_contiguous()):
        _check_io("lstm_step", p, x_t, (h, c), (weight_ih, weight_hh, bias_ih, bias_hh))
    h_new = torch.empty_like(h)
    c_new = torch.empty_like(c)
    lib().lstm_step(p.code, x_t.shape[0], p.D, p.H, x_t.data_ptr(), x_t.stride(0), h.data_ptr(),
                    c.data_ptr(), *p.args, h_new.data_ptr(), c_new.data_ptr())
    return h_new, (h_new, c_new)
