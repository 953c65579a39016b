"""Fused native kernels (rnnkit.kernels) against torch.nn and naive gate-by-gate loops.

The kernels must be available on this machine: unavailable kernels FAIL these tests unless
RNNKIT_ALLOW_NO_KERNELS=1 is set (it is set nowhere in the project).
"""

from __future__ import annotations

import os

import pytest
import torch
from torch.autograd import gradcheck

from rnnkit import kernels

TOL = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(autouse=True)
def _need_kernels():
    status = kernels.available()
    if not status:
        if os.environ.get("RNNKIT_ALLOW_NO_KERNELS") == "1":
            pytest.skip(f"native kernels unavailable: {status.reason}")
        pytest.fail(f"native kernels unavailable: {status.reason}")


# ---------------------------------------------------------------- naive references (B, T, D)

_ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "identity": lambda v: v}


def _lin(x, w, b):
    return x @ w.t() + (0 if b is None else b)


def _masked_loop(step, x, state, lengths):
    """Run step over time; frozen state and zero output where t >= lengths[b]."""
    B, T, _ = x.shape
    outs = []
    for t in range(T):
        y, new = step(x[:, t], state)
        if lengths is None:
            state = new
            outs.append(y)
            continue
        m = (t < lengths).to(x.dtype)[:, None]  # (B, 1)
        if isinstance(new, tuple):
            state = tuple(m * n + (1 - m) * s for n, s in zip(new, state, strict=True))
        else:
            state = m * new + (1 - m) * state
        outs.append(m * y)
    return torch.stack(outs, 1), state  # (B, T, H)


def naive_elman(x, h0, w_ih, w_hh, b_ih, b_hh, act, lengths=None):
    def step(x_t, h):
        h = _ACT[act](_lin(x_t, w_ih, b_ih) + _lin(h, w_hh, b_hh))
        return h, h

    return _masked_loop(step, x, h0, lengths)


def naive_gru(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, lengths=None):
    H = h0.shape[1]

    def step(x_t, h):
        gx = _lin(x_t, w_ih, b_ih)
        bh = torch.zeros(3 * H, dtype=x.dtype) if b_hh is None else b_hh
        r = torch.sigmoid(gx[:, :H] + h @ w_hh[:H].t() + bh[:H])
        z = torch.sigmoid(gx[:, H : 2 * H] + h @ w_hh[H : 2 * H].t() + bh[H : 2 * H])
        if reset_after:
            n = torch.tanh(gx[:, 2 * H :] + r * (h @ w_hh[2 * H :].t() + bh[2 * H :]))
        else:
            n = torch.tanh(gx[:, 2 * H :] + (r * h) @ w_hh[2 * H :].t() + bh[2 * H :])
        h = (1 - z) * n + z * h
        return h, h

    return _masked_loop(step, x, h0, lengths)


def naive_lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None):
    def step(x_t, s):
        h, c = s
        i, f, g, o = (_lin(x_t, w_ih, b_ih) + _lin(h, w_hh, b_hh)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)

    return _masked_loop(step, x, (h0, c0), lengths)


# ---------------------------------------------------------------- helpers


def _params(G, D, H, bias=True, dtype=torch.float32):
    k = H**-0.5
    ps = [
        torch.empty(G * H, D, dtype=dtype).uniform_(-k, k),
        torch.empty(G * H, H, dtype=dtype).uniform_(-k, k),
    ]
    ps += [torch.empty(G * H, dtype=dtype).uniform_(-k, k) if bias else None for _ in range(2)]
    return [None if p is None else p.requires_grad_() for p in ps]


def _grads(outputs, inputs, seed=1):
    """Gradients of a random projection of all outputs (so every output matters)."""
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outputs)
    live = [i for i in inputs if i is not None]
    return torch.autograd.grad(loss, live, retain_graph=True)


def _compare(fused_out, ref_out, inputs):
    for a, b in zip(fused_out, ref_out, strict=True):
        torch.testing.assert_close(a, b, **TOL)
    for a, b in zip(_grads(fused_out, inputs), _grads(ref_out, inputs), strict=True):
        torch.testing.assert_close(a, b, **TOL)


