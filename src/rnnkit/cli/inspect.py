"""`rnnkit inspect RUN`: gradient flow through time and Jacobian spectra of a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .common import progress_bar, stderr_console
from .errors import fail, user_errors


def register(app: typer.Typer) -> None:
    """Add the `inspect` command to the root app."""
    app.command("inspect")(inspect_run)


def inspect_run(
    run: Annotated[Path, typer.Argument(help="A run directory (holds config.json).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the plots (default: RUN/inspect)."),
    ] = None,
    steps: Annotated[int, typer.Option(help="Steps T of the probe sequences.")] = 100,
    batch: Annotated[int, typer.Option(help="Probe sequences B.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the probe inputs and loss.")] = 0,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Write grad_norms.png, jacobian_spectra.png, recurrent_spectrum.png and inspect.json.

    The run's recurrent layer is driven by random probe inputs (random tokens through its
    embedding, or normal frames); the gradient of a probe loss at the last step is followed
    back through time.
    """
    if steps < 2:
        raise fail(f"--steps must be >= 2, got {steps}")
    if batch < 1:
        raise fail(f"--batch must be >= 1, got {batch}")
    from ..diagnostics import inspect_model
    from ..diagnostics.inspection import write_inspection
    from ..training import load_run

    what = f"inspecting {run.name}"  # stages: load, gradients and Jacobians, plots
    with user_errors(ValueError), progress_bar(stderr_console(), quiet) as progress:
        progress(what, 0, 3)
        model = load_run(run).model
        progress(what, 1, 3)
        rep = inspect_model(model, None, batch, steps, seed, title=run.name)
        progress(what, 2, 3)
        files = write_inspection(rep, out or run / "inspect", run.name)
        progress(what, 3, 3)
    console = Console()
    table = Table(title=escape(f"{run}: gradient flow over {steps} steps"))
    table.add_column("quantity")
    table.add_column("value", justify="right")
    s = rep.summary()
    table.add_row("verdict", s["verdict"])
    table.add_row("||dL/dh_1|| / ||dL/dh_T||", f"{s['gain']:.3g}")
    table.add_row("per-step rate", f"{s['rate_per_step']:.4f}")
    table.add_row("mean largest σ of dh_t/dh_{t-1}", f"{s['jacobian_sigma_max_mean']:.4f}")
    for name, r in s["spectral_radius"].items():
        table.add_row(escape(f"spectral radius {name}"), f"{r:.4f}")
    console.print(table)
    for f in files:
        console.print(f"wrote {escape(str(f))}")
