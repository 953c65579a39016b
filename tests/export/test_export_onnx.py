"""ONNX export of every application's model, checked in onnxruntime on unseen shapes."""

import onnxruntime  # noqa: E402,F401  (scripts/install.sh installs the bench extra: a hard requirement of the tests)
import pytest
import torch

from clitest import invoke, one_line_error
from rnnkit.algorithms import BPTT
from rnnkit.config import (
    HeadConfig,
    InputConfig,
    ManyToManyConfig,
    ManyToOneConfig,
    RNNConfig,
    Seq2SeqConfig,
    TrainConfig,
)
from rnnkit.export import EXPORT_BATCH, EXPORT_LENGTH, ExportError, check_onnx, export_onnx
from rnnkit.models import build_model
from rnnkit.training import Trainer

# each application's model shape (tasks/*/task.py), tiny; impl "auto" as the tasks train it
MODELS = {
    "text": ManyToManyConfig(
        InputConfig("tokens", vocab_size=23, embedding_dim=6),
        HeadConfig("softmax", 23),
        RNNConfig("lstm", 12, num_layers=2),
    ),
    "sentiment": ManyToOneConfig(
        InputConfig("tokens", vocab_size=31, embedding_dim=6, padding_idx=0),
        HeadConfig("softmax", 2),
        RNNConfig("gru", 8, bidirectional=True),
        readout="attention",
    ),
    "sequence_classify": ManyToOneConfig(
        InputConfig("frames", features=3), HeadConfig("softmax", 4), RNNConfig("lstm", 8)
    ),
    "forecast": ManyToManyConfig(
        InputConfig("frames", features=1), HeadConfig("gaussian", 3), RNNConfig("gru", 8, 2)
    ),
    "elman": ManyToManyConfig(
        InputConfig("frames", features=2), HeadConfig("regression", 2), RNNConfig("elman", 8)
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_matches_rnnkit_on_batches_and_lengths_not_exported(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(MODELS[name])
    info = export_onnx(model, tmp_path / "m.onnx")
    assert info.inputs[0] == "x" and info.outputs[0] == "y"
    assert ("lengths" in info.inputs) == isinstance(MODELS[name], ManyToOneConfig)
    for batch, length in ((3, 11), (1, 2), (5, 17)):
        assert (batch, length) != (EXPORT_BATCH, EXPORT_LENGTH)
        assert check_onnx(model, info.path, batch, length) < 1e-5


def test_exported_state_continues_a_stream(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_model(MODELS["text"]).eval()
    export_onnx(model, tmp_path / "lm.onnx")
    sess = ort.InferenceSession(str(tmp_path / "lm.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randint(0, 23, (2, 9))
    h, c = (torch.zeros(2, 2, 12) for _ in range(2))
    ys = []
    for chunk in (x[:, :4], x[:, 4:]):  # two calls, the state carried over
        y, h, c = sess.run(None, {"x": chunk.numpy(), "h0": h, "c0": c} if ys else
                           {"x": chunk.numpy(), "h0": h.numpy(), "c0": c.numpy()})  # fmt: skip
        ys.append(torch.from_numpy(y))
    with torch.no_grad():
        want = model(x)[0]
    assert (torch.cat(ys, 1) - want).abs().max() < 1e-5


def test_seq2seq_and_untraceable_layers_refuse_in_one_line(tmp_path):
    s2s = build_model(Seq2SeqConfig(InputConfig("tokens", vocab_size=9, embedding_dim=4), 9, 1, 2))
    with pytest.raises(ExportError, match="Python loop"):
        export_onnx(s2s, tmp_path / "s.onnx")
    peep = build_model(ManyToManyConfig(
        InputConfig("frames", features=2), HeadConfig("regression", 1),
        RNNConfig("lstm", 4, options={"peepholes": True}),
    ))  # fmt: skip
    with pytest.raises(ExportError, match="peepholes"):
        export_onnx(peep, tmp_path / "p.onnx")


def test_cli_export_writes_and_checks_a_run(tmp_path):
    torch.manual_seed(0)
    model = build_model(MODELS["forecast"])
    batch = {"inputs": torch.randn(4, 6, 1), "targets": torch.randn(4, 6, 3)}
    train = TrainConfig(steps=2, progress=False)
    Trainer(model, BPTT(), train, run_dir=tmp_path / "run").fit(lambda step, g: batch)
    result = invoke("export", tmp_path / "run", "--out", tmp_path / "f.onnx")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f.onnx").stat().st_size > 0
    assert "max |diff|" in result.output
    one_line_error(invoke("export", tmp_path / "run", "--format", "tflite"), "--format")
    one_line_error(invoke("export", tmp_path / "nothing"), "nothing")