def _copy_torch(mod, ps):
    with torch.no_grad():
        mod.weight_ih_l0.copy_(ps[0])
        mod.weight_hh_l0.copy_(ps[1])
        if ps[2] is not None:
            mod.bias_ih_l0.copy_(ps[2])
            mod.bias_hh_l0.copy_(ps[3])


# ---------------------------------------------------------------- against torch.nn


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_elman_matches_nn_rnn(act, bias):
    B, T, D, H = 5, 7, 4, 6
    ps = _params(1, D, H, bias)
    x = torch.randn(B, T, D, requires_grad=True)
    h0 = torch.randn(B, H, requires_grad=True)
    mod = torch.nn.RNN(D, H, nonlinearity=act, bias=bias, batch_first=True)
    _copy_torch(mod, ps)
    out, h_n = kernels.elman_sequence(x, h0, *ps, activation=act)
    ref_out, ref_h = mod(x, h0[None])
    torch.testing.assert_close(out, ref_out, **TOL)
    torch.testing.assert_close(h_n, ref_h[0], **TOL)
    w = [mod.weight_ih_l0, mod.weight_hh_l0] + ([mod.bias_ih_l0, mod.bias_hh_l0] if bias else [])
    got = _grads([out, h_n], [x, h0, *ps])
    want = _grads([ref_out, ref_h[0]], [x, h0, *w])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("bias", [True, False])
def test_gru_matches_nn_gru(bias):
    B, T, D, H = 4, 9, 5, 7
    ps = _params(3, D, H, bias)
    x = torch.randn(B, T, D, requires_grad=True)
    h0 = torch.randn(B, H, requires_grad=True)
    mod = torch.nn.GRU(D, H, bias=bias, batch_first=True)
    _copy_torch(mod, ps)
    out, h_n = kernels.gru_sequence(x, h0, *ps, reset_after=True)
    ref_out, ref_h = mod(x, h0[None])
    torch.testing.assert_close(out, ref_out, **TOL)
    torch.testing.assert_close(h_n, ref_h[0], **TOL)
    w = [mod.weight_ih_l0, mod.weight_hh_l0] + ([mod.bias_ih_l0, mod.bias_hh_l0] if bias else [])
    got = _grads([out, h_n], [x, h0, *ps])
    want = _grads([ref_out, ref_h[0]], [x, h0, *w])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_matches_nn_lstm(bias):
    B, T, D, H = 3, 8, 6, 5
    ps = _params(4, D, H, bias)
    x = torch.randn(B, T, D, requires_grad=True)
    h0 = torch.randn(B, H, requires_grad=True)
    c0 = torch.randn(B, H, requires_grad=True)
    mod = torch.nn.LSTM(D, H, bias=bias, batch_first=True)
    _copy_torch(mod, ps)
    out, (h_n, c_n) = kernels.lstm_sequence(x, h0, c0, *ps)
    ref_out, (ref_h, ref_c) = mod(x, (h0[None], c0[None]))
    for a, b in ((out, ref_out), (h_n, ref_h[0]), (c_n, ref_c[0])):
        torch.testing.assert_close(a, b, **TOL)
    w = [mod.weight_ih_l0, mod.weight_hh_l0] + ([mod.bias_ih_l0, mod.bias_hh_l0] if bias else [])
    got = _grads([out, h_n, c_n], [x, h0, c0, *ps])
    want = _grads([ref_out, ref_h[0], ref_c[0]], [x, h0, c0, *w])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, **TOL)


# ---------------------------------------------------------------- against naive loops


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "identity"])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_elman_matches_naive_loop(act, with_lengths):
    B, T, D, H = 6, 9, 3, 5
    ps = _params(1, D, H)
    x = torch.randn(B, T, D, requires_grad=True)
    h0 = torch.randn(B, H, requires_grad=True)
    lengths = torch.randint(1, T + 1, (B,)) if with_lengths else None
    fused = kernels.elman_sequence(x, h0, *ps, activation=act, lengths=lengths)
    ref = naive_elman(x, h0, *ps, act, lengths)
    _compare(fused, ref, [x, h0, *ps])


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_gru_matches_naive_loop(reset_after, with_lengths, bias):
    B, T, D, H = 6, 8, 4, 5
    ps = _params(3, D, H, bias)
    x = torch.randn(B, T, D, requires_grad=True)
    h0 = torch.randn(B, H, requires_grad=True)
    lengths = torch.randint(1, T + 1, (B,)) if with_lengths else None
    fused = kernels.gru_sequence(x, h0, *ps, reset_after=reset_after, lengths=lengths)
    ref = naive_gru(x, h0, *ps, reset_after, lengths)
    _compare(fused, ref, [x, h0, *ps])


