"""ONNX round trip of a trained run: what each application's tests call on their tiny run.

`rnnkit export RUN` writes and checks the graph; then onnxruntime is compared with rnnkit on
batch sizes and lengths the export did not see, with the state fed, left out (its zeros
default) and, for per-step models, a stream continued from the graph's own output state. An
ensemble's graph is also compared with the task's own prediction (assert_predicts).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clitest import invoke, one_line_error
from rnnkit.cli.export import export_model
from rnnkit.export import EXPORT_BATCH, EXPORT_LENGTH, check_onnx

SHAPES = ((3, 11), (1, 2))  # (batch, length): neither is the export's


def assert_run_exports(run: Path, tmp_path: Path) -> Path:
    """The run's model (an ensemble's members combined) exported by the CLI matches rnnkit to
    1e-5 at unseen shapes. -> the graph's path."""
    path = tmp_path / "model.onnx"
    result = invoke("export", run, "--out", path)
    assert result.exit_code == 0, result.output
    model = export_model(run)
    for batch, length in SHAPES:
        assert (batch, length) != (EXPORT_BATCH, EXPORT_LENGTH)
        assert check_onnx(model, path, batch, length) < 1e-5
    return path


def assert_predicts(path: Path, x, lengths, want) -> None:
    """The graph's first output for (x, lengths) in onnxruntime equals `want` (rnnkit's own
    prediction, e.g. an ensemble's mean probabilities) to 1e-5, at a shape not exported."""
    import onnxruntime as ort

    assert tuple(x.shape[:2]) != (EXPORT_BATCH, EXPORT_LENGTH)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x.numpy(), "lengths": lengths.numpy()})[0]
    assert got.shape == np.shape(want) and float(np.abs(got - np.asarray(want)).max()) < 1e-5


def assert_run_refuses_export(run: Path, tmp_path: Path, needle: str) -> None:
    """`rnnkit export RUN` refuses with one line naming what to use instead."""
    one_line_error(invoke("export", run, "--out", tmp_path / "model.onnx"), needle)
    assert not (tmp_path / "model.onnx").exists()
