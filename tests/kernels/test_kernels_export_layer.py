"""torch.export of a layer that asks for impl="fused": rnnkit's operators are captured as graph
nodes with the batch, the length and per-sequence lengths dynamic, and the exported program
gives eager's answers at shapes it was not exported at; a model with impl="auto" keeps to
torch's own ops there and refuses a dynamic length naming impl="fused"."""

import pytest
import torch
from torch.export import Dim

from rnnkit import GRU
from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig
from rnnkit.models import build_model


def _model(impl: str):
    torch.manual_seed(0)
    return build_model(ManyToManyConfig(
        InputConfig("frames", features=3), HeadConfig("regression", 2),
        RNNConfig("gru", 6, 1, bidirectional=True, impl=impl),
    )).eval()  # fmt: skip


class _Tagger(torch.nn.Module):
    """A bidirectional fused GRU and a linear head over per-sequence lengths."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = GRU(3, 6, bidirectional=True, impl="fused")
        self.head = torch.nn.Linear(12, 2)

    def forward(self, x, lengths):
        return self.head(self.rnn(x, lengths=lengths)[0])


def test_a_fused_layer_exports_with_dynamic_batch_length_and_lengths():
    model = _Tagger().eval()
    batch = Dim("batch", min=1, max=64)
    dims = {"x": {0: batch, 1: Dim("time", min=2, max=512)}, "lengths": {0: batch}}
    ep = torch.export.export(
        model, (torch.randn(2, 5, 3), torch.tensor([5, 3])), dynamic_shapes=dims
    )
    ops = [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]
    assert sum("rnnkit.gru_fwd" in op for op in ops) == 2, ops  # one per direction
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for B, T in [(7, 13), (1, 2), (3, 40)]:  # none of them the example's
            x_new = torch.randn(B, T, 3, generator=g)
            lengths = torch.randint(1, T + 1, (B,), generator=g)
            lengths[0] = T
            got, want = ep.module()(x_new, lengths), model(x_new, lengths)
            assert got.shape == want.shape == (B, T, 2)
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        with pytest.raises(ValueError, match="lengths must lie in"):  # checked as it runs
            ep.module()(x_new, lengths + 1)


def test_auto_refuses_a_dynamic_length_naming_impl_fused():
    model, x = _model("auto"), torch.randn(2, 5, 3)
    with pytest.raises(RuntimeError, match="impl='fused'") as err:
        torch.export.export(model, (x,), dynamic_shapes={"x": {0: Dim("b"), 1: Dim("t")}})
    first = str(err.value).splitlines()[0]  # torch may add lines of its own below ours
    assert first.startswith("Recurrent: torch.export cannot keep the length dynamic"), first
    assert "impl='fused'" in first and "rnnkit.export.export_onnx" in first
