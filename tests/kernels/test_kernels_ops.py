"""The kernels as torch.ops.rnnkit operators: schemas, fake kernels and autograd checked by
torch.library.opcheck, and a torch.export of a fused-kernel module run at new shapes."""

import pytest
import torch
from torch.export import Dim

from rnnkit import kernels
from rnnkit.kernels.step import pack_gates

B, T, D, H = 3, 4, 2, 3


def _seq_args(gates, dtype, grad=True):
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_(grad)

    return r(B, T, D), r(B, H), r(gates * H, D), r(gates * H, H), r(gates * H), r(gates * H)


@pytest.fixture(scope="module", autouse=True)
def _loaded():
    assert kernels.available(), kernels.available().reason


# float64: every opcheck test for GRU (schema, autograd registration, fake tensors, AOT
# dispatch with dynamic shapes: ~2 s an operator), all but AOT dispatch for Elman and LSTM;
# float32: the schema and fake-tensor checks, which do not depend on precision
NO_AOT = ("test_schema", "test_autograd_registration", "test_faketensor")
CASES = [(torch.float64, None), (torch.float32, ("test_schema", "test_faketensor"))]


@pytest.mark.parametrize("dtype,utils", CASES)
def test_sequence_operators_pass_opcheck(dtype, utils):
    lengths = torch.tensor([4, 2, 3])
    x, h0, wi, wh, bi, bh = _seq_args(1, dtype)
    ops = torch.ops.rnnkit
    kw = {"test_utils": utils or NO_AOT}
    torch.library.opcheck(ops.elman_fwd, (x, h0, wi, wh, bi, None, 0, lengths), **kw)
    x, h0, wi, wh, bi, bh = _seq_args(3, dtype)
    gru_kw = {} if utils is None else kw
    torch.library.opcheck(ops.gru_fwd, (x, h0, wi, wh, bi, bh, False, None), **gru_kw)
    x, h0, wi, wh, bi, bh = _seq_args(4, dtype)
    c0 = torch.randn(B, H, dtype=dtype, requires_grad=True)
    torch.library.opcheck(ops.lstm_fwd, (x, h0, c0, wi, wh, None, bh, lengths), **kw)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backward_and_step_operators_pass_opcheck(dtype):
    utils = ("test_schema", "test_faketensor")
    ops = torch.ops.rnnkit
    x, h0, wi, wh, bi, bh = _seq_args(3, dtype, grad=False)
    out, _, hs, gates, ext = ops.gru_fwd(x, h0, wi, wh, bi, bh, True, None)
    need = [True, True, False, True, True, False]
    dout = torch.randn_like(out)
    args = (x, wi, wh, None, hs, gates, ext, dout, None, True, need)
    torch.library.opcheck(ops.gru_bwd, args, test_utils=utils)
    x1 = x[:, 0]
    wih_t, whh_t = pack_gates(wi, 3), pack_gates(wh, 3)
    torch.library.opcheck(ops.gru_step, (x1, h0, wih_t, whh_t, bi, None, True), test_utils=utils)
    _, _, wi1, wh1, bi1, _ = _seq_args(1, dtype, grad=False)
    e_args = (x1, h0, pack_gates(wi1, 1), pack_gates(wh1, 1), bi1, None, 0)
    torch.library.opcheck(ops.elman_step, e_args, test_utils=utils)
    _, _, wi4, wh4, bi4, bh4 = _seq_args(4, dtype, grad=False)
    l_args = (x1, h0, h0.clone(), pack_gates(wi4, 4), pack_gates(wh4, 4), bi4, bh4)
    torch.library.opcheck(ops.lstm_step, l_args, test_utils=utils)


class _FusedLSTM(torch.nn.Module):
    """One LSTM layer on the fused kernel (torch.nn's weights)."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(D, H, batch_first=True)

    def forward(self, x):
        m = self.lstm
        args = (m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)
        out, (h, c) = kernels.lstm_sequence(x, None, None, *args)
        return out, h, c


def test_torch_export_of_a_fused_layer_runs_at_new_batch_and_length():
    torch.manual_seed(0)
    model = _FusedLSTM().eval()
    batch, time = Dim("batch", min=1, max=64), Dim("time", min=2, max=512)
    ep = torch.export.export(
        model, (torch.randn(2, 5, D),), dynamic_shapes=({0: batch, 1: time},)
    )
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert any("rnnkit.lstm_fwd" in t for t in targets), targets
    x = torch.randn(7, 13, D)  # neither the batch nor the length used at export
    for got, want in zip(ep.module()(x), model(x), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        assert got.shape[0] == 7


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
def test_sequence_autograd_in_cpp_follows_what_requires_grad(cell):
    """The C++ autograd node (seq_autograd.cpp) maps each input to its gradient with an absent
    bias shifting the others, and computes only the gradients asked for."""
    gates = {"elman": 1, "gru": 3, "lstm": 4}[cell]
    x, h0, wi, wh, _, bh = _seq_args(gates, torch.float64, grad=False)
    states = [h0] + ([h0.clone() + 0.5] if cell == "lstm" else [])
    lengths = torch.tensor([4, 2, 3])
    extra = {"elman": (0, lengths), "gru": (True, lengths), "lstm": (lengths,)}[cell]
    op = getattr(torch.ops.rnnkit, f"{cell}_fwd")

    def grads(wanted):
        given = [x, *states, wi, wh, bh]
        inputs = [t.detach().requires_grad_(w) for t, w in zip(given, wanted, strict=True)]
        *first, wi_, wh_, bh_ = inputs
        out = op(*first, wi_, wh_, None, bh_, *extra)
        assert type(out[0].grad_fn).__name__ == "CppFunction"
        (out[0].square().sum() + out[1].sum()).backward()
        return [t.grad for t in inputs]

    n = len(states) + 4
    every = grads([True] * n)
    some = [k % 2 == 1 for k in range(n)]  # h0, w_ih (LSTM: h0, w_ih, b_hh)...
    for want, got, full in zip(some, grads(some), every, strict=True):
        if want:
            torch.testing.assert_close(got, full, rtol=0, atol=0)
        else:
            assert got is None


def test_torch_compile_fullgraph_of_a_fused_layer_with_lengths():
    """Under torch.compile the layer leaves the lengths' range to the operator (no graph break);
    a length out of range is still refused as the compiled code runs."""
    import rnnkit

    torch.manual_seed(0)
    layer = rnnkit.GRU(D, H, impl="fused")
    compiled = torch.compile(lambda x, n: layer(x, lengths=n)[0], backend="eager", fullgraph=True)
    x, lengths = torch.randn(B, T, D), torch.tensor([4, 1, 3])
    torch.testing.assert_close(compiled(x, lengths), layer(x, lengths=lengths)[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="lengths must lie in"):
        compiled(x, torch.tensor([4, 0, 3]))
