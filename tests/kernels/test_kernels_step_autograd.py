"""The single-step operators with autograd (rnnkit::*_step_fwd / *_step_bwd, csrc/step.cpp) and
`Recurrent.step` on them: float64 gradcheck, opcheck, and gradients through several steps
against torch's cells and the sequence kernels."""

import copy

import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.kernels.sequence import lib
from rnnkit.kernels.step import pack_gates

B, D, H = 2, 3, 4


@pytest.fixture(scope="module", autouse=True)
def _loaded():
    assert kernels.available(), kernels.available().reason


def _weights(gates, dtype=torch.float64, bias=True):
    g = torch.Generator().manual_seed(gates)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_()

    b = (r(gates * H), r(gates * H)) if bias else (None, None)
    return (r(gates * H, D), r(gates * H, H), *b)


def _t(w):  # the packed copy the step plan keeps (no gradient path of its own)
    return pack_gates(w.detach(), w.shape[0] // H)


def _inputs(dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(B, n, generator=g, dtype=dtype).requires_grad_() for n in (D, H, H)]


def test_step_operators_pass_gradcheck():
    ops = torch.ops.rnnkit
    x, h, c = _inputs()
    for act in range(4):  # tanh, sigmoid, relu, identity
        wi, wh, bi, bh = _weights(1)

        def elman(x, h, wi, wh, bi, act=act):
            return ops.elman_step_fwd(x, h, wi, wh, bi, None, _t(wi), _t(wh), act)

        assert torch.autograd.gradcheck(elman, (x, h, wi, wh, bi))
    for reset_after in (True, False):
        wi, wh, bi, bh = _weights(3)

        def gru(x, h, wi, wh, bi, bh, ra=reset_after):
            return ops.gru_step_fwd(x, h, wi, wh, bi, bh, _t(wi), _t(wh), ra)[0]

        assert torch.autograd.gradcheck(gru, (x, h, wi, wh, bi, bh))
    wi, wh, _, _ = _weights(4, bias=False)

    def lstm(x, h, c, wi, wh):
        return ops.lstm_step_fwd(x, h, c, wi, wh, None, None, _t(wi), _t(wh))[:2]

    assert torch.autograd.gradcheck(lstm, (x, h, c, wi, wh))
    # only c_new used: the backward gets no gradient for h_new
    assert torch.autograd.gradcheck(lambda *a: lstm(*a)[1], (x, h, c, wi, wh))


@torch.no_grad()
def test_step_operators_match_torch_cells():
    ops = torch.ops.rnnkit
    x, h, c = (t.float() for t in _inputs())
    wi, wh, bi, bh = _weights(1, torch.float32)
    got = ops.elman_step_fwd(x, h, wi, wh, bi, bh, _t(wi), _t(wh), 0)
    torch.testing.assert_close(got, torch.rnn_tanh_cell(x, h, wi, wh, bi, bh))
    wi, wh, bi, bh = _weights(3, torch.float32)
    got = ops.gru_step_fwd(x, h, wi, wh, bi, bh, _t(wi), _t(wh), True)[0]
    torch.testing.assert_close(got, torch.gru_cell(x, h, wi, wh, bi, bh))
    # reset_after=False against the inference step op, a separate entry into the same kernel
    got = ops.gru_step_fwd(x, h, wi, wh, bi, bh, _t(wi), _t(wh), False)[0]
    torch.testing.assert_close(got, kernels.gru_step(x, h, wi, wh, bi, bh, reset_after=False)[0])
    wi, wh, bi, bh = _weights(4, torch.float32)
    h_new, c_new, _ = ops.lstm_step_fwd(x, h, c, wi, wh, bi, bh, _t(wi), _t(wh))
    for a, b in zip((h_new, c_new), torch.lstm_cell(x, (h, c), wi, wh, bi, bh), strict=True):
        torch.testing.assert_close(a, b)


def test_step_operators_pass_opcheck():
    ops = torch.ops.rnnkit
    utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    x, h, c = _inputs()
    wi, wh, bi, _ = _weights(1)
    torch.library.opcheck(ops.elman_step_fwd, (x, h, wi, wh, bi, None, _t(wi), _t(wh), 0),
                          test_utils=utils)  # fmt: skip
    wi, wh, bi, bh = _weights(3)
    args = (x, h, wi, wh, bi, bh, _t(wi), _t(wh), True)
    torch.library.opcheck(ops.gru_step_fwd, args, test_utils=utils)
    with torch.no_grad():
        _, saved = ops.gru_step_fwd(*args)
    need = [True, True, True, False, True, True]
    bwd = (torch.randn(B, H, dtype=torch.float64), x, h, wi, wh, saved, True, need)
    torch.library.opcheck(ops.gru_step_bwd, [t.detach() if torch.is_tensor(t) else t for t in bwd],
                          test_utils=("test_schema", "test_faketensor"))  # fmt: skip
    wi, wh, bi, bh = _weights(4)
    args = (x, h, c, wi, wh, None, bh, _t(wi), _t(wh))
    torch.library.opcheck(ops.lstm_step_fwd, args, test_utils=utils)


def _run(layer, x, state):
    """Step through x (B, T, D) from `state`; gradients of a loss on every output and the
    final state with respect to x, the initial state and the parameters."""
    ys, s = [], state
    for t in range(x.shape[1]):
        y, s = layer.step(x[:, t], s)
        ys.append(y)
    out = torch.stack(ys, 1)
    finals = s if isinstance(s, tuple) else (s,)
    loss = out.square().sum() + sum((f * f.detach().sign()).sum() for f in finals)
    given = () if state is None else state if isinstance(state, tuple) else (state,)
    inputs = [x, *given, *layer.parameters()]
    return out, torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize("make", [rnnkit.RNN, rnnkit.GRU, rnnkit.LSTM])
@pytest.mark.parametrize("layers", [1, 2])
def test_step_with_autograd_matches_the_cells_over_several_steps(make, layers):
    torch.manual_seed(0)
    layer = make(D, H, num_layers=layers).double()
    ref = copy.deepcopy(layer)
    ref.impl = "reference"
    x = torch.randn(B, 5, D, dtype=torch.float64, requires_grad=True)
    shape = (layers, B, H)
    h0 = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    state = (h0, torch.randn(*shape, dtype=torch.float64, requires_grad=True)) if (
        make is rnnkit.LSTM) else h0  # fmt: skip
    out, grads = _run(layer, x, state)
    assert layer.impl_used == "fused"
    want_out, want = _run(ref, x, state)
    torch.testing.assert_close(out, want_out)
    for a, b in zip(grads, want, strict=True):
        torch.testing.assert_close(a, b)
    # and against the sequence kernel: the same outputs and parameter gradients
    seq, _ = layer(x, state)
    torch.testing.assert_close(out, seq)


def test_step_with_autograd_matches_torch_cells_in_float32():
    torch.manual_seed(0)
    mod = torch.nn.GRU(D, H, batch_first=True)
    layer = rnnkit.from_torch(mod)
    cell = torch.nn.GRUCell(D, H)
    cell.load_state_dict({k[:-3]: v for k, v in mod.state_dict().items()})
    x = torch.randn(B, 6, D)
    s, h = None, torch.zeros(B, H)
    for t in range(6):
        y, s = layer.step(x[:, t], s)
        h = cell(x[:, t], h)
    (y.sum() + h.sum()).backward()
    assert layer.impl_used == "fused"
    torch.testing.assert_close(y, h)
    for (name, p), (cname, q) in zip(layer.named_parameters(), cell.named_parameters(),
                                     strict=True):  # fmt: skip
        assert name.endswith(cname)
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-5)


