"""The LSTM forward's fused step (csrc/cells.h rk_lstm_step, AVX-512, float32 only).

`lstm_configure(mode)` picks the forward's step: 0 the GEMM into the gate rows then the row pass
(what ran before), 1 the fused tile after the input projection's GEMM, 2 the fused tile over x and
h. Every mode must give the float64 result (which never takes the fused tile) to float rounding,
outputs and all gradients (the backward reads the activated gates the tile stored), for hidden
sizes that fill whole 16-unit blocks and ragged ones, batch rows in whole 4-row tiles and ragged
tails, on one thread and split over two. With lengths the forward keeps the GEMM path.
`lstm_block_configure((kc, mr))` K-blocks the tile (session 11): kc rows of op(W) a block (0: the
unblocked session 9 tile), the sums carried between blocks, with 4- or 6-row tiles; mode 3 picks
the mode by shape and CPU.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

import pytest
import torch

from rnnkit import kernels
from rnnkit.kernels.sequence import lib


@pytest.fixture(scope="module", autouse=True)
def _need_kernels():
    assert kernels.available(), kernels.available().reason


@contextmanager
def configured(threads: int, mode: int):
    module = lib()
    with ExitStack() as undo:
        undo.callback(torch.set_num_threads, torch.get_num_threads())
        undo.callback(module.lstm_configure, module.lstm_configure(mode))
        torch.set_num_threads(threads)
        yield


def _outputs_and_grads(B, T, D, H, dtype, lengths=None):
    g = torch.Generator().manual_seed(0)
    k = H**-0.5

    def rand(*shape, scale=1.0):
        t = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * scale
        return t.to(dtype).requires_grad_()

    ps = [rand(4 * H, D, scale=k), rand(4 * H, H, scale=k), rand(4 * H, scale=k), rand(4 * H)]
    x, h0, c0 = rand(B, T, D), rand(B, H), rand(B, H)
    out, (h, c) = kernels.lstm_sequence(x, h0, c0, *ps, lengths=lengths)
    outs = [out, h, c]
    loss = sum(
        (o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(dtype)).sum() for o in outs
    )
    grads = torch.autograd.grad(loss, [x, h0, c0, *ps])
    return [t.detach().double() for t in [*outs, *grads]]


@contextmanager
def blocked(kc: int, mr: int):
    module = lib()
    old = module.lstm_block_configure((kc, mr))
    try:
        yield
    finally:
        module.lstm_block_configure(old)


def _check(B, T, D, H, threads, lengths=None, modes=(0, 1, 2, 3)):
    with configured(threads, 0):
        want = _outputs_and_grads(B, T, D, H, torch.float64, lengths)
    for mode in modes:
        with configured(threads, mode):
            got = _outputs_and_grads(B, T, D, H, torch.float32, lengths)
        for a, w in zip(got, want, strict=True):
            torch.testing.assert_close(a, w, rtol=1e-4, atol=1e-5, msg=f"mode {mode}")


# H 16, 64: whole unit blocks; 5, 37, 97: ragged. B 19: two threads get 10 and 9 rows, 4-row
# tiles and a ragged tail; 1 and 3: a tail only. D != H.
@pytest.mark.parametrize("H", [5, 16, 37, 64, 97])
@pytest.mark.parametrize("threads", [1, 2])
def test_fused_lstm_step_matches_float64(H, threads):
    _check(19, 6, 11, H, threads)


@pytest.mark.parametrize("B", [1, 3, 8])
def test_fused_lstm_step_small_batches(B):
    _check(B, 4, 7, 20, 2)


# kc 16 with D = 11: blocks that end inside the x part, cross into h and end short of K; kc 0:
# the session 9 tile; 6-row tiles leave tails of 1 .. 5 rows (B 19 on two threads: 10 and 9).
@pytest.mark.parametrize("kc, mr", [(16, 6), (16, 4), (48, 6), (0, 6)])
@pytest.mark.parametrize("threads", [1, 2])
def test_fused_lstm_step_k_blocked_matches_float64(kc, mr, threads):
    with blocked(kc, mr):
        _check(19, 5, 11, 37, threads, modes=(1, 2))
        _check(23, 3, 40, 64, threads, modes=(1, 2))


def test_lstm_block_configure_returns_the_old_setting():
    module = lib()
    old = module.lstm_block_configure((-1, -1))
    assert old[0] > 0 and old[1] in (4, 6)
    assert module.lstm_block_configure((32, 4)) == old
    assert module.lstm_block_configure(old) == (32, 4)


def test_fused_lstm_step_with_lengths_keeps_the_gemm_path():
    _check(5, 6, 7, 20, 2, lengths=torch.tensor([6, 2, 4, 6, 1]))


def test_fused_lstm_step_matches_torch_nn_inference():
    torch.manual_seed(0)
    mod = torch.nn.LSTM(48, 64, batch_first=True)
    x = torch.randn(32, 20, 48)
    with torch.no_grad():
        want, (hw, cw) = mod(x)
        with configured(2, 2):
            out, (h, c) = kernels.lstm_sequence(
                x, None, None, mod.weight_ih_l0, mod.weight_hh_l0, mod.bias_ih_l0, mod.bias_hh_l0
            )
    torch.testing.assert_close(out, want, rtol=1e-5, atol=2e-6)
    torch.testing.assert_close(h, hw[0], rtol=1e-5, atol=2e-6)
    torch.testing.assert_close(c, cw[0], rtol=1e-5, atol=2e-6)


def test_lstm_configure_returns_the_old_mode():
    module = lib()
    old = module.lstm_configure(-1)
    assert old in (0, 1, 2, 3)
    assert module.lstm_configure(1) == old
    assert module.lstm_configure(old) == 1
