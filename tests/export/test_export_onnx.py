"""ONNX export checked in onnxruntime on unseen shapes: the scan cells (minGRU, minLSTM, LRU)
as an ONNX Loop, the optional state, and the refusals. Every application's trained run is
round-tripped in its own tests (tests/tasks/test_*.py, through tests/onnx_roundtrip.py)."""

import onnxruntime  # noqa: F401  (scripts/install.sh installs the bench extra: a hard requirement of the tests)
import pytest
import torch

from clitest import invoke, one_line_error
from rnnkit.config import (
    HeadConfig,
    InputConfig,
    ManyToManyConfig,
    ManyToOneConfig,
    OneToManyConfig,
    RNNConfig,
    Seq2SeqConfig,
)
from rnnkit.export import EXPORT_BATCH, EXPORT_LENGTH, ExportError, check_onnx, export_onnx
from rnnkit.models import build_model

# the scan families, which trace their recurrence as a loop (no torch.nn equivalent)
SCAN_MODELS = {
    "mingru": ManyToManyConfig(
        InputConfig("frames", features=3), HeadConfig("regression", 2), RNNConfig("mingru", 8, 2)
    ),
    "minlstm": ManyToOneConfig(
        InputConfig("tokens", vocab_size=17, embedding_dim=5, padding_idx=0),
        HeadConfig("softmax", 3),
        RNNConfig("minlstm", 6, bidirectional=True),
        readout="attention",
    ),
    "lru": ManyToManyConfig(
        InputConfig("tokens", vocab_size=13, embedding_dim=4),
        HeadConfig("softmax", 13),
        RNNConfig("lru", 6, num_layers=2, options={"state_size": 5}),
    ),
}


@pytest.mark.parametrize("name", sorted(SCAN_MODELS))
def test_scan_cells_export_as_a_loop_right_at_every_shape(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(SCAN_MODELS[name])
    info = export_onnx(model, tmp_path / "m.onnx")
    assert ("lengths" in info.inputs) == isinstance(SCAN_MODELS[name], ManyToOneConfig)
    for batch, length in ((3, 11), (1, 2), (4, 40)):
        assert (batch, length) != (EXPORT_BATCH, EXPORT_LENGTH)
        assert check_onnx(model, info.path, batch, length) < 1e-5


@pytest.mark.parametrize("full_resolution,parallel", [(False, False), (True, False), (True, True)])
def test_a_patched_conv_front_end_exports_right_at_every_length(
    tmp_path, full_resolution, parallel
):
    # patches of 3 frames: ceil(T/3) steps must follow T in the graph, not freeze at export
    from rnnkit.models.conv_rnn import ConvRNN, ConvRNNConfig

    torch.manual_seed(0)
    rnn = RNNConfig("gru", 5, bidirectional=True)
    model = ConvRNN(ConvRNNConfig(2, HeadConfig("softmax", 3), rnn, patch=3, filters=4,
                                  full_resolution=full_resolution,
                                  parallel=parallel))  # fmt: skip
    for block in model.front:  # non-trivial running statistics for eval-mode BatchNorm
        block[1].running_mean.uniform_(-1, 1)
        block[1].running_var.uniform_(0.5, 2)
    info = export_onnx(model, tmp_path / "m.onnx")
    for batch, length in ((3, 11), (1, 2), (4, 40)):
        assert check_onnx(model, info.path, batch, length) < 1e-5


def test_the_state_is_optional_and_continues_a_stream(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_model(ManyToManyConfig(
        InputConfig("tokens", vocab_size=23, embedding_dim=6), HeadConfig("softmax", 23),
        RNNConfig("lstm", 12, num_layers=2),
    )).eval()  # fmt: skip
    export_onnx(model, tmp_path / "lm.onnx")
    sess = ort.InferenceSession(str(tmp_path / "lm.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["x"]  # h0, c0 have defaults
    assert {i.name for i in sess.get_overridable_initializers()} == {"h0", "c0"}
    x = torch.randint(0, 23, (2, 9))
    y1, h, c = sess.run(None, {"x": x[:, :4].numpy()})  # no state: a fresh stream
    y2, h, c = sess.run(None, {"x": x[:, 4:].numpy(), "h0": h, "c0": c})  # carried on
    with torch.no_grad():
        want, (h_want, c_want) = model(x)
    got = torch.cat([torch.from_numpy(y1), torch.from_numpy(y2)], 1)
    assert (got - want).abs().max() < 1e-5
    assert max(abs(h - h_want.numpy()).max(), abs(c - c_want.numpy()).max()) < 1e-5


def test_models_decoding_in_python_and_untraceable_layers_refuse_in_one_line(tmp_path):
    tokens = InputConfig("tokens", vocab_size=9, embedding_dim=4)
    s2s = build_model(Seq2SeqConfig(tokens, 9, 1, 2))
    otm = build_model(OneToManyConfig(InputConfig("frames", features=2), 9, 1, 2))
    for model in (s2s, otm):
        with pytest.raises(ExportError, match="Python loop") as err:
            export_onnx(model, tmp_path / "s.onnx")
        assert "\n" not in str(err.value)
    peep = build_model(ManyToManyConfig(
        InputConfig("frames", features=2), HeadConfig("regression", 1),
        RNNConfig("lstm", 4, options={"peepholes": True}),
    ))  # fmt: skip
    with pytest.raises(ExportError, match="peepholes"):
        export_onnx(peep, tmp_path / "p.onnx")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_cli_export_bad_input_is_one_line():
    one_line_error(invoke("export", "nothing", "--format", "tflite"), "--format")
    one_line_error(invoke("export", "nothing"), "nothing")


def test_an_ensemble_is_one_graph_with_each_members_state(tmp_path):
    """A forecaster's MemberAverage (LSTMs: h and c per member) as one graph: the members'
    mixture, each member's state in and out, a stream continued from the graph's own state."""
    from rnnkit.models.forecaster import MemberAverage

    torch.manual_seed(0)
    config = ManyToManyConfig(InputConfig("frames", features=2), HeadConfig("regression", 4),
                              RNNConfig("lstm", 6, num_layers=2))  # fmt: skip
    model = MemberAverage([build_model(config), build_model(config)])
    info = export_onnx(model, tmp_path / "m.onnx")
    assert info.inputs == ("x", "h0_0", "c0_0", "h0_1", "c0_1")
    assert info.outputs == ("y", "h_0", "c_0", "h_1", "c_1")
    for batch, length in ((3, 11), (1, 2)):
        assert check_onnx(model, info.path, batch, length) < 1e-5