@pytest.mark.parametrize("with_lengths", [False, True])
def test_lstm_matches_naive_loop(with_lengths):
    B, T, D, H = 6, 8, 4, 5
    ps = _params(4, D, H)
    x = torch.randn(B, T, D, requires_grad=True)
    h0 = torch.randn(B, H, requires_grad=True)
    c0 = torch.randn(B, H, requires_grad=True)
    lengths = torch.randint(1, T + 1, (B,)) if with_lengths else None
    out, (h, c) = kernels.lstm_sequence(x, h0, c0, *ps, lengths=lengths)
    ref_out, (rh, rc) = naive_lstm(x, h0, c0, *ps, lengths)
    _compare([out, h, c], [ref_out, rh, rc], [x, h0, c0, *ps])


def test_batch_split_across_threads_matches_single_thread():
    """B large enough that the batch is split over threads; lengths differ per row."""
    B, T, D, H = 37, 12, 8, 16
    ps = _params(3, D, H)
    x = torch.randn(B, T, D, requires_grad=True)
    h0 = torch.randn(B, H, requires_grad=True)
    lengths = torch.randint(1, T + 1, (B,))
    lengths[0] = T
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        many = kernels.gru_sequence(x, h0, *ps, lengths=lengths)
        g_many = _grads(many, [x, h0, *ps])
        torch.set_num_threads(1)
        one = kernels.gru_sequence(x, h0, *ps, lengths=lengths)
        g_one = _grads(one, [x, h0, *ps])
    finally:
        torch.set_num_threads(old)
    for a, b in zip([*many, *g_many], [*one, *g_one], strict=True):
        torch.testing.assert_close(a, b, **TOL)
    ref = naive_gru(x, h0, *ps, True, lengths)
    _compare(many, ref, [x, h0, *ps])


