"""The own AVX-512 GEMM (csrc/gemm.cpp) on the per-step recurrent products.

With gemm_configure(1) and the small tile kernel off, every float32 step GEMM (forward with
op(W) = W_hh^T, backward with W_hh as is) runs in the own packed-panel kernel; outputs and
gradients must match float64 at odd sizes (rows, columns and depth not multiples of the 8 x 48
tile), on one thread and two (batch split and column split), and match the BLAS path.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

import pytest
import torch
from test_kernels_small_tile import _outputs_and_grads

from rnnkit import kernels
from rnnkit.kernels.sequence import lib


@pytest.fixture(scope="module", autouse=True)
def _need_kernels():
    assert kernels.available(), kernels.available().reason


def _own_supported() -> bool:
    module = lib()
    old, _ = module.gemm_configure(1)
    on, _ = module.gemm_configure(old)
    return bool(on)


@contextmanager
def configured(threads: int, own: int, col_bytes: int = -1):
    module = lib()
    with ExitStack() as undo:
        undo.callback(torch.set_num_threads, torch.get_num_threads())
        undo.callback(module.small_configure, module.small_configure(0))
        undo.callback(module.col_configure, module.col_configure(col_bytes))
        undo.callback(module.gemm_configure, module.gemm_configure(own)[0])
        torch.set_num_threads(threads)
        yield


def test_gemm_configure_reports_choice():
    old, text = lib().gemm_configure(-1)
    assert old in (0, 1)
    assert text.startswith(("own (", "blas ("))


# every cell, size and threading at the small sizes; one large case (H = 513) is enough
CASES = [
    (cell, B, H, threads, col_bytes)
    for cell in ("elman", "gru", "lstm")
    for B, H in ((1, 1), (7, 7), (3, 33), (33, 130))
    for threads, col_bytes in ((1, -1), (2, -1), (2, 0))
] + [("gru", 9, 513, 1, -1)]


@pytest.mark.parametrize("cell,B,H,threads,col_bytes", CASES)
def test_own_gemm_matches_float64(cell, B, H, threads, col_bytes):
    if not _own_supported():
        pytest.skip("no AVX-512F: the own GEMM never runs here")
    T, D = 4, 5
    lengths = torch.tensor([T, *([2] * min(B - 1, 1)), *([T] * max(B - 2, 0))][:B])
    with configured(threads, 1, col_bytes):
        want = _outputs_and_grads(cell, B, T, D, H, torch.float64, lengths, "tanh")
        own = _outputs_and_grads(cell, B, T, D, H, torch.float32, lengths, "tanh")
    with configured(threads, 0, col_bytes):
        blas = _outputs_and_grads(cell, B, T, D, H, torch.float32, lengths, "tanh")
    for a, b, w in zip(own, blas, want, strict=True):
        torch.testing.assert_close(a, w, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(b, w, rtol=1e-4, atol=1e-5)


@contextmanager
def routed(bits: int):
    module = lib()
    old = module.gemm_route(bits)
    try:
        yield
    finally:
        module.gemm_route(old)


def test_weight_gradients_route_to_own_gemm_by_default():
    # gemm.h RK_ROUTE_TN: the A^T B weight gradients; RK_ROUTE_THIN (one-row colsum) off
    assert lib().gemm_route(-1) & 3 == 1


# the weight gradients dW = dA^T [x | h] over K = B * T rows reach the own GEMM only when
# K >= 256 and M N K >= 2^20 (cells.h SUF(gemm)): B * T = 9 * 64 = 576 rows (a thread's batch
# share 256 or 320), H = 70, D = 61 (M, N and K not multiples of the 8 x 48 tile or of KC)
@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
@pytest.mark.parametrize("threads", [1, 2])
def test_weight_gradients_in_own_gemm_match_float64(cell, threads):
    if not _own_supported():
        pytest.skip("no AVX-512F: the own GEMM never runs here")
    B, T, D, H = 9, 64, 61, 70
    lengths = torch.tensor([T, 40, *([T] * (B - 2))])
    with configured(threads, 1), routed(0):
        want = _outputs_and_grads(cell, B, T, D, H, torch.float64, lengths, "tanh")
    with configured(threads, 1), routed(1):
        own = _outputs_and_grads(cell, B, T, D, H, torch.float32, lengths, "tanh")
    with configured(threads, 0), routed(1):
        blas = _outputs_and_grads(cell, B, T, D, H, torch.float32, lengths, "tanh")
    for a, b, w in zip(own, blas, want, strict=True):
        torch.testing.assert_close(a, w, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(b, w, rtol=1e-4, atol=1e-4)


def _gru_grads(run, x, h0, ps, lengths, seed=1):
    """Outputs of run(x, h0, ps, lengths) and the float64 gradients of a random projection."""
    x, h0 = x.detach().requires_grad_(), h0.detach().requires_grad_()
    ps = [p.detach().requires_grad_() for p in ps]
    out, h = run(x, h0, ps, lengths)
    g = torch.Generator().manual_seed(seed)
    loss = sum(
        (o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype)).sum()
        for o in (out, h)
    )
    grads = torch.autograd.grad(loss, [x, h0, *ps])
    return [t.detach().double() for t in [out, h, *grads]]


def _kernel_gru(x, h0, ps, lengths):
    return kernels.gru_sequence(x, h0, *ps, lengths=lengths)


def _torch_gru(x, h0, ps, lengths):
    """torch.nn.GRU's formula, row by row up to each length (output zero past it)."""
    B, T, D = x.shape
    H = h0.shape[1]
    w_ih, w_hh, b_ih, b_hh = ps
    outs, hs = [], []
    for b in range(B):
        h, o = h0[b], []
        for t in range(int(lengths[b])):
            gi, gh = w_ih @ x[b, t] + b_ih, w_hh @ h + b_hh
            r = torch.sigmoid(gi[:H] + gh[:H])
            z = torch.sigmoid(gi[H : 2 * H] + gh[H : 2 * H])
            n = torch.tanh(gi[2 * H :] + r * gh[2 * H :])
            h = (1 - z) * n + z * h
            o.append(h)
        o += [torch.zeros(H, dtype=x.dtype)] * (T - len(o))
        outs.append(torch.stack(o))
        hs.append(h)
    return torch.stack(outs), torch.stack(hs)


