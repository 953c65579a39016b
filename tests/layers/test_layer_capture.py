"""Tracing, ONNX export, torch.compile, torch.func and low precision each take a path that
works (impl_used says which), and none gives a silently wrong model on other shapes."""

import io
import warnings

import pytest
import torch

from rnnkit.layers import GRU, LSTM, RNN

pytestmark = [
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit"),
]


@pytest.mark.parametrize("ctor", [LSTM, GRU, RNN])
def test_onnx_export_of_auto_layer_is_the_real_graph_at_other_shapes(ctor):
    import onnxruntime as ort  # scripts/install.sh installs the bench extra
    torch.manual_seed(0)
    layer = ctor(4, 8, num_layers=2).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(layer, (torch.randn(2, 5, 4),), buf, dynamo=False,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "B", 1: "T"}, "y": {0: "B", 1: "T"}})  # fmt: skip
    assert layer.impl_used == "torch"
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["x"]
    x = torch.randn(3, 9, 4)
    with torch.no_grad():
        want = layer(x)[0]
    got = torch.from_numpy(sess.run(["y"], {"x": x.numpy()})[0])
    assert want.abs().max() > 0.01 and (got - want).abs().max() < 1e-5


def test_trace_takes_torch_path_saves_and_runs_at_other_lengths(tmp_path):
    torch.manual_seed(0)
    layer = GRU(4, 8).eval()
    traced = torch.jit.trace(layer, (torch.randn(2, 5, 4),))
    assert "aten::gru" in str(traced.inlined_graph)  # torch.nn's op, not a constant
    traced.save(tmp_path / "t.pt")
    x = torch.randn(3, 9, 4)
    with torch.no_grad():
        assert (torch.jit.load(tmp_path / "t.pt")(x)[0] - layer(x)[0]).abs().max() < 1e-6


def test_untraceable_loop_and_script_refuse_in_one_line():
    x = torch.randn(2, 5, 4)
    for layer, needle in ((LSTM(4, 8, peepholes=True), "peepholes"),
                          (GRU(4, 8, impl="reference"), "impl='reference'")):  # fmt: skip
        with pytest.raises(RuntimeError, match="T=5") as err:
            torch.jit.trace(layer, (x,))
        assert needle in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(RuntimeError, match="torch.jit.trace"):
        torch.jit.script(GRU(4, 8))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_auto_picks_a_working_path(dtype):
    layer = LSTM(4, 8).to(dtype)
    out, _ = layer(torch.randn(2, 5, 4, dtype=dtype))
    out.float().sum().backward()
    assert layer.impl_used == "torch" and out.dtype == dtype
    with pytest.raises(ValueError, match="float32 or float64"):
        GRU(4, 8, impl="fused").to(dtype)(torch.randn(2, 5, 4, dtype=dtype))
    with torch.no_grad():
        y, _ = GRU(4, 8).to(dtype).eval().step(torch.randn(2, 4, dtype=dtype))
    assert y.dtype == dtype


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("cell", ["elman", "jordan", "gru", "lstm", "mingru", "minlstm", "lru"])
def test_every_family_runs_forward_and_backward_in_low_precision(cell, dtype):
    """impl="auto" in bf16/fp16 for each built-in family: forward, backward, the layer's own
    dtype out, and close to float32 with the same weights (the LRU scans in complex64:
    torch has no complex bf16)."""
    from rnnkit import RNNConfig
    from rnnkit.layers import Recurrent

    torch.manual_seed(0)
    wide = Recurrent.from_config(RNNConfig(cell, 16, 2), 8)
    x = torch.randn(3, 30, 8)
    with torch.no_grad():
        want, _ = wide(x)
    layer = Recurrent.from_config(RNNConfig(cell, 16, 2), 8)
    layer.load_state_dict(wide.state_dict())
    layer = layer.to(dtype)
    out, _ = layer(x.to(dtype))
    out.float().square().sum().backward()
    assert out.dtype == dtype
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())
    assert (out.float() - want).abs().max() < 0.1


def test_torch_func_grad_and_vmap_match_autograd():
    from torch.func import functional_call, grad, vmap

    torch.manual_seed(0)
    layer, x = GRU(4, 8), torch.randn(3, 6, 4)
    params = dict(layer.named_parameters())
    g = grad(lambda p: functional_call(layer, p, (x,))[0].square().sum())(params)
    assert layer.impl_used == "torch"
    layer(x)[0].square().sum().backward()
    assert layer.impl_used == "fused"
    for name, p in params.items():
        assert torch.allclose(g[name], p.grad, atol=1e-5), name
    per_sequence = vmap(lambda s: layer(s[None])[0][0])(x)
    assert layer.impl_used == "reference"
    assert (per_sequence - layer(x)[0]).abs().max() < 1e-5


@pytest.mark.parametrize("impl", ["auto", "fused", "torch", "reference"])
def test_torch_compile_runs_every_impl(impl):
    torch._dynamo.reset()
    torch.manual_seed(0)
    layer, x = GRU(4, 8, impl=impl), torch.randn(2, 5, 4)
    compiled = torch.compile(layer, backend="eager")
    out = compiled(x)[0]
    out.sum().backward()
    assert (out - layer(x)[0]).abs().max() < 1e-6
    if impl == "reference":  # the cell loop compiles with no graph break
        torch.compile(layer, backend="eager", fullgraph=True)(x)


def test_the_kernels_refuse_weights_off_the_cpu_when_no_input_is_given():
    """streamer() and the run's recorded impl ask without an input: a layer moved to a GPU must
    get the Python path, not CUDA pointers read as CPU memory (checked on a GPU in
    benchmarks/gpu_check.py; here the weights only say they are elsewhere)."""
    from types import SimpleNamespace

    from rnnkit import kernels
    from rnnkit.cells import impls_of

    cell = GRU(4, 8).cells[0]
    fused = impls_of(cell)["fused"]
    if not kernels.available():
        pytest.skip("native kernels unavailable")
    assert fused.unsupported(cell, None) is None
    away = SimpleNamespace(device=torch.device("cuda", 0), dtype=torch.float32)
    elsewhere = SimpleNamespace(weight_hh=away, reset_after=True, activation="tanh")
    assert "the weights are on cuda:0" in fused.unsupported(elsewhere, None)
