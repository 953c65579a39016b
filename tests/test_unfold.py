"""The unfolded network returns every h_t and the true total derivative dL/dh_t."""

import torch

import rnnkit
from rnnkit import ElmanCell, unfold


def test_unfold_grads_match_finite_differences_of_h_t():
    torch.manual_seed(0)
    cell = ElmanCell(2, 3).double()
    x = torch.randn(1, 6, 2, dtype=torch.float64)
    u = unfold(cell, x, lambda y: (y[:, -1] ** 2).sum())
    assert u.hidden[0].shape == (1, 6, 3) and u.grads[0].shape == (1, 6, 3)
    # dL/dh_t by perturbing h_t and running the remaining steps
    t, eps = 2, 1e-6
    h = cell.init_state(1, dtype=torch.float64)
    for s in range(t + 1):
        h, _ = cell(x[:, s], h)

    def rest(h_t):
        for s in range(t + 1, 6):
            h_t, _ = cell(x[:, s], h_t)
        return (h_t**2).sum()

    with torch.no_grad():
        fd = torch.stack(
            [
                (rest(h + eps * e) - rest(h - eps * e)) / (2 * eps)
                for e in torch.eye(3, dtype=torch.float64)
            ]
        )
    torch.testing.assert_close(u.grads[0][0, t], fd, atol=1e-7, rtol=1e-6)


def test_unfold_layer_matches_layer_and_shows_vanishing():
    torch.manual_seed(0)
    layer = rnnkit.RNN(1, 16, num_layers=2, impl="reference")
    with torch.no_grad():
        for cell in layer.cells:
            cell.weight_hh.mul_(0.3)  # contractive: gradients must vanish backwards in time
    x = torch.randn(4, 60, 1)
    u = unfold(layer, x, lambda y: y[:, -1].sum())
    torch.testing.assert_close(u.outputs, layer(x)[0])
    norms = u.grad_norms()
    assert norms.shape == (60,)
    assert norms[-1] > 1e3 * norms[0]
    # parameter gradients accumulate exactly as loss.backward() would
    g_unfold = layer.cells[0].weight_hh.grad.clone()
    layer.zero_grad()
    layer(x)[0][:, -1].sum().backward()
    torch.testing.assert_close(g_unfold, layer.cells[0].weight_hh.grad)
