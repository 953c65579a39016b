"""Recurrent layers against torch.nn: outputs, states and every gradient, after from_torch."""

import random

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit import from_torch

# the fused kernels have no LSTM projection; everything else runs through all three
IMPLS = ("reference", "torch", "fused")

pack = nn.utils.rnn.pack_padded_sequence
unpack = nn.utils.rnn.pad_packed_sequence


def random_configs(n, seed):
    rng = random.Random(seed)
    for _ in range(n):
        kind = rng.choice(["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"])
        yield dict(
            kind=kind,
            D=rng.randint(1, 6),
            H=rng.randint(2, 7),
            L=rng.randint(1, 3),
            bi=rng.random() < 0.5,
            bias=rng.random() < 0.8,
            B=rng.randint(1, 4),
            T=rng.randint(1, 7),
            lengths=rng.random() < 0.5,
        )


def make_torch(cfg, dtype):
    common = dict(
        input_size=cfg["D"],
        hidden_size=cfg["H"],
        num_layers=cfg["L"],
        bidirectional=cfg["bi"],
        bias=cfg["bias"],
        batch_first=True,
    )
    kind = cfg["kind"]
    if kind.startswith("rnn"):
        m = nn.RNN(nonlinearity=kind[4:], **common)
    elif kind == "gru":
        m = nn.GRU(**common)
    else:
        m = nn.LSTM(proj_size=cfg["H"] - 1 if kind == "lstm_proj" else 0, **common)
    return m.to(dtype)


def run(module, x, h0, lengths, is_torch):
    """Forward, then a loss touching outputs and final states; returns all results and grads."""
    x = x.clone().requires_grad_()
    h0 = tuple(h.clone().requires_grad_() for h in h0)
    hx = h0 if len(h0) == 2 else h0[0]
    if is_torch and lengths is not None:
        out, state = module(pack(x, lengths, batch_first=True, enforce_sorted=False), hx)
        out, _ = unpack(out, batch_first=True, total_length=x.shape[1])
    else:
        out, state = module(x, hx, lengths=lengths) if not is_torch else module(x, hx)
    state = state if isinstance(state, tuple) else (state,)
    g = torch.Generator().manual_seed(1)
    loss = (out * torch.randn(out.shape, generator=g, dtype=x.dtype)).sum()
    for s in state:
        loss = loss + (s * torch.randn(s.shape, generator=g, dtype=x.dtype)).sum()
    params = dict(module.named_parameters()) if is_torch else module.torch_parameters()
    names = sorted(params)
    grads = torch.autograd.grad(loss, [x, *h0, *(params[n] for n in names)])
    keys = ["x", *[f"h0_{i}" for i in range(len(h0))], *names]
    return out, state, dict(zip(keys, grads, strict=True))


def initial_state(m, B, dtype):
    dirs = 2 if m.bidirectional else 1
    out_size = m.proj_size if isinstance(m, nn.LSTM) and m.proj_size else m.hidden_size
    h = torch.randn(m.num_layers * dirs, B, out_size, dtype=dtype)
    if isinstance(m, nn.LSTM):
        return (h, torch.randn(m.num_layers * dirs, B, m.hidden_size, dtype=dtype))
    return (h,)


def assert_same(a, b, tol):
    out_a, state_a, grads_a = a
    out_b, state_b, grads_b = b
    torch.testing.assert_close(out_a, out_b, atol=tol, rtol=tol)
    for s, t in zip(state_a, state_b, strict=True):
        torch.testing.assert_close(s, t, atol=tol, rtol=tol)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=tol, rtol=tol, msg=name)


@pytest.mark.parametrize(
    "dtype,tol,n,seed", [(torch.float32, 1e-5, 40, 0), (torch.float64, 1e-8, 15, 1)]
)
def test_reference_and_torch_impls_match_torch_nn(dtype, tol, n, seed):
    for i, cfg in enumerate(random_configs(n, seed)):
        torch.manual_seed(1000 * seed + i)
        m = make_torch(cfg, dtype)
        x = torch.randn(cfg["B"], cfg["T"], cfg["D"], dtype=dtype)
        lengths = None
        if cfg["lengths"]:
            lengths = torch.randint(1, cfg["T"] + 1, (cfg["B"],))
        h0 = initial_state(m, cfg["B"], dtype)
        want = run(m, x, h0, lengths, is_torch=True)
        impls = ("reference", "torch") if cfg["kind"] == "lstm_proj" else IMPLS
        for impl in impls:
            layer = from_torch(m, impl=impl)
            got = run(layer, x, h0, lengths, is_torch=False)
            assert layer.impl_used == impl
            try:
                assert_same(got, want, tol)
            except AssertionError as err:
                raise AssertionError(f"{impl} {cfg}: {err}") from None


def test_padded_outputs_are_zero_and_final_state_at_own_length():
    layer = rnnkit.GRU(3, 4, bidirectional=True, impl="reference")
    x = torch.randn(3, 6, 3)
    lengths = torch.tensor([6, 2, 4])
    out, h = layer(x, lengths=lengths)
    assert out[1, 2:].abs().max() == 0 and out[2, 4:].abs().max() == 0
    # each sequence alone, unpadded, gives the same outputs and final states
    for b, L in enumerate(lengths.tolist()):
        out_b, h_b = layer(x[b : b + 1, :L])
        torch.testing.assert_close(out[b : b + 1, :L], out_b)
        torch.testing.assert_close(h[:, b : b + 1], h_b)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm_proj", "gru"])
def test_to_torch_round_trip(kind):
    cfg = dict(kind=kind, D=3, H=5, L=2, bi=True, bias=True)
    m = make_torch(cfg, torch.float32)
    back = from_torch(m).to_torch()
    assert type(back) is type(m) and back.batch_first
    assert m.state_dict().keys() == back.state_dict().keys()
    for k, v in m.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(m(x)[0], back(x)[0])


def test_to_torch_refuses_what_torch_lacks():
    with pytest.raises(ValueError, match="peepholes"):
        rnnkit.LSTM(3, 4, peepholes=True).to_torch()
    with pytest.raises(ValueError, match="tanh and relu"):
        rnnkit.RNN(3, 4, activation="sigmoid").to_torch()
    with pytest.raises(ValueError, match="impl='torch' cannot run"):
        rnnkit.GRU(3, 4, reset_after=False, impl="torch")(torch.randn(1, 2, 3))


def test_from_torch_keeps_the_time_first_layout():
    m = nn.LSTM(3, 4, num_layers=2)  # batch_first=False
    layer = from_torch(m)
    x = torch.randn(5, 2, 3)  # (T, B, D)
    got, want = layer(x), m(x)
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])
    assert not layer.to_torch().batch_first
    with pytest.raises(ValueError, match=r"\(T, B, 3\) \(time-first\)"):
        layer(torch.randn(5, 3))


def test_auto_reports_what_ran():
    lstm = rnnkit.LSTM(3, 4, impl="auto")
    lstm(torch.randn(2, 3, 3))
    assert lstm.impl_used in ("torch", "fused")
    peep = rnnkit.LSTM(3, 4, peepholes=True, impl="auto")
    peep(torch.randn(2, 3, 3))
    assert peep.impl_used == "reference"
