"""UORO is unbiased: the mean of many independent estimates converges to the true gradient.

The statistical test: G groups of K independent UORO runs over the same sequence (the K runs
are the K rows of one batch, each with its own random signs). Each group mean is close to
normal (CLT), so t = (mean of group means − true) / (standard error across groups) has
Student's t distribution with G − 1 degrees of freedom per component if UORO is unbiased. We
require max |t| < 5 over all P components (per component P(|t| > 5) ≈ 1e-4 at 19 d.o.f., so
< 1% for P ≈ 40 even before seeding; the seed makes the test deterministic). The same test
applied against a biased target — the one-step-truncated gradient — must fail, which shows
the test has the power to catch a biased estimator.
"""

from __future__ import annotations

import pytest
import torch

from rnnkit.algorithms.rtrl import RecurrentStep
from rnnkit.algorithms.uoro import UORO
from rnnkit.cells import ElmanCell, GRUCell, LSTMCell

D, H, T = 2, 3, 5


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids contention on a shared 2-core machine (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


G, K = 20, 400
T_LIMIT = 5.0

# torch.func's jvp scripts a decomposition once, which warns on torch 2.13; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


def true_and_truncated(core, x, c):
    """BPTT gradient of Σ_t c_t·y_t, and the gradient with no flow through h_{t-1}."""
    fn = RecurrentStep(core)
    flat = lambda gs: torch.cat([g.reshape(-1) for g in gs])  # noqa: E731
    s, loss, loss_trunc = fn.init_state(1, dtype=x.dtype), 0.0, 0.0
    params = tuple(fn.params)
    for t in range(T):
        s_trunc = fn.batched(params, s.detach(), x[:, t])
        s = fn.batched(params, s, x[:, t])
        loss = loss + (s[:, fn.out_slice] * c[t]).sum()
        loss_trunc = loss_trunc + (s_trunc[:, fn.out_slice] * c[t]).sum()
    return flat(torch.autograd.grad(loss, params)), flat(torch.autograd.grad(loss_trunc, params))


def group_means(core, x, c, seed, rescale=True):
    gen = torch.Generator().manual_seed(seed)
    alg = UORO(core, generator=gen, rescale=rescale)
    means = []
    for _ in range(G):
        for p in alg.params:
            p.grad = None
        alg.reset(K)
        for t in range(T):
            y = alg.step(x[:, t].expand(K, D))
            alg.backward((y * c[t]).sum())
        means.append(torch.cat([p.grad.reshape(-1) for p in alg.params]) / K)
    return torch.stack(means)  # (G, P)


def t_stat(means, target):
    se = means.std(dim=0) / G**0.5
    return ((means.mean(dim=0) - target) / se).abs().max().item()


@pytest.mark.parametrize("make", [lambda: ElmanCell(D, H), lambda: GRUCell(D, H)])
def test_uoro_is_unbiased(make):
    torch.manual_seed(0)
    core = make().double()
    x = torch.randn(1, T, D, dtype=torch.float64)
    c = torch.randn(T, H, dtype=torch.float64)
    true, truncated = true_and_truncated(core, x, c)
    means = group_means(core, x, c, seed=1)
    assert t_stat(means, true) < T_LIMIT
    # Power: a biased estimator whose mean is the truncated gradient would fail the same test.
    assert t_stat(means, truncated) > T_LIMIT
    rel = (means.mean(0) - true).norm() / true.norm()
    assert rel < 0.05, rel


def test_rho_scaling_reduces_the_variance():
    """Tallec & Ollivier's ρ0, ρ1 balance the two factors; without them (ρ = 1) the estimate
    stays unbiased but its variance is larger."""
    torch.manual_seed(0)
    core = ElmanCell(D, H).double()
    x = torch.randn(1, T, D, dtype=torch.float64)
    c = torch.randn(T, H, dtype=torch.float64)
    var_scaled = group_means(core, x, c, seed=2).var(0).sum()
    var_plain = group_means(core, x, c, seed=2, rescale=False).var(0).sum()
    assert var_scaled < var_plain, (var_scaled, var_plain)


def test_uoro_rank_one_shapes_and_memory():
    cell = LSTMCell(D, H).double()
    alg = UORO(cell, generator=torch.Generator().manual_seed(0))
    alg.reset(4)
    before = alg.carried_bytes()
    for _ in range(20):
        y = alg.step(torch.randn(4, D, dtype=torch.float64))
        alg.backward(y.sum())
    assert alg.s_tilde.shape == (4, 2 * H) and alg.theta_tilde.shape == (4, alg.fn.P)
    assert alg.carried_bytes() == before == 8 * 4 * (2 * 2 * H + alg.fn.P)
    assert all(torch.isfinite(p.grad).all() for p in alg.params)
