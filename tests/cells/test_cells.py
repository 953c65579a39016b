"""Each cell against a naive gate-by-gate implementation, and gradcheck in float64."""

import math

import pytest
import torch
from torch.autograd import gradcheck

from rnnkit import ElmanCell, GRUCell, JordanCell, LSTMCell, build_cell

B, D, H = 3, 4, 5
ACTS = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "identity": lambda v: v,
}


def lin(x, w, b):
    return x @ w.T + (0 if b is None else b)


def naive_elman(cell, x, h, act):
    return act(lin(x, cell.weight_ih, cell.bias_ih) + lin(h, cell.weight_hh, cell.bias_hh))


def naive_jordan(cell, x, y, act, out_act):
    h = act(lin(x, cell.weight_ih, cell.bias_ih) + lin(y, cell.weight_hh, cell.bias_hh))
    return out_act(lin(h, cell.weight_ho, cell.bias_ho))


def gate(w, b, k, n):
    """Rows k*n:(k+1)*n of a stacked weight (PyTorch gate order), and its bias slice."""
    return w[k * n : (k + 1) * n], None if b is None else b[k * n : (k + 1) * n]


def layer_norm(v, ln):
    mu = v.mean(-1, keepdim=True)
    var = v.var(-1, unbiased=False, keepdim=True)
    return (v - mu) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def naive_lstm(cell, x, h, c):
    n = cell.hidden_size
    pre_x = lin(x, cell.weight_ih, cell.bias_ih)
    pre_h = lin(h, cell.weight_hh, cell.bias_hh)
    if cell.layer_norm:
        pre_x, pre_h = layer_norm(pre_x, cell.ln_ih), layer_norm(pre_h, cell.ln_hh)
    pre = pre_x + pre_h
    i_pre, f_pre, g_pre, o_pre = (pre[:, k * n : (k + 1) * n] for k in range(4))
    if cell.peepholes:
        i_pre = i_pre + cell.weight_ci * c
        f_pre = f_pre + cell.weight_cf * c
    i, f, g = torch.sigmoid(i_pre), torch.sigmoid(f_pre), torch.tanh(g_pre)
    c_new = f * c + i * g
    if cell.peepholes:
        o_pre = o_pre + cell.weight_co * c_new
    o = torch.sigmoid(o_pre)
    c_act = layer_norm(c_new, cell.ln_c) if cell.layer_norm else c_new
    h_new = o * torch.tanh(c_act)
    if cell.proj_size:
        h_new = h_new @ cell.weight_hr.T
    return h_new, c_new


def naive_gru(cell, x, h):
    n = cell.hidden_size
    w_ir, b_ir = gate(cell.weight_ih, cell.bias_ih, 0, n)
    w_iz, b_iz = gate(cell.weight_ih, cell.bias_ih, 1, n)
    w_in, b_in = gate(cell.weight_ih, cell.bias_ih, 2, n)
    w_hr, b_hr = gate(cell.weight_hh, cell.bias_hh, 0, n)
    w_hz, b_hz = gate(cell.weight_hh, cell.bias_hh, 1, n)
    w_hn, b_hn = gate(cell.weight_hh, cell.bias_hh, 2, n)
    r = torch.sigmoid(lin(x, w_ir, b_ir) + lin(h, w_hr, b_hr))
    z = torch.sigmoid(lin(x, w_iz, b_iz) + lin(h, w_hz, b_hz))
    if cell.reset_after:
        cand = torch.tanh(lin(x, w_in, b_in) + r * lin(h, w_hn, b_hn))
    else:
        cand = torch.tanh(lin(x, w_in, b_in) + lin(r * h, w_hn, b_hn))
    return (1 - z) * cand + z * h


def randomise(cell):
    with torch.no_grad():
        for p in cell.parameters():
            p.uniform_(-0.8, 0.8)
    return cell


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("bias", [True, False])
def test_elman_matches_naive(act, bias):
    cell = randomise(ElmanCell(D, H, activation=act, bias=bias))
    x, h = torch.randn(B, D), torch.randn(B, H)
    y, h_new = cell(x, h)
    torch.testing.assert_close(y, naive_elman(cell, x, h, ACTS[act]))
    assert h_new is y


def test_elman_callable_activation():
    cell = randomise(ElmanCell(D, H, activation=torch.nn.functional.softsign))
    x, h = torch.randn(B, D), torch.randn(B, H)
    y, _ = cell(x, h)
    torch.testing.assert_close(y, naive_elman(cell, x, h, torch.nn.functional.softsign))


def test_jordan_matches_naive_and_feeds_back_output():
    cell = randomise(JordanCell(D, H, output_size=2, output_activation="identity"))
    x, y_prev = torch.randn(B, D), torch.randn(B, 2)
    y, state = cell(x, y_prev)
    torch.testing.assert_close(y, naive_jordan(cell, x, y_prev, torch.tanh, lambda v: v))
    assert state.shape == (B, 2) and torch.equal(state, y)
    assert cell.weight_hh.shape == (H, 2)


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"bias": False},
        {"peepholes": True},
        {"layer_norm": True},
        {"proj_size": 3},
        {"peepholes": True, "layer_norm": True, "proj_size": 2},
    ],
)
def test_lstm_matches_naive(opts):
    cell = randomise(LSTMCell(D, H, **opts))
    P = opts.get("proj_size") or H
    x, h, c = torch.randn(B, D), torch.randn(B, P), torch.randn(B, H)
    y, (h_new, c_new) = cell(x, (h, c))
    want_h, want_c = naive_lstm(cell, x, h, c)
    torch.testing.assert_close(h_new, want_h)
    torch.testing.assert_close(c_new, want_c)
    assert y is h_new and y.shape == (B, P)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_gru_matches_naive(reset_after, bias):
    cell = randomise(GRUCell(D, H, bias=bias, reset_after=reset_after))
    x, h = torch.randn(B, D), torch.randn(B, H)
    y, _ = cell(x, h)
    torch.testing.assert_close(y, naive_gru(cell, x, h))