# The GRU backward (reset_after) where the own GEMM is off (MKL / the BLAS, the default on
# GenuineIntel) keeps its gate gradients in one (T, B, 4H) block [dan | dr dz dn_h] and takes
# the weight gradients transposed (W^T = [h | x]^T dG), transposing them back with W_ih's gate
# blocks reordered; with the own GEMM on or gru_configure(0), the separate blocks as before.
# Each against torch.nn's formula in float64: D > H and D < H (the transposes' shapes), lengths
# (steps past every length zeroed), one thread, the batch split (17 rows: 9 and 8) and the
# column split.
def test_gru_wide_layout_is_the_default():
    assert lib().gru_configure(-1) == 1


@pytest.mark.parametrize("own,wide", [(0, 1), (0, 0), (1, 1)])
@pytest.mark.parametrize("threads,col_bytes", [(1, -1), (2, -1), (2, 0)])
@pytest.mark.parametrize("D,H", [(61, 40), (29, 70)])
def test_gru_gate_layouts_match_torch_formula(own, wide, threads, col_bytes, D, H):
    if own and not _own_supported():
        pytest.skip("no AVX-512F: the own GEMM never runs here")
    B, T = 17, 23
    g = torch.Generator().manual_seed(0)
    k = H**-0.5

    def rand(*shape, scale=1.0):
        return (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * scale

    ps = [rand(3 * H, D, scale=k), rand(3 * H, H, scale=k), rand(3 * H, scale=k), rand(3 * H)]
    x, h0 = rand(B, T, D), rand(B, H)
    lengths = torch.tensor([T, 5, 17, *([T] * (B - 3))])
    want = _gru_grads(_torch_gru, x, h0, ps, lengths)
    module = lib()
    with configured(threads, own, col_bytes), ExitStack() as undo:
        undo.callback(module.gru_configure, module.gru_configure(wide))
        f32 = _gru_grads(_kernel_gru, x.float(), h0.float(), [p.float() for p in ps], lengths)
        f64 = _gru_grads(_kernel_gru, x, h0, ps, lengths)
    for a, b, w in zip(f32, f64, want, strict=True):
        torch.testing.assert_close(a, w, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(b, w, rtol=1e-9, atol=1e-9)
