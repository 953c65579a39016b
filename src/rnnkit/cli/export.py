"""`rnnkit export RUN`: a trained run's model as ONNX, checked in onnxruntime.

The graph has dynamic batch and length and the recurrent state as optional inputs and as
outputs (see rnnkit.export); it is checked against rnnkit on a batch and length the export did
not see, with and without the state fed. The library equivalent is
`rnnkit.export.export_onnx(load_run(RUN).model, path)` then `check_onnx(model, path)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import stderr_console
from .errors import fail, user_errors

FORMATS = ("onnx",)


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(
    run: Annotated[Path, typer.Argument(help="A run directory from `rnnkit train ...`.")],
    format: Annotated[str, typer.Option("--format", help="Only onnx.")] = "onnx",  # noqa: A002
    out: Annotated[
        Path | None, typer.Option(help="The file to write. Default: RUN/model.onnx.")
    ] = None,
) -> None:
    """Export a trained model to ONNX (dynamic batch and length, state in and out)."""
    if format not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    from ..deps import require
    from ..export import ExportError, check_onnx, export_onnx
    from ..training import load_run

    out = out if out is not None else run / "model.onnx"
    if out.is_dir():
        raise fail(f"--out {out} is a directory; give a file name, e.g. {out / 'model.onnx'}")
    with user_errors(ExportError):
        require("onnx", "onnxruntime", extra="bench", what="ONNX export")
        model = load_run(run).model
        info = export_onnx(model, out)
        err = check_onnx(model, info.path)
    console = stderr_console()
    console.print(f"wrote {info.path}: inputs {', '.join(info.inputs)}; "
                  f"outputs {', '.join(info.outputs)}")  # fmt: skip
    settings = run / "forecaster.json"
    if settings.exists() and json.loads(settings.read_text()).get("hybrid"):
        console.print(f"note: {run} is a hybrid forecaster: the network forecasts the errors of "
                      "a classical model (forecaster.json), whose forecasts ONNX does not hold; "
                      "add them, or use `rnnkit forecast RUN`")  # fmt: skip
    members = sorted(run.glob("member-*"))
    if members:  # sequence-classify's ensemble averages its members' probabilities in Python
        console.print(f"note: {run} is an ensemble of {len(members) + 1} models; this is member "
                      f"0, export the others with `rnnkit export {members[0]}` etc.")  # fmt: skip
    console.print(f"onnxruntime vs rnnkit on an unseen batch and length: max |diff| {err:.2e}")
    if err > 1e-4:
        raise fail(f"the exported graph differs from the model by {err:.2e}", code=1)
