"""Synthetic tasks shared by the model and training tests (small, seeded, fast)."""

from __future__ import annotations

import torch

torch.set_num_threads(1)  # the test machine is shared: one thread is much faster there

DELAY = 3


def sign_of_sum(n: int, g: torch.Generator, t_max: int = 16):
    """Frames (n, T, 1), lengths 4..T, label 1 if the sum over valid steps > 0."""
    lengths = torch.randint(4, t_max + 1, (n,), generator=g)
    x = torch.randn(n, t_max, 1, generator=g)
    mask = torch.arange(t_max)[None, :] < lengths[:, None]
    x = x * mask[..., None]
    y = (x.sum(dim=(1, 2)) > 0).long()
    return x, y, lengths


def delayed_echo(n: int, g: torch.Generator, T: int = 20, V: int = 8):
    """Tokens (n, T); target at t is x_{t-3} (class 0 for the first 3 steps)."""
    x = torch.randint(0, V, (n, T), generator=g)
    y = torch.zeros_like(x)
    y[:, DELAY:] = x[:, :-DELAY]
    return x, y


def countdown(digits: torch.Tensor, bos: int = 10, eos: int = 11):
    """From digit d: d, d-1, ..., 0, EOS (padded with EOS); target lengths d + 2."""
    T = 11
    tgt = torch.full((len(digits), T), eos)
    for i, d in enumerate(digits.tolist()):
        tgt[i, : d + 1] = torch.arange(d, -1, -1)
    return tgt, digits + 2


def reverse_strings(
    n: int, g: torch.Generator, V: int = 8, eos: int = 9, low: int = 5, high: int = 12
):
    """Source ids (n, high) of lengths low..high (padding 0); target reversed + EOS."""
    lengths = torch.randint(low, high + 1, (n,), generator=g)
    src = torch.randint(0, V, (n, high), generator=g)
    tgt = torch.full((n, high + 1), eos)
    for i, n_i in enumerate(lengths.tolist()):
        src[i, n_i:] = 0
        tgt[i, :n_i] = src[i, :n_i].flip(0)
    return src, tgt, lengths, lengths + 1
