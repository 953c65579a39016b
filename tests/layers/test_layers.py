"""Recurrent layer behaviour beyond torch.nn: any cell, stacking lists, dropout, state formats."""

import pytest
import torch

import rnnkit
from rnnkit import ElmanCell, GRUCell, JordanCell, LSTMCell, Recurrent, RNNConfig
from rnnkit.config import from_json, to_json


def test_list_of_cells_of_different_sizes_stacks_and_returns_list_state():
    layer = Recurrent([LSTMCell(3, 8), GRUCell(8, 5), ElmanCell(5, 2, activation="relu")])
    out, state = layer(torch.randn(2, 4, 3))
    assert out.shape == (2, 4, 2)
    assert isinstance(state, list) and len(state) == 3
    assert state[0][1].shape == (2, 8) and state[2].shape == (2, 2)
    out2, _ = layer(torch.randn(2, 4, 3), state)  # the list state is accepted back
    assert out2.shape == (2, 4, 2)


def test_stacking_checks_sizes():
    with pytest.raises(ValueError, match="layer 1 reads 4 features but layer 0 gives 8"):
        Recurrent([GRUCell(3, 8), GRUCell(4, 8)])
    with pytest.raises(ValueError, match="num_layers=3 but 2 cells"):
        Recurrent([GRUCell(3, 8), GRUCell(8, 8)], num_layers=3)


def test_jordan_layer_stacks_bidirectional():
    layer = Recurrent(JordanCell(3, 6, output_size=2), num_layers=2, bidirectional=True)
    out, y = layer(torch.randn(2, 5, 3), lengths=torch.tensor([5, 3]))
    assert out.shape == (2, 5, 4) and y.shape == (4, 2, 2)
    assert layer.impl_used == "reference"


def test_state_in_equals_continuing_the_sequence():
    """Running T steps at once equals running two halves with the state carried over."""
    for layer in (rnnkit.LSTM(3, 4, num_layers=2), rnnkit.GRU(3, 4), rnnkit.RNN(3, 4)):
        layer.impl = "reference"
        x = torch.randn(2, 8, 3)
        whole, s_whole = layer(x)
        first, s = layer(x[:, :5])
        second, s = layer(x[:, 5:], s)
        torch.testing.assert_close(torch.cat([first, second], 1), whole)
        for a, b in zip(
            s if isinstance(s, tuple) else (s,),
            s_whole if isinstance(s_whole, tuple) else (s_whole,),
            strict=True,
        ):
            torch.testing.assert_close(a, b)


def test_dropout_between_layers_only_in_training():
    layer = rnnkit.GRU(3, 16, num_layers=2, dropout=0.5, impl="reference")
    x = torch.randn(4, 6, 3)
    layer.train()
    a, b = layer(x)[0], layer(x)[0]
    assert not torch.allclose(a, b)
    layer.eval()
    torch.testing.assert_close(layer(x)[0], layer(x)[0])


def test_recurrent_dropout_one_mask_per_sequence():
    """The mask is drawn once per sequence and reused at every step (Gal & Ghahramani)."""
    cell = ElmanCell(2, 6, activation="identity", bias=False)
    seen = []
    original = cell.forward

    def spy(x_t, state, hmask=None):
        seen.append(hmask)
        return original(x_t, state, hmask)

    cell.forward = spy
    layer = Recurrent(cell, recurrent_dropout=0.5)
    layer.train()
    layer(torch.randn(3, 5, 2))
    assert len(seen) == 5 and seen[0] is not None
    assert all(m is seen[0] for m in seen)
    assert set(seen[0].unique().tolist()) <= {0.0, 2.0}
    layer.eval()
    seen.clear()
    layer(torch.randn(3, 5, 2))
    assert all(m is None for m in seen)


def test_recurrent_dropout_routes_to_reference_in_training():
    layer = rnnkit.LSTM(3, 4, recurrent_dropout=0.3)
    layer.train()
    layer(torch.randn(2, 3, 3))
    assert layer.impl_used == "reference"
    layer.eval()
    layer(torch.randn(2, 3, 3))
    assert layer.impl_used != "reference"


def test_config_json_round_trip():
    layer = rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True, peepholes=True, dropout=0.1)
    cfg = from_json(RNNConfig, to_json(layer.config()))
    assert cfg == layer.config()
    again = Recurrent.from_config(cfg)
    again.load_state_dict(layer.state_dict())
    layer.eval(), again.eval()
    x = torch.randn(2, 3, 3)
    torch.testing.assert_close(again(x)[0], layer(x)[0])


def test_config_refuses_a_stack_of_differing_cells():
    layer = Recurrent([LSTMCell(3, 8), GRUCell(8, 5)])
    with pytest.raises(ValueError, match=r"layer 1 \(gru, hidden 5\) differs from layer 0"):
        layer.config()


def test_from_config_needs_an_input_size_that_agrees():
    with pytest.raises(ValueError, match="no input_size"):
        Recurrent.from_config(RNNConfig("gru", 4))
    with pytest.raises(ValueError, match="input_size=3 but 5 features feed it"):
        Recurrent.from_config(RNNConfig("gru", 4, input_size=3), 5)


