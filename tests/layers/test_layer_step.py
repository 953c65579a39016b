"""Recurrent.step's kernel plan (rnnkit.layers.stepping) and the streamer's Python fallback."""

import copy
import io
import warnings

import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.layers.state import leaves


def _stream(layer, x, state=None):
    ys = []
    for t in range(x.shape[1]):
        y, state = layer.step(x[:, t], state)
        ys.append(y)
    return torch.stack(ys, 1), state


@pytest.mark.parametrize("make", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
def test_step_takes_the_kernel_unless_a_gradient_is_wanted(make):
    assert kernels.available(), kernels.available().reason
    torch.manual_seed(0)
    layer = make(3, 5, num_layers=2).eval()
    x = torch.randn(2, 6, 3)
    with torch.no_grad():
        whole, final = layer(x)
    grads = []
    for impl in ("auto", "reference"):  # a gradient wanted: the kernels with autograd, or the cells
        layer.impl = impl
        out, state = _stream(layer, x)
        assert layer.impl_used == ("fused" if impl == "auto" else "reference")
        grads.append(torch.autograd.grad(out.square().sum(), list(layer.parameters())))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    layer.impl = "auto"
    layer.requires_grad_(False)  # a frozen model, grad mode left on: nothing needs a gradient
    out, state = _stream(layer, x)
    assert layer.impl_used == "fused" and not out.requires_grad
    torch.testing.assert_close(out, whole)
    for a, b in zip(leaves(state), leaves(final), strict=True):
        torch.testing.assert_close(a, b)


def test_step_sees_weight_updates_and_never_overwrites_a_returned_state():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(3, 4).eval()
    ref = copy.deepcopy(layer)
    ref.impl = "reference"
    x = torch.randn(1, 8, 3)
    with torch.no_grad():
        _, s1 = layer.step(x[:, 0])
        kept = tuple(t.clone() for t in s1)
        _, s2 = layer.step(x[:, 1], s1)
        assert layer.impl_used == "fused"
        assert all(torch.equal(a, b) for a, b in zip(s1, kept, strict=True))
        for p in layer.parameters():  # an optimizer-like in-place update
            p.add_(0.1)
        ref.load_state_dict(layer.state_dict())
        s2[1].mul_(2)  # a state modified in place is re-read, not served from the buffers
        y, _ = layer.step(x[:, 2], s2)
        want, _ = ref.step(x[:, 2], s2)
        torch.testing.assert_close(y, want)
        y_old, _ = layer.step(x[:, 1], s1)  # an older state: copied back into the kernel
        torch.testing.assert_close(y_old, ref.step(x[:, 1], s1)[0])


def test_a_stepped_layer_copies_and_pickles():
    layer = rnnkit.GRU(3, 4).eval()
    x = torch.randn(2, 3)
    with torch.no_grad():
        y, _ = layer.step(x)
        clone = copy.deepcopy(layer)
        buf = io.BytesIO()
        torch.save(layer, buf)
        buf.seek(0)
        loaded = torch.load(buf, weights_only=False)
        for other in (clone, loaded):
            assert torch.equal(other.step(x)[0], y) and other.impl_used == "fused"


def test_streamer_falls_back_to_the_cells_when_the_kernels_are_unavailable(monkeypatch):
    from rnnkit.layers import fused

    layer = rnnkit.LSTM(3, 4, num_layers=2).eval()
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        whole, final = layer(x)
    monkeypatch.setattr(
        fused._Kernels, "unsupported", lambda self, cell, x: "native kernels unavailable: test"
    )
    with pytest.warns(RuntimeWarning) as caught:
        s = layer.streamer(batch=2)
    assert len(caught) == 1 and "native kernels unavailable: test" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ys = torch.stack([s.step(x[:, t]) for t in range(5)], 1)
    assert s.impl_used == "torch"  # torch's LSTM cell op, stepped from Python
    torch.testing.assert_close(ys, whole)
    for got, want in zip(s.state, (tuple(t[k] for t in final) for k in range(2)), strict=True):
        torch.testing.assert_close(torch.stack(got), torch.stack(want))
    s.reset()
    torch.testing.assert_close(s.step(x[:, 0]), whole[:, 0])
    with torch.no_grad():
        y, _ = layer.step(x[:, 0])
    assert layer.impl_used == "torch"