def test_threads_split_step_matches_one_thread():
    """A step split over threads (forced: split threshold 0) gives the one-thread results."""
    module = lib()
    torch.manual_seed(0)
    layer = rnnkit.LSTM(40, 48)  # 48 hidden units: a ragged split over 16-wide blocks
    x = torch.randn(1, 3, 40, requires_grad=True)
    threads = torch.get_num_threads()
    results = []
    for split_min in (1 << 62, 0):
        old = module.step_configure(split_min)
        torch.set_num_threads(2)
        try:
            out, grads = _run(layer, x, None)
            with torch.no_grad():
                y = layer.step(x[:, 0])[0]
        finally:
            torch.set_num_threads(threads)
            module.step_configure(old)
        results.append((out, y, grads))
    (a, ya, ga), (b, yb, gb) = results
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    torch.testing.assert_close(ya, yb, atol=0, rtol=0)
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(u, v, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
def test_one_bias_absent_keeps_every_gradient_in_its_place(cell):
    """b_ih None with b_hh given: the node's edges are positional, so the gradients of x, h,
    the weights and b_hh must still land on them (torch's cell functions, zero b_ih, as
    reference)."""
    gates = {"elman": 1, "gru": 3, "lstm": 4}[cell]
    w_ih, w_hh, _, b_hh = _weights(gates)
    x, h, c = _inputs()
    ops, zero = torch.ops.rnnkit, torch.zeros_like(b_hh)
    if cell == "elman":
        out = ops.elman_step_fwd(x, h, w_ih, w_hh, None, b_hh, _t(w_ih), _t(w_hh), 0)
        ref = torch.tanh(x @ w_ih.t() + h @ w_hh.t() + b_hh)
    elif cell == "gru":
        out = ops.gru_step_fwd(x, h, w_ih, w_hh, None, b_hh, _t(w_ih), _t(w_hh), True)[0]
        ref = torch.gru_cell(x, h, w_ih, w_hh, zero, b_hh)
    else:
        out = ops.lstm_step_fwd(x, h, c, w_ih, w_hh, None, b_hh, _t(w_ih), _t(w_hh))[0]
        ref = torch.lstm_cell(x, (h, c), w_ih, w_hh, zero, b_hh)[0]
    wrt = (x, h, w_ih, w_hh, b_hh)
    torch.testing.assert_close(out, ref)
    for got, want in zip(torch.autograd.grad(out.sum(), wrt), torch.autograd.grad(ref.sum(), wrt),
                         strict=True):
        torch.testing.assert_close(got, want)
