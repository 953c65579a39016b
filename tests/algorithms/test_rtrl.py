"""Exact RTRL gradients equal BPTT gradients (float64, 1e-8) for every cell family."""

from __future__ import annotations

import pytest
import torch

from rnnkit.algorithms.rtrl import RTRL, RecurrentStep
from rnnkit.cells import ElmanCell, GRUCell, JordanCell, LSTMCell
from rnnkit.layers import Recurrent

D, H, B, T = 3, 4, 2, 6

# torch.func's jvp scripts a decomposition once, which warns on torch 2.13; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids contention on a shared 2-core machine (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CORES = {
    "elman-tanh": lambda: ElmanCell(D, H, activation="tanh"),
    "elman-sigmoid": lambda: ElmanCell(D, H, activation="sigmoid"),
    "elman-relu": lambda: ElmanCell(D, H, activation="relu"),
    "elman-identity": lambda: ElmanCell(D, H, activation="identity", init="orthogonal"),
    "irnn": lambda: ElmanCell(D, H, activation="relu", init="identity"),
    "jordan": lambda: JordanCell(D, H, output_size=3),
    "gru": lambda: GRUCell(D, H),
    "gru-reset-before": lambda: GRUCell(D, H, reset_after=False),
    "lstm": lambda: LSTMCell(D, H),
    "lstm-peepholes": lambda: LSTMCell(D, H, peepholes=True),
    "lstm-layer-norm": lambda: LSTMCell(D, H, layer_norm=True),
    "lstm-proj": lambda: LSTMCell(D, H, proj_size=2),
    "stack-gru-2": lambda: Recurrent(GRUCell(D, H), num_layers=2, impl="reference"),
    "stack-lstm-elman": lambda: Recurrent([LSTMCell(D, H), ElmanCell(H, 3)], impl="reference"),
}


def bptt_grads(core, x, c):
    """Σ_t Σ_b c_t · y_t through the reference loop; autograd through it is BPTT."""
    fn = RecurrentStep(core)
    states = [cell.init_state(x.shape[0], dtype=x.dtype) for cell in fn.cells]
    loss = 0.0
    for t in range(x.shape[1]):
        inp = x[:, t]
        for k, cell in enumerate(fn.cells):
            inp, states[k] = cell(inp, states[k])
        loss = loss + (inp * c[:, t]).sum()
    return torch.autograd.grad(loss, fn.params)


@pytest.mark.parametrize("name", sorted(CORES))
def test_rtrl_equals_bptt(name):
    torch.manual_seed(0)
    core = CORES[name]().double()
    with torch.no_grad():  # push the IRNN/identity cells off their flat start
        for p in core.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(B, T, D, dtype=torch.float64)
    alg = RTRL(core)
    c = torch.randn(B, T, alg.fn.O, dtype=torch.float64)
    want = bptt_grads(core, x, c)
    alg.reset(B)
    for t in range(T):
        y = alg.step(x[:, t])
        alg.backward((y * c[:, t]).sum())
    for p, w in zip(alg.params, want, strict=True):
        torch.testing.assert_close(p.grad, w, rtol=1e-8, atol=1e-10)


def test_rtrl_state_matches_cell():
    torch.manual_seed(1)
    cell = LSTMCell(D, H).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    alg = RTRL(cell)
    alg.reset(B)
    state = cell.init_state(B, dtype=torch.float64)
    for t in range(T):
        y = alg.step(x[:, t])
        y_ref, state = cell(x[:, t], state)
        torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(alg.state_tensors()[0][1], state[1])
    assert alg.influence.shape == (B, 2 * H, alg.fn.P)


def test_rtrl_rejects_bidirectional_and_unreset():
    with pytest.raises(ValueError, match="bidirectional"):
        RTRL(Recurrent(ElmanCell(D, H), bidirectional=True))
    with pytest.raises(RuntimeError, match="reset"):
        RTRL(ElmanCell(D, H)).step(torch.randn(1, D))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "identity"])