def test_elman_batch_split_with_short_sequences_gradcheck():
    """Elman (batch-major state buffers): threads split the batch, no row runs to T."""
    # B = 16 (was 40): the smallest batch the kernel splits across 2 threads (it gives each
    # thread at least 8 rows, rk_min_rows in _native.c); rows 0-7, one thread's share, are all
    # 2 steps long, the others 1..T-1. A full-Jacobian gradcheck costs ~B², hence the size.
    B, T, D, H = 16, 7, 3, 5
    ps = [
        (torch.randn(*s, dtype=torch.float64) * 0.5).requires_grad_()
        for s in ((H, D), (H, H), (H,), (H,))
    ]
    x = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    lengths = torch.randint(1, T, (B,))
    lengths[:8] = 2

    def f(x, h0, *p):
        return kernels.elman_sequence(x, h0, *p, activation="tanh", lengths=lengths)

    def grads(nt: int) -> tuple[torch.Tensor, ...]:
        torch.set_num_threads(nt)
        out = f(x, h0, *ps)
        return (out[0].detach(), *torch.autograd.grad(out[0].square().sum(), (x, h0, *ps)))

    # the full Jacobian is checked on one thread; the split (2 threads) must then give the same
    # forward and gradients, and pass gradcheck's random-projection (fast) mode as well
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert gradcheck(f, (x, h0, *ps))
        one, two = grads(1), grads(2)
        for a, b in zip(one, two, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        assert gradcheck(f, (x, h0, *ps), fast_mode=True)
    finally:
        torch.set_num_threads(old)


def test_non_contiguous_inputs():
    B, T, D, H = 4, 6, 5, 3
    x_big = torch.randn(T, B, 2 * D)
    x = x_big[:, :, ::2].transpose(0, 1).requires_grad_()  # (B, T, D), strided
    ps = _params(4, D, H)
    w_ih_t = ps[0].detach().t().contiguous().t().requires_grad_()  # column-major weight
    h0 = torch.randn(H, B).t().requires_grad_()
    c0 = torch.randn(B, H, requires_grad=True)
    out, (h, c) = kernels.lstm_sequence(x, h0, c0, w_ih_t, *ps[1:])
    ref_out, (rh, rc) = naive_lstm(x, h0, c0, w_ih_t, *ps[1:])
    _compare([out, h, c], [ref_out, rh, rc], [x, h0, c0, w_ih_t, *ps[1:]])


def test_lengths_zero_output_and_state_at_own_last_step():
    B, T, D, H = 3, 6, 2, 4
    ps = [p.detach() for p in _params(3, D, H)]
    x = torch.randn(B, T, D)
    lengths = torch.tensor([6, 2, 4])
    out, h_n = kernels.gru_sequence(x, torch.zeros(B, H), *ps, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        assert torch.all(out[b, n:] == 0)
        alone, h_alone = kernels.gru_sequence(x[b : b + 1, :n], torch.zeros(1, H), *ps)
        torch.testing.assert_close(out[b : b + 1, :n], alone, **TOL)
        torch.testing.assert_close(h_n[b : b + 1], h_alone, **TOL)


# ---------------------------------------------------------------- gradcheck in float64


def _gradcheck(fn, *inputs):
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "identity"])
def test_gradcheck_elman(act):
    B, T, D, H = 3, 4, 2, 3
    ps = _params(1, D, H, dtype=torch.float64)
    x = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 2, 3])
    _gradcheck(lambda *a: kernels.elman_sequence(*a, activation=act, lengths=lengths), x, h0, *ps)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gradcheck_gru(reset_after):
    B, T, D, H = 3, 4, 2, 3
    ps = _params(3, D, H, dtype=torch.float64)
    x = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 1, 3])
    _gradcheck(
        lambda *a: kernels.gru_sequence(*a, reset_after=reset_after, lengths=lengths), x, h0, *ps
    )


def test_gradcheck_lstm():
    B, T, D, H = 3, 4, 2, 3
    ps = _params(4, D, H, dtype=torch.float64)
    x = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([2, 4, 3])

    def fn(*a):
        out, (h, c) = kernels.lstm_sequence(*a, lengths=lengths)
        return out, h, c

    _gradcheck(fn, x, h0, c0, *ps)


# ---------------------------------------------------------------- streaming steps


