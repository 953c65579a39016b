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


def test_gradient_profile_of_a_language_model_starts_at_the_last_step():
    from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig
    from rnnkit.diagnostics import gradient_profile
    from rnnkit.models import build_model

    torch.manual_seed(0)
    cfg = ManyToManyConfig(
        InputConfig("tokens", 7, 4), HeadConfig("softmax", 7), RNNConfig("gru", 8, impl="reference")
    )
    model = build_model(cfg)
    ids = torch.randint(0, 7, (200,))
    prof = gradient_profile(model, ids, steps=20, batch=3, lags=(0, 5, 50))
    assert (prof["steps"], prof["batch"]) == (20, 3) and len(prof["layers"]) == 1
    layer = prof["layers"][0]
    assert len(layer["norms"]) == 20 and set(layer["relative"]) == {"0", "5"}  # 50 >= T
    assert layer["relative"]["0"] == 1.0
    assert layer["relative"]["5"] == layer["norms"][5] / layer["norms"][0]
    # lag 0 is dL/dh_{T-1}, which reaches the loss through the head alone; windows start at
    # 0, 89 and 178 (spread evenly over the stream)
    rows = torch.tensor([0, 89, 178])[:, None] + torch.arange(20)[None, :]
    out = model.rnn(model.input(ids[rows]))[0].detach().requires_grad_()
    loss = torch.nn.functional.cross_entropy(model.head(out[:, -1]), ids[rows + 1][:, -1])
    (grad,) = torch.autograd.grad(loss, out)
    assert abs(layer["norms"][0] - float(grad[:, -1].norm(dim=-1).mean())) < 1e-6
    assert abs(prof["loss"] - loss.item()) < 1e-6