@pytest.mark.parametrize("bias", [True, False])
def test_elman_closed_form_jacobians_match_torch_func(activation, bias):
    torch.manual_seed(2)
    cell = ElmanCell(D, H, activation=activation, bias=bias).double()
    closed, generic = RecurrentStep(cell), RecurrentStep(cell, analytic=False)
    assert closed.analytic and not generic.analytic
    s = torch.randn(B, H, dtype=torch.float64)
    x = torch.randn(B, D, dtype=torch.float64)
    for a, b in zip(closed.jacobians(s, x), generic.jacobians(s, x), strict=True):
        torch.testing.assert_close(a, b)
    v = torch.randn(B, H, dtype=torch.float64)
    torch.testing.assert_close(closed.state_jvp(s, x, v)[1], generic.state_jvp(s, x, v)[1])
    torch.testing.assert_close(closed.param_vjp(s, x, v), generic.param_vjp(s, x, v))


def test_rtrl_generic_path_on_elman_equals_bptt():
    torch.manual_seed(3)
    cell = ElmanCell(D, H).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    c = torch.randn(B, T, H, dtype=torch.float64)
    want = bptt_grads(cell, x, c)
    alg = RTRL(cell, analytic=False)
    alg.reset(B)
    for t in range(T):
        alg.backward((alg.step(x[:, t]) * c[:, t]).sum())
    for p, w in zip(alg.params, want, strict=True):
        torch.testing.assert_close(p.grad, w, rtol=1e-8, atol=1e-10)


def test_online_learner_learns_a_delayed_echo_with_every_algorithm():
    """A never-unrolled stream, one (x_t, y_t) at a time: target x_{t-1}."""
    from torch import nn

    from rnnkit.algorithms.online import OnlineLearner, make_algorithm

    for name in ("rtrl", "snap1", "uoro", "tbptt"):
        torch.manual_seed(0)
        cell = ElmanCell(1, 8)
        learner = OnlineLearner(
            make_algorithm(name, cell),
            nn.Linear(8, 1),
            lambda p, y: ((p - y) ** 2).sum(-1),
            lr=1e-2,
            update_every=2 if name == "tbptt" else 1,
        )
        learner.reset(4)
        xs = torch.randn(300, 4, 1)
        losses = [learner.step(xs[t], xs[t - 1] if t else None) for t in range(300)]
        first, last = sum(losses[1:51]) / 50, sum(losses[-50:]) / 50
        assert last < 0.5 * first, (name, first, last)


def test_online_adapter_fits_the_trainer_protocol_and_matches_bptt():
    """With update_every=T, RTRL through the protocol gives T × the BPTT gradient of the
    model's mean loss (each step's loss is the mean over the batch)."""
    from rnnkit.algorithms.base import GradientAlgorithm
    from rnnkit.algorithms.online import Online
    from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig
    from rnnkit.models import build_model

    torch.manual_seed(0)
    cfg = ManyToManyConfig(
        InputConfig("frames", features=2), HeadConfig("regression", 1), RNNConfig("gru", 5)
    )
    model = build_model(cfg).double()
    batch = (torch.randn(3, 7, 2, dtype=torch.float64), torch.randn(3, 7, 1, dtype=torch.float64))
    model.loss(batch).loss.backward()
    want = {n: 7 * p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    algo = Online("rtrl", update_every=7)
    assert isinstance(algo, GradientAlgorithm)
    got = {}

    def update():
        got.update({n: p.grad.clone() for n, p in model.named_parameters()})
        model.zero_grad()
        return True

    result = algo.train_batch(model, batch, update)
    assert result.updates == 1 and result.count == 21
    for n, w in want.items():
        torch.testing.assert_close(got[n], w, rtol=1e-8, atol=1e-10)
    assert set(algo.carry_state()) == {"state", "influence"}