@pytest.mark.parametrize("B", [1, 3, 8])
def test_steps_match_torch_cells(B):
    D, H = 5, 7
    x = torch.randn(B, D)
    h = torch.randn(B, H)
    c = torch.randn(B, H)
    rnn, gru, lstm = torch.nn.RNNCell(D, H), torch.nn.GRUCell(D, H), torch.nn.LSTMCell(D, H)
    with torch.no_grad():
        args = lambda m: (m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh)  # noqa: E731
        y, h1 = kernels.elman_step(x, h, *args(rnn), activation="tanh")
        torch.testing.assert_close(h1, rnn(x, h), **TOL)
        assert y is h1
        y, h1 = kernels.gru_step(x, h, *args(gru), reset_after=True)
        torch.testing.assert_close(h1, gru(x, h), **TOL)
        y, (h1, c1) = kernels.lstm_step(x, (h, c), *args(lstm))
        rh, rc = lstm(x, (h, c))
        torch.testing.assert_close(h1, rh, **TOL)
        torch.testing.assert_close(c1, rc, **TOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_steps_match_naive_including_reset_before_and_no_bias(dtype):
    B, D, H = 2, 4, 6
    x = torch.randn(B, 1, D, dtype=dtype)
    h = torch.randn(B, H, dtype=dtype)
    tol = TOL if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    with torch.no_grad():
        for act in ("sigmoid", "relu", "identity"):
            ps = [p if p is None else p.detach() for p in _params(1, D, H, bias=False, dtype=dtype)]
            _, h1 = kernels.elman_step(x[:, 0], h, *ps, activation=act)
            torch.testing.assert_close(h1, naive_elman(x, h, *ps, act)[1], **tol)
        for ra in (True, False):
            ps = [p.detach() for p in _params(3, D, H, dtype=dtype)]
            _, h1 = kernels.gru_step(x[:, 0], h, *ps, reset_after=ra)
            torch.testing.assert_close(h1, naive_gru(x, h, *ps, ra)[1], **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_steps_match_naive_across_strip_widths(dtype):
    # the forward reads its weights in strips of one vector (16 float32 / 8 float64 columns)
    # per gate: blocks of four strips, single strips and a narrower last strip, alone and
    # split over two threads at a boundary inside a gate
    from rnnkit.kernels.sequence import lib

    module, threads = lib(), torch.get_num_threads()
    tol = TOL if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    B, D = 3, 9
    for H in (16, 37, 70):
        x = torch.randn(B, 1, D, dtype=dtype)
        h, c = torch.randn(B, H, dtype=dtype), torch.randn(B, H, dtype=dtype)
        pe = [p.detach() for p in _params(1, D, H, dtype=dtype)]
        pg = [p.detach() for p in _params(3, D, H, dtype=dtype)]
        pl = [p.detach() for p in _params(4, D, H, dtype=dtype)]
        runs = []
        for split_min in (1 << 62, 0):
            old = module.step_configure(split_min)
            torch.set_num_threads(2)
            try:
                with torch.no_grad():
                    runs.append([
                        kernels.elman_step(x[:, 0], h, *pe)[1],
                        kernels.gru_step(x[:, 0], h, *pg, reset_after=True)[1],
                        kernels.gru_step(x[:, 0], h, *pg, reset_after=False)[1],
                        *kernels.lstm_step(x[:, 0], (h, c), *pl)[1],
                    ])  # fmt: skip
            finally:
                torch.set_num_threads(threads)
                module.step_configure(old)
        one, split = runs
        for a, b in zip(one, split, strict=True):
            assert torch.equal(a, b)
        torch.testing.assert_close(one[0], naive_elman(x, h, *pe, "tanh")[1], **tol)
        torch.testing.assert_close(one[1], naive_gru(x, h, *pg, True)[1], **tol)
        torch.testing.assert_close(one[2], naive_gru(x, h, *pg, False)[1], **tol)
        cell = torch.nn.LSTMCell(D, H).to(dtype)
        with torch.no_grad():
            for name, p in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), pl, strict=True):
                getattr(cell, name).copy_(p)
            want = cell(x[:, 0], (h, c))
        torch.testing.assert_close(one[3], want[0], **tol)
        torch.testing.assert_close(one[4], want[1], **tol)


