"""ONNX round trip of a trained run: what each application's tests call on their tiny run.

`rnnkit export RUN` writes and checks the graph; then onnxruntime is compared with rnnkit on
batch sizes and lengths the export did not see, with the state fed, left out (its zeros
default) and, for per-step models, a stream continued from the graph's own output state.
"""

from __future__ import annotations

from pathlib import Path

from clitest import invoke, one_line_error
from rnnkit.export import EXPORT_BATCH, EXPORT_LENGTH, check_onnx
from rnnkit.training import load_run

SHAPES = ((3, 11), (1, 2))  # (batch, length): neither is the export's


def assert_run_exports(run: Path, tmp_path: Path) -> None:
    """The run's model exported by the CLI matches rnnkit to 1e-5 at unseen shapes."""
    path = tmp_path / "model.onnx"
    result = invoke("export", run, "--out", path)
    assert result.exit_code == 0, result.output
    model = load_run(run).model
    for batch, length in SHAPES:
        assert (batch, length) != (EXPORT_BATCH, EXPORT_LENGTH)
        assert check_onnx(model, path, batch, length) < 1e-5


def assert_run_refuses_export(run: Path, tmp_path: Path, needle: str) -> None:
    """`rnnkit export RUN` refuses with one line naming what to use instead."""
    one_line_error(invoke("export", run, "--out", tmp_path / "model.onnx"), needle)
    assert not (tmp_path / "model.onnx").exists()
