"""A cell family added in one file: registered here, built from a config, run by Recurrent.

Two toy families: a leaky Elman cell (a subclass of ElmanCell, so it must not inherit the Elman
kernels) that has only its step loop, and a diagonal decay cell that brings its own closed-form
sequence implementation, which impl="auto" must pick.
"""

import pytest
import torch
from torch import nn

from rnnkit import ElmanCell, Recurrent, RNNConfig
from rnnkit.cells import CellFamily, build_cell, register_cell, register_impl
from rnnkit.config import CellConfig, from_json, to_json
from rnnkit.models.base import build_rnn


class LeakyElmanCell(ElmanCell):
    """h_t = (1 - leak) h_{t-1} + leak · tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

    def __init__(self, input_size: int, hidden_size: int, leak: float = 0.5, **options):
        super().__init__(input_size, hidden_size, **options)
        self.leak = leak

    def forward(self, x_t, state, hmask=None):
        h_new, _ = super().forward(x_t, state, hmask)
        h = (1 - self.leak) * state + self.leak * h_new
        return h, h

    def config(self) -> CellConfig:
        options = {**self._options(), "leak": self.leak}
        return CellConfig("toy_leaky", self.input_size, self.hidden_size, options)

    def replicate(self, input_size: int) -> "LeakyElmanCell":
        return LeakyElmanCell(input_size, self.hidden_size, **self.config().options)


class DecayCell(nn.Module):
    """h_t = a ⊙ h_{t-1} + (1 - a) ⊙ tanh(W x_t + b), a = sigmoid(decay) (H,): h enters linearly,
    so a whole sequence has a closed form (what a parallel scan computes)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.weight_ih = nn.Parameter(torch.randn(hidden_size, input_size) * 0.5)
        self.bias_ih = nn.Parameter(torch.randn(hidden_size) * 0.1)
        self.decay = nn.Parameter(torch.randn(hidden_size))

    def init_state(self, batch, device=None, dtype=None):
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x_t, state, hmask=None):
        a = torch.sigmoid(self.decay)
        h = state if hmask is None else state * hmask
        h = a * h + (1 - a) * torch.tanh(nn.functional.linear(x_t, self.weight_ih, self.bias_ih))
        return h, h

    def config(self) -> CellConfig:
        return CellConfig("toy_decay", self.input_size, self.hidden_size)

    def replicate(self, input_size: int) -> "DecayCell":
        return DecayCell(input_size, self.hidden_size)


