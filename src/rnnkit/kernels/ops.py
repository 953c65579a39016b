"""Fake (meta) kernels of the torch.ops.rnnkit operators.

The operators, their CPU kernels and their autograd are defined in C++ (csrc/rnnkit.cpp,
step.cpp; the sequence operators' autograd in seq_autograd.cpp: each ``*_fwd`` returns what its
``*_bwd`` needs, and the backward is one call of ``*_bwd``). This module, imported once the
extension is loaded, tells torch what they return without running them (FakeTensor,
torch.export, torch.compile, dynamo). Gradients of the backward ops themselves are not defined.

Shapes: x (B, T, D), states (B, H), out (B, T, H); G gates (1, 3, 4).
"""

from __future__ import annotations

import torch

_lib = torch.library


def _empty_or(need: bool, like: torch.Tensor, *shape) -> torch.Tensor:
    return like.new_empty(shape) if need else like.new_empty(0)


def _time_major_grad(need: bool, x: torch.Tensor) -> torch.Tensor:
    B, T, D = x.shape  # written (T, B, D) by the kernel, returned as a (B, T, D) view
    return x.new_empty(T, B, D).transpose(0, 1) if need else x.new_empty(0)


# ---- fake kernels ---------------------------------------------------------------------------


@_lib.register_fake("rnnkit::elman_fwd")
def _elman_fwd_fake(x, h0, w_ih, w_hh, b_ih, b_hh, act, lengths):
    B, T, _ = x.shape
    H = w_hh.shape[1]
    return x.new_empty(B, T, H), x.new_empty(B, H), x.new_empty(B, T, H), x.new_empty(B, H)


@_lib.register_fake("rnnkit::elman_bwd")
def _elman_bwd_fake(x, w_ih, w_hh, lengths, P, hN, dout, dhn, act, need):
    B, T, D = x.shape
    H = w_hh.shape[1]
    shapes = ((B, T, D), (B, H), (H, D), (H, H), (H,), (H,))
    return tuple(_empty_or(n, x, *s) for n, s in zip(need, shapes, strict=True))


@_lib.register_fake("rnnkit::gru_fwd")
def _gru_fwd_fake(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, lengths):
    B, T, _ = x.shape
    H = w_hh.shape[1]
    return (
        x.new_empty(B, T, H),
        x.new_empty(B, H),
        x.new_empty(T + 1, B, H),
        x.new_empty(T, B, 3 * H),
        x.new_empty(T, B, H),
    )


@_lib.register_fake("rnnkit::gru_bwd")
def _gru_bwd_fake(x, w_ih, w_hh, lengths, hs, gates, ext, dout, dhn, reset_after, need):
    B, T, D = x.shape
    H = w_hh.shape[1]
    rest = ((B, H), (3 * H, D), (3 * H, H), (3 * H,), (3 * H,))
    grads = (_empty_or(n, x, *s) for n, s in zip(need[1:], rest, strict=True))
    return (_time_major_grad(need[0], x), *grads)


@_lib.register_fake("rnnkit::lstm_fwd")
def _lstm_fwd_fake(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths):
    B, T, _ = x.shape
    H = w_hh.shape[1]
    return (
        x.new_empty(B, T, H),
        x.new_empty(B, H),
        x.new_empty(B, H),
        x.new_empty(T + 1, B, H),
        x.new_empty(T + 1, B, H),
        x.new_empty(T, B, 4 * H),
    )


@_lib.register_fake("rnnkit::lstm_bwd")
def _lstm_bwd_fake(x, w_ih, w_hh, lengths, hs, cs, gates, dout, dhn, dcn, need):
    B, T, D = x.shape
    H = w_hh.shape[1]
    rest = ((B, H), (B, H), (4 * H, D), (4 * H, H), (4 * H,), (4 * H,))
    grads = (_empty_or(n, x, *s) for n, s in zip(need[1:], rest, strict=True))
    return (_time_major_grad(need[0], x), *grads)


@_lib.register_fake("rnnkit::elman_step")
def _elman_step_fake(x, h, wih_t, whh_t, b_ih, b_hh, act):
    return torch.empty_like(h)


@_lib.register_fake("rnnkit::gru_step")
def _gru_step_fake(x, h, wih_t, whh_t, b_ih, b_hh, reset_after):
    return torch.empty_like(h)


@_lib.register_fake("rnnkit::lstm_step")
def _lstm_step_fake(x, h, c, wih_t, whh_t, b_ih, b_hh):
    return torch.empty_like(h), torch.empty_like(c)


# ---- the single-step operators with autograd (csrc/step.cpp; their autograd is in C++) --------


def _step_grads(need, x, h, w_ih, w_hh, with_c: bool) -> tuple:
    G_H, D = w_ih.shape
    H = w_hh.shape[1]
    shapes = [x.shape, h.shape, *([h.shape] if with_c else []), (G_H, D), (G_H, H), (G_H,), (G_H,)]
    return tuple(x.new_empty(s if n else (0,)) for n, s in zip(need, shapes, strict=True))


@_lib.register_fake("rnnkit::elman_step_fwd")
def _elman_step_fwd_fake(x, h, w_ih, w_hh, b_ih, b_hh, wih_t, whh_t, act):
    return torch.empty_like(h)


@_lib.register_fake("rnnkit::elman_step_bwd")
def _elman_step_bwd_fake(dh, x, h, w_ih, w_hh, h_new, act, need):
    return _step_grads(need, x, h, w_ih, w_hh, False)


@_lib.register_fake("rnnkit::gru_step_fwd")
def _gru_step_fwd_fake(x, h, w_ih, w_hh, b_ih, b_hh, wih_t, whh_t, reset_after):
    return torch.empty_like(h), x.new_empty(x.shape[0], 4 * w_hh.shape[1])


@_lib.register_fake("rnnkit::gru_step_bwd")
def _gru_step_bwd_fake(dh, x, h, w_ih, w_hh, saved, reset_after, need):
    return _step_grads(need, x, h, w_ih, w_hh, False)


@_lib.register_fake("rnnkit::lstm_step_fwd")
def _lstm_step_fwd_fake(x, h, c, w_ih, w_hh, b_ih, b_hh, wih_t, whh_t):
    return torch.empty_like(h), torch.empty_like(c), x.new_empty(x.shape[0], 4 * w_hh.shape[1])


@_lib.register_fake("rnnkit::lstm_step_bwd")
def _lstm_step_bwd_fake(dh, dc, x, h, c, w_ih, w_hh, saved, c_new, need):
    return _step_grads(need, x, h, w_ih, w_hh, True)