def test_step_chain_equals_sequence():
    B, T, D, H = 2, 5, 3, 4
    ps = [p.detach() for p in _params(4, D, H)]
    x = torch.randn(B, T, D)
    state = (torch.zeros(B, H), torch.zeros(B, H))
    with torch.no_grad():
        out, (h_n, c_n) = kernels.lstm_sequence(x, *state, *ps)
        for t in range(T):
            y, state = kernels.lstm_step(x[:, t], state, *ps)
            torch.testing.assert_close(y, out[:, t], **TOL)
    torch.testing.assert_close(state[1], c_n, **TOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("B", [1, 3])
def test_streamer_equals_step_kernels_exactly(dtype, B):
    # a stack of every cell family (D 5 -> 6 -> 7 -> 4), reset-before GRU, no-bias Elman
    sizes = [(5, 6), (6, 7), (7, 4), (4, 3)]
    kinds = [
        ("gru", {"reset_after": False}),
        ("lstm", {}),
        ("elman", {"activation": "relu"}),
        ("gru", {}),
    ]
    G = {"elman": 1, "gru": 3, "lstm": 4}
    ps = [
        [
            None if p is None else p.detach()
            for p in _params(G[k], D, H, bias=k != "elman", dtype=dtype)
        ]
        for (k, _), (D, H) in zip(kinds, sizes, strict=True)
    ]
    specs = [kernels.StreamLayer(k, *p, **opt) for (k, opt), p in zip(kinds, ps, strict=True)]
    s = kernels.KernelStreamer(specs, batch=B)
    states = [torch.zeros(B, H, dtype=dtype) for _, H in sizes]
    states[1] = (states[1], torch.zeros(B, 7, dtype=dtype))
    with torch.no_grad():
        for _ in range(4):
            x = torch.randn(B, 5, dtype=dtype)
            y = s.step(x)
            inp = x
            for k, ((kind, opt), p) in enumerate(zip(kinds, ps, strict=True)):
                inp, states[k] = getattr(kernels, f"{kind}_step")(inp, states[k], *p, **opt)
            assert torch.equal(y, inp)
            assert torch.equal(s.state[1][1], states[1][1])
    s.reset()
    assert all(float(t.abs().sum()) == 0 for t in (s.state[0], *s.state[1]))
    s.reset(states)
    assert torch.equal(s.state[3], states[3])


def test_streamer_feeds_its_output_back_and_checks_input():
    H = 6
    ps = [p.detach() for p in _params(3, H, H)]
    s = kernels.KernelStreamer([kernels.StreamLayer("gru", *ps)])
    h = torch.zeros(1, H)
    x = torch.randn(1, H)
    with torch.no_grad():
        y = s.step(x)
        _, h = kernels.gru_step(x, h, *ps)
        for _ in range(3):  # y aliases the state the kernel reads
            y = s.step(y)
            _, h = kernels.gru_step(h, h, *ps)
            assert torch.equal(y, h)
    with pytest.raises(ValueError, match=r"x_t must have shape \(1, 6\)"):
        s.step(torch.zeros(2, H))
    with pytest.raises(ValueError, match="float32 CPU tensor"):
        s.step(torch.zeros(1, H, dtype=torch.float64))
    with pytest.raises(ValueError, match="no_grad"):
        s.step(torch.zeros(1, H, requires_grad=True))
    with pytest.raises(ValueError, match="takes inputs of size"):
        kernels.KernelStreamer(
            [kernels.StreamLayer("gru", *ps), kernels.StreamLayer("elman", *_params(1, 5, 5))]
        )


def test_streamer_takes_strided_rows_and_tensor_subclasses():
    # the C fast path (plain tensors, any row stride) and the Python fallback (subclasses)
    # step alike
    class Sub(torch.Tensor):
        pass

    H = 6
    ps = [p.detach() for p in _params(4, H, H)]
    s = kernels.KernelStreamer([kernels.StreamLayer("lstm", *ps)], batch=2)
    wide = torch.randn(2, 2 * H)
    with torch.no_grad():
        ys = []
        for x in (wide[:, :H].contiguous(), wide[:, :H], wide[:, :H].as_subclass(Sub)):
            s.reset()
            ys.append(s.step(x).clone())
    assert torch.equal(ys[0], ys[1]) and torch.equal(ys[0], ys[2])


# ---------------------------------------------------------------- errors


def test_bad_input_raises_clear_errors():
    ps = _params(3, 4, 5)
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="weight_ih must have shape"):
        kernels.gru_sequence(torch.randn(2, 3, 5), None, *ps)
    with pytest.raises(ValueError, match="lengths must lie in"):
        kernels.gru_sequence(x, None, *ps, lengths=torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="float32 and float64"):
        kernels.gru_sequence(x.half(), None, *[p.detach().half() for p in ps])
    with pytest.raises(ValueError, match="activation must be one of"):
        kernels.elman_sequence(x, None, *_params(1, 4, 5), activation="gelu")
    with pytest.raises(ValueError, match="no_grad"):
        kernels.gru_step(x[:, 0], torch.zeros(2, 5), *ps)
    with torch.no_grad(), pytest.raises(ValueError, match=r"state\[0\] must have shape"):
        kernels.gru_step(x[:, 0], torch.zeros(2, 4), *ps)


def test_streamer_equals_recurrent_step():
    from rnnkit import GRU, LSTM
    from rnnkit.bench.speed import streamer_for

    for layer in (GRU(5, 6, num_layers=2, impl="fused"), LSTM(5, 6, num_layers=2, impl="fused")):
        layer.eval()
        s = streamer_for(layer, batch=2)
        state = None
        with torch.no_grad():
            for _ in range(3):
                x = torch.randn(2, 5)
                y, state = layer.step(x, state)
                assert layer.impl_used == "fused"
                assert torch.equal(s.step(x), y)


