"""torch.onnx.export(dynamo=True) of rnnkit models, checked in onnxruntime at a new batch size
(issue 11 point 3). Not in the test suite: one dynamo export takes 5-25 s here, and the
exporter needs onnxscript, which rnnkit does not install (rnnkit.export.export_onnx, the
TorchScript exporter, is the supported path and keeps the length dynamic).

For each model: export with a dynamic batch and the example's length, compare onnxruntime
with rnnkit at another batch, feed another length (onnxruntime must refuse it), then ask for a
dynamic length (Recurrent must refuse it in one line).

    PYTHONPATH=src:DIR_WITH_ONNXSCRIPT python benchmarks/export_dynamo.py
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
import warnings
from pathlib import Path

import onnxruntime as ort
import torch

from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig
from rnnkit.models import build_model


def check(cell: str, out: Path) -> str:
    torch.manual_seed(0)
    model = build_model(ManyToManyConfig(
        InputConfig("frames", features=3), HeadConfig("regression", 2), RNNConfig(cell, 6, 2)
    )).eval()  # fmt: skip
    x = torch.randn(2, 5, 3)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("time")
    t0 = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes={"x": {0: batch}})
        program.save(str(out))
        seconds = time.perf_counter() - t0
        try:
            dyn = torch.onnx.export(model, (x,), dynamo=True,
                                    dynamic_shapes={"x": {0: batch, 1: length}})  # fmt: skip
            dyn.save(str(out.with_suffix(".dyn.onnx")))
            refusal = "exported: " + _at_length_7(model, out.with_suffix(".dyn.onnx"))
        except Exception as err:  # torch.onnx wraps it; its summary is Recurrent's line
            refusal = next((line for line in str(err).splitlines() if "Recurrent:" in line),
                           type(err).__name__)  # fmt: skip
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x_new = torch.randn(4, 5, 3)
    with torch.no_grad():
        diff = abs(sess.run(None, {name: x_new.numpy()})[0] - model(x_new)[0].numpy()).max()
    other = _at_length_7(model, out)
    return f"| {cell} | {seconds:.1f} | {diff:.1e} | {other} | {refusal} |"


def _at_length_7(model, path: Path) -> str:
    """What the graph does on a length it was not exported at: refused, or its max diff."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 7, 3)
    try:
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    except Exception:
        return "refused by onnxruntime"
    with torch.no_grad():
        return f"ran, max diff {abs(got - model(x)[0].numpy()).max():.1e}"


def main() -> None:
    print("| cell | export s | max diff at batch 4 (exported at 2) | length 7 (exported at 5) "
          "| dynamic length asked |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for cell in ("lstm", "gru", "elman", "mingru", "lru"):
            print(check(cell, Path(tmp) / f"{cell}.onnx"), flush=True)


if __name__ == "__main__":
    main()
