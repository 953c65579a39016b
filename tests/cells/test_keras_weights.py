"""Keras-layout weights load into our cells and give Keras' equations' results."""

import numpy as np
import pytest
import torch

from rnnkit import ElmanCell, GRUCell, LSTMCell
from rnnkit.cells import load_keras_weights

D, H, B = 3, 4, 2
rng = np.random.default_rng(0)


def sig(v):
    return 1 / (1 + np.exp(-v))


def keras_gru_step(x, h, kernel, rec, bias, reset_after):
    """Keras' GRU equations, gate blocks z, r, h."""
    k = np.split(kernel, 3, axis=1)
    u = np.split(rec, 3, axis=1)
    if reset_after:
        bi, bh = np.split(bias[0], 3), np.split(bias[1], 3)
        z = sig(x @ k[0] + bi[0] + h @ u[0] + bh[0])
        r = sig(x @ k[1] + bi[1] + h @ u[1] + bh[1])
        hh = np.tanh(x @ k[2] + bi[2] + r * (h @ u[2] + bh[2]))
    else:
        b = np.split(bias, 3)
        z = sig(x @ k[0] + b[0] + h @ u[0])
        r = sig(x @ k[1] + b[1] + h @ u[1])
        hh = np.tanh(x @ k[2] + b[2] + (r * h) @ u[2])
    return z * h + (1 - z) * hh


@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_gru(reset_after):
    kernel, rec = rng.normal(size=(D, 3 * H)), rng.normal(size=(H, 3 * H))
    bias = rng.normal(size=(2, 3 * H) if reset_after else (3 * H,))
    cell = GRUCell(D, H, reset_after=reset_after).double()
    load_keras_weights(cell, kernel, rec, bias)
    x, h = rng.normal(size=(B, D)), rng.normal(size=(B, H))
    got = cell(torch.tensor(x), torch.tensor(h))[0].detach().numpy()
    np.testing.assert_allclose(
        got, keras_gru_step(x, h, kernel, rec, bias, reset_after), atol=1e-12
    )


def test_keras_lstm_and_simple_rnn():
    kernel, rec, bias = (
        rng.normal(size=(D, 4 * H)),
        rng.normal(size=(H, 4 * H)),
        rng.normal(size=4 * H),
    )
    cell = LSTMCell(D, H).double()
    load_keras_weights(cell, kernel, rec, bias)
    x, h, c = rng.normal(size=(B, D)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    i, f, g, o = np.split(x @ kernel + h @ rec + bias, 4, axis=1)
    c_new = sig(f) * c + sig(i) * np.tanh(g)
    want = sig(o) * np.tanh(c_new)
    got = cell(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))[0].detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-12)

    kernel, rec, bias = rng.normal(size=(D, H)), rng.normal(size=(H, H)), rng.normal(size=H)
    rnn = ElmanCell(D, H).double()
    load_keras_weights(rnn, kernel, rec, bias)
    got = rnn(torch.tensor(x), torch.tensor(h))[0].detach().numpy()
    np.testing.assert_allclose(got, np.tanh(x @ kernel + h @ rec + bias), atol=1e-12)


def test_keras_layout_errors():
    with pytest.raises(ValueError, match=r"expected kernel of shape \(3, 12\), got \(3, 9\)"):
        load_keras_weights(GRUCell(D, H), np.zeros((3, 9)), np.zeros((H, 12)), np.zeros((2, 12)))
    with pytest.raises(ValueError, match="reset_after=True layout"):
        load_keras_weights(
            GRUCell(D, H, reset_after=False),
            np.zeros((D, 12)),
            np.zeros((H, 12)),
            np.zeros((2, 12)),
        )
