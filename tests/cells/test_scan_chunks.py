"""`chunked_scan` block by block: its forward and its hand-written backward (the adjoint
recurrence) against one scan over the whole sequence, and gradcheck in float64."""

from __future__ import annotations

import pytest
import torch

from rnnkit.cells.scan import chunked_scan, linear_scan, log_scan


def inputs(kind: str, T: int = 23):
    """(a, b, h0) for each form: log a, log b (log); real varying a; complex time-invariant a."""
    g = torch.Generator().manual_seed(0)
    B, N = 2, 3
    if kind == "log":
        a = -torch.nn.functional.softplus(torch.randn(B, T, N, generator=g, dtype=torch.float64))
        return (
            a,
            torch.randn(B, T, N, generator=g, dtype=torch.float64),
            torch.randn(B, N, generator=g, dtype=torch.float64),
        )
    if kind == "real":
        a = torch.rand(B, T, N, generator=g, dtype=torch.float64) * 2 - 1
        return (
            a,
            torch.randn(B, T, N, generator=g, dtype=torch.float64),
            torch.randn(B, N, generator=g, dtype=torch.float64),
        )
    lam = torch.polar(
        torch.rand(1, 1, N, generator=g, dtype=torch.float64) * 0.5 + 0.49,
        torch.rand(1, 1, N, generator=g, dtype=torch.float64) * 3,
    )
    b = torch.randn(B, T, N, generator=g, dtype=torch.complex128)
    return lam, b, torch.randn(B, N, generator=g, dtype=torch.complex128)


@pytest.mark.parametrize("kind", ["log", "real", "complex"])
def test_blocks_equal_one_scan_outputs_and_gradients(kind):
    a, b, h0 = inputs(kind)
    one_shot = log_scan if kind == "log" else linear_scan
    results = []
    for scan in (lambda *t: chunked_scan(*t, log=kind == "log", block=5), one_shot):
        leaves = [t.clone().requires_grad_() for t in (a, b, h0)]
        h = scan(*leaves)
        weight = torch.linspace(-1, 2, h.shape[1], dtype=torch.float64)[None, :, None]
        loss = (h.abs().square() * weight).sum()
        results.append((h, *torch.autograd.grad(loss, leaves)))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["log", "real", "complex"])
def test_gradcheck_across_blocks(kind):
    a, b, h0 = (t.requires_grad_() for t in inputs(kind, T=9))
    assert torch.autograd.gradcheck(
        lambda *t: chunked_scan(*t, log=kind == "log", block=4), (a, b, h0)
    )


def test_without_grad_the_blocks_give_the_same_states():
    a, b, h0 = inputs("log", T=40)
    with torch.no_grad():
        torch.testing.assert_close(chunked_scan(a, b, h0, log=True, block=16), log_scan(a, b, h0))