def test_steps_past_every_length_leave_no_garbage_for_the_backward():
    # The weight-gradient GEMMs run over every step, so the saved per-step buffers of steps
    # past a batch's longest sequence must hold zeros, not reused memory (a NaN there gave
    # NaN weight gradients, now and then, as 0 * NaN).
    B, T, D, H = 4, 9, 3, 5
    x, h0 = torch.randn(B, T, D), torch.randn(B, H)
    w = [torch.randn(3 * H, D), torch.randn(3 * H, H), torch.randn(3 * H), torch.randn(3 * H)]
    lengths = torch.tensor([2, 3, 1, 3])
    for _ in range(5):
        poison = [torch.full((T, B, n * H), float("nan")) for n in (3, 1)]
        del poison  # freed: the next allocations of these sizes may reuse the memory
        _, _, hs, gates, ext = torch.ops.rnnkit.gru_fwd(x, h0, *w, False, lengths)
        assert torch.isfinite(gates).all() and torch.isfinite(ext).all()


def _run_cell(cell, x, h0, ps, lengths):
    """(out, final states) of one fused cell; GRU with reset_after=False (the split path)."""
    if cell == "lstm":
        out, (h, c) = kernels.lstm_sequence(x, h0, h0.flip(0), *ps, lengths=lengths)
        return out, h, c
    if cell == "gru":
        return kernels.gru_sequence(x, h0, *ps, reset_after=False, lengths=lengths)
    return kernels.elman_sequence(x, h0, *ps, lengths=lengths)


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
def test_wide_gate_loops_match_naive_loop(cell):
    """H = 37: the gate loops' full vector bodies (AVX2 8, AVX-512 16 lanes) and their
    remainders both run (the other naive-loop tests use H = 5), lengths included."""
    B, T, D, H = 5, 7, 6, 37
    G = {"elman": 1, "gru": 3, "lstm": 4}[cell]
    ps = _params(G, D, H)
    x = torch.randn(B, T, D, requires_grad=True)
    h0 = torch.randn(B, H, requires_grad=True)
    lengths = torch.tensor([7, 2, 5, 1, 7])
    fused = _run_cell(cell, x, h0, ps, lengths)
    if cell == "lstm":
        ref_out, (rh, rc) = naive_lstm(x, h0, h0.flip(0), *ps, lengths)
        ref = (ref_out, rh, rc)
    elif cell == "gru":
        ref = naive_gru(x, h0, *ps, False, lengths)
        ref_ra = naive_gru(x, h0, *ps, True, lengths)
        fused_ra = kernels.gru_sequence(x, h0, *ps, reset_after=True, lengths=lengths)
        _compare(fused_ra, ref_ra, [x, h0, *ps])
    else:
        ref = naive_elman(x, h0, *ps, "tanh", lengths)
    _compare(fused, ref, [x, h0, *ps])


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
def test_backward_reads_any_output_gradient_layout(cell):
    """The backward reads the output gradient in place when its rows are contiguous (a slice
    of a wider tensor), as one row when it is a broadcast scalar (out.sum()), else from a
    copy (a transposed tensor): the gradients are exactly those of a contiguous one."""
    B, T, D, H = 4, 6, 3, 8
    G = {"elman": 1, "gru": 3, "lstm": 4}[cell]
    ps = _params(G, D, H, dtype=torch.float64)
    x = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 3, 1, 5])
    inputs = [x, h0, *ps]
    out = _run_cell(cell, x, h0, ps, lengths)[0]
    wide = torch.randn(B, T, 2 * H, dtype=torch.float64)
    layouts = {
        "slice": wide[:, :, H:],
        "scalar": torch.tensor(0.7, dtype=torch.float64).expand(B, T, H),
        "transposed": torch.randn(H, T, B, dtype=torch.float64).permute(2, 1, 0),
    }
    for name, dout in layouts.items():
        want = torch.autograd.grad(out, inputs, dout.contiguous(), retain_graph=True)
        got = torch.autograd.grad(out, inputs, dout, retain_graph=True)
        for a, b in zip(got, want, strict=True):
            assert torch.equal(a, b), name
