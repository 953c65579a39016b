"""`rnnkit export RUN`: a trained run's model as ONNX, checked in onnxruntime.

The graph has dynamic batch and length and the recurrent state as optional inputs and as
outputs (see rnnkit.export); it is checked against rnnkit on a batch and length the export did
not see, with and without the state fed. An ensemble run (sentiment's and sequence-classify's
--ensemble N) is one graph of all its members, combined as the task's prediction combines
them (output `probabilities`, the members' mean softmax). The library equivalent is
`rnnkit.export.export_onnx(model, path)` then `check_onnx(model, path)`, with model =
`load_run(RUN).model`, or for a task's run `export_model(RUN)` (an ensemble's members combined).
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
    from ..export import ExportError, check_onnx, export_onnx, members_of

    out = out if out is not None else run / "model.onnx"
    if out.is_dir():
        raise fail(f"--out {out} is a directory; give a file name, e.g. {out / 'model.onnx'}")
    with user_errors(ExportError):
        require("onnx", "onnxruntime", extra="bench", what="ONNX export")
        model = export_model(run)
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
    n = len(members_of(model))
    if n > 1:
        console.print(f"{run} is an ensemble: the graph runs its {n} members and combines "
                      f"them as its prediction does (output {info.outputs[0]})")  # fmt: skip
    console.print(f"onnxruntime vs rnnkit on an unseen batch and length: max |diff| {err:.2e}")
    if err > 1e-4:
        raise fail(f"the exported graph differs from the model by {err:.2e}", code=1)


def export_model(run: Path):
    """The model `rnnkit export RUN` writes: a task's `export_model` (an ensemble's members
    combined), or a plain Trainer run's model."""
    from ..record import run_record
    from ..tasks.driver import get_task, task_names
    from ..training import load_run

    loaded = load_run(run)
    task = run_record(loaded.extra)["task"]
    return get_task(task).export_model(loaded) if task in task_names() else loaded.model