def test_bptt_through_reference_learns():
    """Autograd through the reference loop trains: a GRU learns to output x_{t-2}."""
    torch.manual_seed(0)
    layer = rnnkit.GRU(1, 16, impl="reference")
    head = torch.nn.Linear(16, 1)
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=1e-2)
    for _ in range(150):
        x = torch.randn(16, 12, 1)
        loss = ((head(layer(x)[0])[:, 2:] - x[:, :-2]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def test_torch_impl_does_not_consume_the_global_rng():
    layer = rnnkit.LSTM(3, 4, impl="torch")
    torch.manual_seed(5)
    layer(torch.zeros(1, 2, 3))  # the first call builds the torch.nn twin
    after = torch.rand(1)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(1), after)


@pytest.mark.parametrize("make", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
def test_step_by_step_equals_whole_sequence(make):
    """Streaming one step at a time (the fused kernels, with or without a gradient) gives the
    outputs and state of one call on the whole sequence."""
    from rnnkit import kernels

    layer = make(3, 6, num_layers=2, impl="reference").eval()
    x = torch.randn(2, 7, 3)
    whole, s_whole = layer(x)
    layer.impl = "auto"
    for grad in (True, False):
        state, ys = None, []
        with torch.set_grad_enabled(grad):
            for t in range(7):
                y, state = layer.step(x[:, t], state)
                ys.append(y)
        expected = "fused" if kernels.available() else "torch"
        assert layer.impl_used == expected
        torch.testing.assert_close(torch.stack(ys, 1), whole, atol=1e-5, rtol=1e-5)
        flat = state if isinstance(state, tuple) else (state,)
        flat_whole = s_whole if isinstance(s_whole, tuple) else (s_whole,)
        for a, b in zip(flat, flat_whole, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_step_refuses_bidirectional_and_bad_shapes():
    with pytest.raises(ValueError, match="bidirectional layer needs the whole sequence"):
        rnnkit.GRU(3, 4, bidirectional=True).step(torch.randn(1, 3))
    with pytest.raises(ValueError, match=r"expected x_t of shape \(B, 3\), got \(1, 5\)"):
        rnnkit.GRU(3, 4).step(torch.randn(1, 5))


def test_auto_runs_fused_for_inference_and_training(monkeypatch):
    import dataclasses

    from rnnkit import kernels
    from rnnkit.cells import registry

    if not kernels.available():
        pytest.fail(f"native kernels did not build: {kernels.available().reason}")
    lstm, gru = rnnkit.LSTM(3, 4), rnnkit.GRU(3, 4)
    x = torch.randn(2, 5, 3)
    lstm(x), gru(x)
    assert lstm.impl_used == "fused" and gru.impl_used == "fused"
    with torch.no_grad():
        lstm(x), gru(x)
    assert lstm.impl_used == "fused" and gru.impl_used == "fused"
    # a family's prefer_for_inference still goes first when no gradient is needed
    cls = type(lstm.cells[0])
    family = registry._BY_CLASS[cls]
    monkeypatch.setitem(
        registry._BY_CLASS, cls, dataclasses.replace(family, prefer_for_inference=("torch",))
    )
    with torch.no_grad():
        lstm(x)
    assert lstm.impl_used == "torch"
    lstm(x)
    assert lstm.impl_used == "fused"


@pytest.mark.parametrize("make", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
def test_streamer_equals_whole_sequence(make):
    layer = make(3, 6, num_layers=2).eval()
    x = torch.randn(2, 7, 3)
    with torch.no_grad():
        whole, _ = layer(x)
    s = layer.streamer(batch=2)
    ys = [s.step(x[:, t]).clone() for t in range(7)]
    torch.testing.assert_close(torch.stack(ys, 1), whole, atol=1e-5, rtol=1e-5)


def test_streamer_refuses_what_it_cannot_run():
    with pytest.warns(RuntimeWarning, match="cannot run this layer \\(the LSTM kernel has no pe"):
        rnnkit.LSTM(3, 4, peepholes=True).streamer()  # falls back to the cells (test_layer_step)
    with pytest.raises(ValueError, match="bidirectional"):
        rnnkit.GRU(3, 4, bidirectional=True).streamer()
    with pytest.raises(ValueError, match="layer.eval"):
        rnnkit.GRU(3, 4, num_layers=2, dropout=0.5).streamer()


def test_fused_step_says_why_it_cannot_run():
    layer = rnnkit.LSTM(3, 4, peepholes=True, impl="fused")
    with torch.no_grad(), pytest.raises(ValueError, match="impl='fused' cannot run this step"):
        layer.step(torch.randn(1, 3))
    gru = rnnkit.GRU(3, 4, impl="fused")  # with a gradient wanted, the kernels step too
    y, _ = gru.step(torch.randn(1, 3))
    assert gru.impl_used == "fused" and y.requires_grad
