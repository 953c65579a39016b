"""KernelStreamer's two-thread split (csrc/step.cpp, the rows' RK_SPLIT slot; kernels/step.py).

A split step computes each column as one thread does, so a streamer forced to split and one
forced not to must give bit-identical outputs and states, for every cell at H = 128 and at an
odd H (a part boundary inside a gate's columns). The choice is reported (split, split_reason,
split_timing) and can be forced by the argument or RNNKIT_STREAM_SPLIT.
"""

from __future__ import annotations

import pytest
import torch

from rnnkit import kernels

GATES = {"elman": 1, "gru": 3, "lstm": 4}


@pytest.fixture(scope="module", autouse=True)
def _need_kernels():
    assert kernels.available(), kernels.available().reason


@pytest.fixture
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def _specs(kind, D, H, layers=1, reset_after=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(layers):
        d = D if k == 0 else H
        w = [torch.randn(GATES[kind] * H, n, generator=g) * n**-0.5 for n in (d, H)]
        b = [torch.randn(GATES[kind] * H, generator=g) * 0.1 for _ in range(2)]
        out.append(kernels.StreamLayer(kind, *w, *b, reset_after=reset_after))
    return out


def _run(streamer, xs):
    ys = [streamer.step(x).clone() for x in xs]
    state = [tuple(t.clone() for t in s) if isinstance(s, tuple) else s.clone()
             for s in streamer.state]  # fmt: skip
    return ys, state


@pytest.mark.parametrize("kind", ["elman", "gru", "lstm"])
@pytest.mark.parametrize("H", [128, 97])
@pytest.mark.parametrize("B", [1, 3])
def test_split_and_one_thread_are_identical(two_threads, kind, H, B):
    specs = _specs(kind, 80, H, layers=2)
    xs = [torch.randn(B, 80) for _ in range(12)]
    one = kernels.KernelStreamer(specs, batch=B, split=False)
    two = kernels.KernelStreamer(specs, batch=B, split=True)
    assert (one.split, two.split) == (False, True)
    assert one.split_reason == "split=False" and two.split_timing is None
    ys1, st1 = _run(one, xs)
    ys2, st2 = _run(two, xs)
    for a, b in zip(ys1, ys2, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(st1, st2, strict=True):
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,),
                        strict=True):  # fmt: skip
            assert torch.equal(u, v)
    # and both are the step ops' results (the same kernels, one layer at a time)
    h = [torch.zeros(B, H) for _ in specs]
    c = [torch.zeros(B, H) for _ in specs]
    for x, y in zip(xs, ys1, strict=True):
        for k, s in enumerate(specs):
            w = (s.weight_ih, s.weight_hh, s.bias_ih, s.bias_hh)
            if kind == "lstm":
                x, (h[k], c[k]) = kernels.lstm_step(x, (h[k], c[k]), *w)
            elif kind == "gru":
                x, h[k] = kernels.gru_step(x, h[k], *w)
            else:
                x, h[k] = kernels.elman_step(x, h[k], *w)
        assert torch.equal(x, y)


def test_auto_times_both_and_keeps_the_faster(two_threads, monkeypatch):
    monkeypatch.delenv("RNNKIT_STREAM_SPLIT", raising=False)
    specs = _specs("lstm", 128, 128)
    s = kernels.KernelStreamer(specs)
    t = s.split_timing
    assert t is not None and t["one_thread_us"] > 0 and t["split_us"] > 0
    assert s.split == (t["split_us"] < t["one_thread_us"])
    assert s.split_reason.startswith("timed: ")
    # the timing steps left no trace in the state
    for h, c in s.state:
        assert not h.any() and not c.any()
    x = torch.randn(1, 128)
    ref = kernels.KernelStreamer(specs, split=False)
    assert torch.equal(s.step(x), ref.step(x))


def test_auto_without_timing(monkeypatch):
    monkeypatch.delenv("RNNKIT_STREAM_SPLIT", raising=False)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        s = kernels.KernelStreamer(_specs("lstm", 128, 128))
        assert (s.split, s.split_reason, s.split_timing) == (False, "one thread", None)
        torch.set_num_threads(2)
        s = kernels.KernelStreamer(_specs("lstm", 16, 16))  # 4 * 16 * 32 weight elements
        assert not s.split and "under 32768" in s.split_reason and s.split_timing is None
        s = kernels.KernelStreamer(_specs("gru", 256, 256, reset_after=False))
        assert not s.split and "never split" in s.split_reason
    finally:
        torch.set_num_threads(old)


def test_env_forces_either_way(two_threads, monkeypatch):
    specs = _specs("gru", 128, 128)
    for value, want in (("on", True), ("off", False), (" OFF ", False)):
        monkeypatch.setenv("RNNKIT_STREAM_SPLIT", value)
        s = kernels.KernelStreamer(specs)
        assert s.split is want and s.split_timing is None
        assert s.split_reason == f"RNNKIT_STREAM_SPLIT={value.strip().lower()}"
    # the argument wins over the environment
    assert kernels.KernelStreamer(specs, split=True).split is True
    monkeypatch.setenv("RNNKIT_STREAM_SPLIT", "sometimes")
    with pytest.raises(ValueError, match="RNNKIT_STREAM_SPLIT must be auto, on or off"):
        kernels.KernelStreamer(specs)


def test_layer_streamer_passes_split(two_threads):
    import rnnkit

    layer = rnnkit.from_torch(torch.nn.LSTM(64, 64, batch_first=True), impl="fused").eval()
    assert layer.streamer(split=True).split is True
    assert layer.streamer(split=False).split is False
