"""The kernels' block cache (csrc/pool.h): large scratch and outputs reuse released memory.

Reused blocks hold whatever the last call left there, so these check that repeated calls with
changing shapes (growing and shrinking B and T), on one and two threads, still match torch.nn,
that a cached block full of NaN from an earlier call does not leak into a later call with
lengths, that two Python threads calling at once are each correct, and that the cap bounds
what the cache keeps.
"""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from rnnkit import kernels
from rnnkit.kernels.sequence import lib
from rnnkit.training.trainer import _denormals_flushed

H, D = 96, 32  # the LSTM's gates at B=32, T=64 are 3 MB: past the cache's 1 MB floor
TORCH = {"gru": nn.GRU, "lstm": nn.LSTM}


@pytest.fixture(scope="module", autouse=True)
def _need_kernels():
    assert kernels.available(), kernels.available().reason
    # torch.nn's GRU backward on CPU slows ~10x on subnormals, which these weights produce
    with _denormals_flushed(True):
        yield


def _pair(cell: str):
    torch.manual_seed(0)
    return TORCH[cell](D, H, batch_first=True)


def _fused(cell, mod, x, lengths=None):
    w = (mod.weight_ih_l0, mod.weight_hh_l0, mod.bias_ih_l0, mod.bias_hh_l0)
    if cell == "lstm":
        return kernels.lstm_sequence(x, None, None, *w, lengths=lengths)[0]
    return kernels.gru_sequence(x, None, *w, True, lengths=lengths)[0]


def _check(cell, mod, B, T, lengths=None):
    """Forward and backward of the fused kernels against torch.nn at (B, T)."""
    x = torch.randn(B, T, D, requires_grad=True)
    g = torch.randn(B, T, H)
    out = _fused(cell, mod, x, lengths)
    dx, dw = torch.autograd.grad(out, (x, mod.weight_hh_l0), g)
    if lengths is None:
        ref = mod(x)[0]
    else:
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths, batch_first=True, enforce_sorted=False
        )
        ref = nn.utils.rnn.pad_packed_sequence(mod(packed)[0], batch_first=True, total_length=T)[0]
    rdx, rdw = torch.autograd.grad(ref, (x, mod.weight_hh_l0), g)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(dx, rdx, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(dw, rdw, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_changing_shapes_reuse_blocks_and_match_torch(cell, threads):
    mod, old = _pair(cell), torch.get_num_threads()
    hits0 = lib().pool_configure(-1)[2]
    torch.set_num_threads(threads)
    try:
        for B, T in ((8, 16), (32, 48), (16, 24), (32, 40), (4, 8)):
            _check(cell, mod, B, T)
    finally:
        torch.set_num_threads(old)
    assert lib().pool_configure(-1)[2] > hits0  # the later calls did take cached blocks


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_cached_nan_does_not_reach_a_call_with_lengths(cell):
    mod = _pair(cell)
    x = torch.full((32, 64, D), float("nan"), requires_grad=True)
    out = _fused(cell, mod, x)
    torch.autograd.grad(out, x, torch.full_like(out, float("nan")))  # NaN scratch released
    lengths = torch.randint(1, 65, (32,))
    lengths[0] = 30  # no row runs all 64 steps: the tail steps are never computed
    lengths[1:] = lengths[1:].clamp(max=50)
    _check(cell, mod, 32, 64, lengths)


def test_two_python_threads_at_once_are_each_correct():
    mod, errors = _pair("lstm"), []

    def work(seed):
        try:
            g = torch.Generator().manual_seed(seed)
            for _ in range(4):
                B, T = (int(v) for v in torch.randint(8, 40, (2,), generator=g))
                x = torch.randn(B, T, D, generator=g)
                with torch.no_grad():
                    torch.testing.assert_close(
                        _fused("lstm", mod, x), mod(x)[0], atol=2e-5, rtol=1e-4
                    )
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(s,)) for s in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors


def test_cap_bounds_the_idle_bytes():
    module, mod = lib(), _pair("lstm")
    old = module.pool_configure(0)[0]
    try:
        assert module.pool_configure(-1)[1] == 0  # cap 0 freed every idle block
        _check("lstm", mod, 32, 64)
        assert module.pool_configure(-1)[1] == 0  # and keeps none after a call
        module.pool_configure(4 << 20)
        _check("lstm", mod, 32, 64)
        assert 0 < module.pool_configure(-1)[1] <= 4 << 20
    finally:
        module.pool_configure(old)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_own_gemm_packs_reuse_mapped_pages(cell):
    """With the own GEMM (gemm.cpp), its packed op(B) blocks come from the cache too: at
    H = D = 512 each is 3-4 MB (768-1024 pages) and a training step packs four (W_ih and W_hh,
    forward and backward), which faulted in on every call when they were posix_memalign'd
    (session 7: ~13,000 faults a call at (64, 100, 512)). Repeated calls now fault almost none."""
    import resource

    module = lib()
    old, threads = module.gemm_configure(1)[0], torch.get_num_threads()
    if not module.gemm_configure(-1)[0]:
        module.gemm_configure(old)
        pytest.skip("no AVX-512F: the own GEMM cannot run")
    torch.manual_seed(0)
    mod = TORCH[cell](512, 512, batch_first=True)
    w = (mod.weight_ih_l0, mod.weight_hh_l0, mod.bias_ih_l0, mod.bias_hh_l0)
    x = torch.randn(16, 16, 512)

    def call():
        if cell == "lstm":
            out = kernels.lstm_sequence(x, None, None, *w)[0]
        else:
            out = kernels.gru_sequence(x, None, *w, True)[0]
        torch.autograd.grad(out.sum(), w)

    try:
        torch.set_num_threads(1)
        call()
        call()
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(3):
            call()
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 3
    finally:
        module.gemm_configure(old)
        torch.set_num_threads(threads)
    assert faults < 256, f"{faults:.0f} minor page faults a call"
