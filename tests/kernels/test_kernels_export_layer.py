"""torch.export of a model whose layer asks for impl="fused": rnnkit's operators are captured
as graph nodes with the batch and the length dynamic, and the exported program gives the eager
model's answers at shapes it was not exported at; impl="auto" keeps to torch's own ops there."""

import pytest
import torch
from torch.export import Dim

from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig
from rnnkit.models import build_model


def _model(impl: str):
    torch.manual_seed(0)
    return build_model(ManyToManyConfig(
        InputConfig("frames", features=3), HeadConfig("regression", 2),
        RNNConfig("gru", 6, 1, bidirectional=True, impl=impl),
    )).eval()  # fmt: skip


def test_a_fused_model_exports_with_dynamic_batch_and_length():
    model, x = _model("fused"), torch.randn(2, 5, 3)
    dims = {"x": {0: Dim("batch", min=1, max=64), 1: Dim("time", min=2, max=512)}}
    ep = torch.export.export(model, (x,), dynamic_shapes=dims)
    ops = [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]
    assert sum("rnnkit.gru_fwd" in op for op in ops) == 2, ops  # one per direction
    with torch.no_grad():
        for shape in [(7, 13, 3), (1, 2, 3), (3, 40, 3)]:  # none of them the example's
            x_new = torch.randn(*shape)
            got, want = ep.module()(x_new)[0], model(x_new)[0]
            assert got.shape == want.shape == (*shape[:2], 2)
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_auto_refuses_a_dynamic_length_naming_impl_fused():
    model, x = _model("auto"), torch.randn(2, 5, 3)
    with pytest.raises(RuntimeError, match="impl='fused'") as err:
        torch.export.export(model, (x,), dynamic_shapes={"x": {0: Dim("b"), 1: Dim("t")}})
    first = str(err.value).splitlines()[0]  # torch may add lines of its own below ours
    assert first.startswith("Recurrent: torch.export cannot keep the length dynamic"), first
    assert "impl='fused'" in first and "rnnkit.export.export_onnx" in first
