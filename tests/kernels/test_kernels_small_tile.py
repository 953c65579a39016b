"""The per-step tile kernel for a small float W_hh (AVX-512, csrc/cells.h rk_small_mul).

With the threshold raised every float32 step GEMM runs in the tile kernel, with it at 0 every
one runs in MKL; both must match the float64 result (which never takes the tile kernel) to
float rounding, for hidden sizes that fill whole 16-float vectors, ragged ones and more than one
64-column block, on one thread and split over two (batch split and column split), with lengths.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

import pytest
import torch

from rnnkit import kernels
from rnnkit.kernels.sequence import lib

GATES = {"elman": 1, "gru": 3, "lstm": 4}


@pytest.fixture(scope="module", autouse=True)
def _need_kernels():
    assert kernels.available(), kernels.available().reason


@contextmanager
def configured(threads: int, small_bytes: int, col_bytes: int = -1):
    """torch threads, the tile-kernel threshold and the column-split threshold, restored after."""
    module = lib()
    with ExitStack() as undo:
        undo.callback(torch.set_num_threads, torch.get_num_threads())
        undo.callback(module.small_configure, module.small_configure(small_bytes))
        undo.callback(module.col_configure, module.col_configure(col_bytes))
        torch.set_num_threads(threads)
        yield


def _run(cell, x, h0, ps, lengths, activation):
    if cell == "elman":
        out, h = kernels.elman_sequence(x, h0, *ps, activation=activation, lengths=lengths)
        return [out, h]
    if cell == "gru":
        out, h = kernels.gru_sequence(x, h0, *ps, lengths=lengths)
        return [out, h]
    out, (h, c) = kernels.lstm_sequence(x, h0, h0.flip(0), *ps, lengths=lengths)
    return [out, h, c]


def _outputs_and_grads(cell, B, T, D, H, dtype, lengths, activation):
    """Outputs and the gradients of a random projection of them (inputs from a fixed seed)."""
    g = torch.Generator().manual_seed(0)
    k = H**-0.5
    G = GATES[cell]

    def rand(*shape, scale=1.0):
        t = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * scale
        return t.to(dtype).requires_grad_()

    ps = [rand(G * H, D, scale=k), rand(G * H, H, scale=k), rand(G * H, scale=k), rand(G * H)]
    x, h0 = rand(B, T, D), rand(B, H)
    outs = _run(cell, x, h0, ps, lengths, activation)
    loss = sum(
        (o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(dtype)).sum() for o in outs
    )
    grads = torch.autograd.grad(loss, [x, h0, *ps])
    return [t.detach().double() for t in [*outs, *grads]]


def _check(cell, B, H, threads, col_bytes=-1, activation="tanh"):
    T, D = 5, 7
    lengths = torch.tensor([T, 2, 4, *([T] * (B - 3))])
    with configured(threads, 1 << 30, col_bytes):
        want = _outputs_and_grads(cell, B, T, D, H, torch.float64, lengths, activation)
        tile = _outputs_and_grads(cell, B, T, D, H, torch.float32, lengths, activation)
    with configured(threads, 0, col_bytes):
        mkl = _outputs_and_grads(cell, B, T, D, H, torch.float32, lengths, activation)
    for a, b, w in zip(tile, mkl, want, strict=True):
        torch.testing.assert_close(a, w, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(b, w, rtol=1e-4, atol=1e-5)


# 16, 64: whole vectors; 1, 5, 37: ragged; 100: a 64-column block and a ragged one
@pytest.mark.parametrize("H", [1, 5, 16, 37, 64, 100])
@pytest.mark.parametrize("threads", [1, 2])
def test_elman_tile_kernel_matches_float64(H, threads):
    # 19 rows: two threads get 10 and 9, tiles of 4 rows and a ragged tail on each
    _check("elman", 19, H, threads)


# the tile kernel applies Elman's activation to its sums before storing them
@pytest.mark.parametrize("activation", ["sigmoid", "relu", "identity"])
def test_elman_tile_kernel_activations(activation):
    _check("elman", 19, 37, 2, activation=activation)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("H", [5, 40])
def test_gated_tile_kernel_matches_float64(cell, H):
    _check(cell, 19, H, 2)


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
def test_tile_kernel_under_the_column_split(cell):
    # each thread's column block is its own op(W) (N = its columns), from column 16 or 17
    _check(cell, 4, 37, 2, col_bytes=0)