def test_gru_forms_differ():
    """The two GRU formulations are different functions of the same weights."""
    a = randomise(GRUCell(D, H, reset_after=True))
    b = GRUCell(D, H, reset_after=False)
    b.load_state_dict(a.state_dict())
    x, h = torch.randn(B, D), torch.randn(B, H)
    assert (a(x, h)[0] - b(x, h)[0]).abs().max() > 1e-3


def test_cells_match_torch_cells():
    x, h, c = torch.randn(B, D), torch.randn(B, H), torch.randn(B, H)
    for ours, theirs, state in [
        (ElmanCell(D, H, activation="relu"), torch.nn.RNNCell(D, H, nonlinearity="relu"), h),
        (GRUCell(D, H), torch.nn.GRUCell(D, H), h),
        (LSTMCell(D, H, forget_bias=0.0), torch.nn.LSTMCell(D, H), (h, c)),
    ]:
        ours.load_state_dict(theirs.state_dict())
        got = ours(x, state)[1]
        want = theirs(x, state)
        torch.testing.assert_close(got, want)


# ---- gradcheck in float64 over every cell option ------------------------------------------

CELL_OPTIONS = (
    [lambda a=a: ElmanCell(D, H, activation=a) for a in ACTS]
    + [lambda: JordanCell(D, H, output_size=3), lambda: JordanCell(D, H, activation="relu")]
    + [
        lambda: LSTMCell(D, H),
        lambda: LSTMCell(D, H, peepholes=True),
        lambda: LSTMCell(D, H, layer_norm=True),
        lambda: LSTMCell(D, H, proj_size=2),
        lambda: GRUCell(D, H, reset_after=True),
        lambda: GRUCell(D, H, reset_after=False),
    ]
)


@pytest.mark.parametrize("make", CELL_OPTIONS, ids=lambda f: repr(f()).split("\n")[0])
def test_gradcheck_two_steps(make):
    cell = randomise(make()).double()
    # relu's kink: keep pre-activations away from 0 so finite differences are valid
    x = torch.randn(2, D, dtype=torch.float64, requires_grad=True)
    state = cell.init_state(2, dtype=torch.float64)
    leaves = [
        s.normal_().requires_grad_() for s in (state if isinstance(state, tuple) else (state,))
    ]
    params = list(cell.parameters())

    def run(x, *flat):
        s = tuple(flat[: len(leaves)]) if len(leaves) > 1 else flat[0]
        y, s = cell(x, s)
        y2, _ = cell(torch.tanh(x), s)  # a second step exercises the recurrence
        return y + y2

    assert gradcheck(run, (x, *leaves), eps=1e-6, atol=1e-6)
    # parameter gradients: gradcheck over a functional call with the parameters as inputs
    names = [n for n, _ in cell.named_parameters()]

    def run_params(*ps):
        out = torch.func.functional_call(
            cell,
            dict(zip(names, ps, strict=True)),
            (x.detach(), tuple(leaves) if len(leaves) > 1 else leaves[0]),
        )
        return out[0]

    assert gradcheck(
        run_params, tuple(p.detach().requires_grad_() for p in params), eps=1e-6, atol=1e-6
    )


def test_config_round_trip_rebuilds_each_cell():
    for make in CELL_OPTIONS:
        cell = make()
        again = build_cell(cell.config())
        assert type(again) is type(cell)
        assert again.config() == cell.config()
        assert {n: p.shape for n, p in again.named_parameters()} == {
            n: p.shape for n, p in cell.named_parameters()
        }


def test_inits():
    irnn = ElmanCell(D, H, activation="relu", init="identity")
    torch.testing.assert_close(irnn.weight_hh.detach(), torch.eye(H))
    assert irnn.bias_ih.abs().max() == 0 and irnn.weight_ih.std() < 0.01
    orth = ElmanCell(D, H, init="orthogonal")
    w = orth.weight_hh.detach()
    torch.testing.assert_close(w @ w.T, torch.eye(H), atol=1e-5, rtol=0)
    lstm = LSTMCell(D, H, forget_bias=1.0)
    assert lstm.bias_ih[H : 2 * H].mean() > 0.5  # U(±1/sqrt(H)) + 1
    assert lstm.bias_ih[:H].mean().abs() < 0.5


def test_lstm_chrono_init():
    """Tallec & Ollivier 2018: b_f = log U(1, T_max - 1), b_i = -b_f; memory spans up to T_max."""
    torch.manual_seed(0)
    cell = LSTMCell(D, 64, chrono=100)
    b_f = (cell.bias_ih + cell.bias_hh)[64:128].detach()
    b_i = (cell.bias_ih + cell.bias_hh)[:64].detach()
    assert b_f.min() >= 0 and b_f.max() <= math.log(99) + 1e-6 and b_f.max() > math.log(50)
    torch.testing.assert_close(b_i, -b_f)
    rebuilt = build_cell(cell.config())
    assert rebuilt.chrono == 100 and "chrono=100" in repr(cell)
    for bad in (1, -3, 2.5, True):
        with pytest.raises(ValueError, match="chrono"):
            LSTMCell(D, H, chrono=bad)
    with pytest.raises(ValueError, match="bias=True"):
        LSTMCell(D, H, bias=False, chrono=10)