class ClosedForm:
    """h_t = a^(t+1) h_0 + Σ_{s≤t} a^(t-s) u_s over the whole sequence at once."""

    calls = 0

    def unsupported(self, cell, x):
        return None

    def run(self, cell, x, state, lengths, hmask):
        type(self).calls += 1
        T = x.shape[1]
        a = torch.sigmoid(cell.decay)  # (H,)
        u = (1 - a) * torch.tanh(nn.functional.linear(x, cell.weight_ih, cell.bias_ih))  # (B, T, H)
        t = torch.arange(T)
        gap = (t[:, None] - t[None, :]).clamp(min=0)  # (T, T): t - s
        weights = torch.where((t[:, None] >= t[None, :])[..., None], a ** gap[..., None], 0.0)
        h = torch.einsum("tsh,bsh->bth", weights, u) + a ** (t[:, None] + 1) * state[:, None]
        if lengths is None:
            return h, h[:, -1]
        valid = (t[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
        return h * valid, h[torch.arange(x.shape[0]), lengths - 1]


register_cell(CellFamily("toy_leaky", LeakyElmanCell))
register_cell(CellFamily("toy_decay", DecayCell))
register_impl(DecayCell, "toy_scan", ClosedForm())


def hand_leaky(layer: Recurrent, x: torch.Tensor) -> torch.Tensor:
    """The leaky recurrence written out over the layer's parameters, layer by layer."""
    out = x
    for (cell,) in layer.layers:
        h, ys = torch.zeros(x.shape[0], cell.hidden_size), []
        for t in range(x.shape[1]):
            pre = out[:, t] @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
            h = (1 - cell.leak) * h + cell.leak * torch.tanh(pre)
            ys.append(h)
        out = torch.stack(ys, 1)
    return out


def test_a_registered_family_builds_from_its_config_name():
    cell = build_cell(CellConfig("toy_leaky", 3, 5, {"leak": 0.25}))
    assert type(cell) is LeakyElmanCell and cell.leak == 0.25
    layer = build_rnn(RNNConfig("toy_leaky", 5, num_layers=2, options={"leak": 0.25}), 3)
    assert [type(c) for c in layer.cells] == [LeakyElmanCell, LeakyElmanCell]
    assert layer.cells[1].leak == 0.25 and layer.cells[1].input_size == 5


@pytest.mark.parametrize("impl", ["reference", "auto"])
def test_step_loop_runs_a_family_with_no_faster_path(impl):
    """A leaky ElmanCell is not an ElmanCell to the registry: neither the Elman kernels nor
    torch.nn.RNN may run it (both would drop the leak), so "auto" falls back to its step loop."""
    torch.manual_seed(0)
    cfg = RNNConfig("toy_leaky", 5, num_layers=2, impl=impl, options={"leak": 0.3})
    layer = Recurrent.from_config(cfg, input_size=3)
    x = torch.randn(4, 6, 3)
    out, h = layer(x)
    assert layer.impl_used == "reference"
    expected = hand_leaky(layer, x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(h[-1], expected[:, -1])
    with torch.no_grad():
        y, _ = layer.step(x[:, 0])
    assert layer.impl_used == "reference"
    torch.testing.assert_close(y, expected[:, 0])


def test_paths_the_family_lacks_are_refused_by_name():
    x = torch.randn(2, 3, 3)
    for impl, why in (("fused", "no 'fused' implementation for LeakyElmanCell"),
                      ("torch", "torch.nn has no LeakyElmanCell")):
        layer = build_rnn(RNNConfig("toy_leaky", 4, impl=impl), 3)
        with pytest.raises(ValueError, match=why):
            layer(x)


def test_config_round_trip_keeps_the_family_and_its_options():
    layer = Recurrent.from_config(RNNConfig("toy_leaky", 4, 2, options={"leak": 0.7}), 3)
    cfg = from_json(RNNConfig, to_json(layer.config()))
    assert cfg == layer.config() and cfg.cell == "toy_leaky" and cfg.input_size == 3
    again = Recurrent.from_config(cfg)
    again.load_state_dict(layer.state_dict())
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(again(x)[0], layer(x)[0])


def test_auto_picks_the_family_s_own_sequence_impl_and_it_matches_the_loop():
    torch.manual_seed(1)
    layer = build_rnn(RNNConfig("toy_decay", 6, num_layers=2, bidirectional=True), 3)
    ref = build_rnn(RNNConfig("toy_decay", 6, 2, bidirectional=True, impl="reference"), 3)
    ref.load_state_dict(layer.state_dict())
    x, lengths = torch.randn(3, 7, 3), torch.tensor([7, 4, 1])
    state = torch.randn(4, 3, 6)
    before = ClosedForm.calls
    out, h = layer(x, state, lengths)
    assert layer.impl_used == "toy_scan" and ClosedForm.calls == before + 4  # 2 layers × 2 dirs
    out_ref, h_ref = ref(x, state, lengths)
    assert ref.impl_used == "reference"
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(h, h_ref)
    (out.square().sum() + h.sum()).backward()
    (out_ref.square().sum() + h_ref.sum()).backward()
    for p, q in zip(layer.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)


def test_impl_without_recurrent_dropout_gives_way_to_the_loop_in_training():
    layer = build_rnn(RNNConfig("toy_decay", 4, recurrent_dropout=0.5), 3)
    x = torch.randn(2, 5, 3)
    layer.train()
    layer(x)
    assert layer.impl_used == "reference"
    layer.eval()
    layer(x)
    assert layer.impl_used == "toy_scan"
    with pytest.raises(ValueError, match="recurrent_dropout is not in impl 'toy_scan'"):
        build_rnn(RNNConfig("toy_decay", 4, recurrent_dropout=0.5, impl="toy_scan"), 3).train()(x)


def test_registry_refuses_clashes():
    with pytest.raises(ValueError, match="'gru' is already registered"):
        register_cell(CellFamily("gru", DecayCell))
    with pytest.raises(ValueError, match="DecayCell is already registered"):
        register_cell(CellFamily("toy_decay_again", DecayCell))
    with pytest.raises(ValueError, match="'torch' is reserved"):
        register_impl(DecayCell, "torch", ClosedForm())
    with pytest.raises(ValueError, match="not a registered cell family"):
        register_impl(nn.GRUCell, "toy_scan", ClosedForm())
    with pytest.raises(ValueError, match="unknown cell kind 'nope'"):
        build_cell(CellConfig("nope", 3, 4))
