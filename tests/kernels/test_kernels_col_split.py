"""The recurrence split by gate columns over threads (large W_hh; forced here with threshold 0).

Each thread owns a block of the state's columns for every batch row and meets the others at one
barrier per step. Checked against one thread (which never splits by columns), against torch.nn,
and by float64 gradcheck of the split path itself, on odd sizes with per-sequence lengths.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck

from rnnkit import kernels
from rnnkit.kernels.sequence import lib

# gru_cho (reset_after=False) needs all of r * h between its two GEMMs: it keeps the batch split
GATES = {"elman": 1, "gru": 3, "gru_cho": 3, "lstm": 4}
CELLS = ["elman", "gru", "lstm"]


@pytest.fixture(scope="module", autouse=True)
def _need_kernels():
    assert kernels.available(), kernels.available().reason


@contextmanager
def threads(n: int, col_bytes: int):
    """torch threads and the column-split threshold for the block, both restored after."""
    module, old_threads = lib(), torch.get_num_threads()
    old = module.col_configure(col_bytes)
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        module.col_configure(old)


def _inputs(cell, B, T, D, H, dtype=torch.float32):
    torch.manual_seed(0)
    k = H**-0.5
    G = GATES[cell]
    ps = [torch.empty(G * H, s, dtype=dtype).uniform_(-k, k).requires_grad_() for s in (D, H)]
    ps += [torch.empty(G * H, dtype=dtype).uniform_(-k, k).requires_grad_() for _ in range(2)]
    x = torch.randn(B, T, D, dtype=dtype, requires_grad=True)
    states = [torch.randn(B, H, dtype=dtype, requires_grad=True) for _ in range(cell == "lstm")]
    h0 = torch.randn(B, H, dtype=dtype, requires_grad=True)
    return x, [h0, *states], ps


def _run(cell, x, states, ps, lengths):
    if cell == "elman":
        out, h = kernels.elman_sequence(x, *states, *ps, activation="tanh", lengths=lengths)
        return [out, h]
    if cell in ("gru", "gru_cho"):
        out, h = kernels.gru_sequence(x, *states, *ps, cell == "gru", lengths=lengths)
        return [out, h]
    out, (h, c) = kernels.lstm_sequence(x, *states, *ps, lengths=lengths)
    return [out, h, c]


def _outputs_and_grads(cell, x, states, ps, lengths):
    outs = _run(cell, x, states, ps, lengths)
    g = torch.Generator().manual_seed(1)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs)
    return [o.detach() for o in outs], torch.autograd.grad(loss, [x, *states, *ps])


@pytest.mark.parametrize("cell", [*CELLS, "gru_cho"])
@pytest.mark.parametrize("H", [37, 40])  # 37: blocks of single columns; 40: 16-wide + ragged
def test_column_split_matches_one_thread(cell, H):
    B, T, D = 3, 6, 5
    x, states, ps = _inputs(cell, B, T, D, H)
    lengths = torch.tensor([T, 2, 4])
    with threads(2, 0):
        split = _outputs_and_grads(cell, x, states, ps, lengths)
    with threads(1, 0):
        one = _outputs_and_grads(cell, x, states, ps, lengths)
    for a, b in zip([*split[0], *split[1]], [*one[0], *one[1]], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # past its length a sequence's output is zero and its state is the one at its last step
    assert split[0][0][1, 2:].abs().max() == 0
    torch.testing.assert_close(split[0][1][1], split[0][0][1, 1])


@pytest.mark.parametrize("cell", CELLS)
def test_column_split_matches_torch_nn(cell):
    B, T, H = 4, 5, 37
    x, states, ps = _inputs(cell, B, T, H, H)
    mod = {"elman": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell](H, H, batch_first=True)
    with torch.no_grad():
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        for name, p in zip(names, ps, strict=True):
            getattr(mod, name).copy_(p)
    st = tuple(s.unsqueeze(0) for s in states)
    ref_out, _ = mod(x, st if cell == "lstm" else st[0])
    with threads(2, 0):
        out = _run(cell, x, states, ps, None)[0]
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_column_split_gradcheck(cell):
    B, T, D, H = 3, 4, 2, 5
    x, states, ps = _inputs(cell, B, T, D, H, dtype=torch.float64)
    lengths = torch.tensor([4, 1, 3])

    def f(x, *rest):
        n = len(states)
        return tuple(_run(cell, x, list(rest[:n]), list(rest[n:]), lengths))

    with threads(2, 0):
        assert gradcheck(f, (x, *states, *ps))
