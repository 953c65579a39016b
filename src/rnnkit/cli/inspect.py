"""`rnnkit inspect RUN`: gradient flow through time and Jacobian spectra of a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .common import Threads, check_range, progress_bar, run_output_dir, stderr_console, use_threads
from .errors import user_errors

# a Jacobian per step of every probe: 1,000 steps take seconds on a small run, beyond
# MAX_STEPS minutes with only a stage bar
MAX_STEPS, MAX_BATCH = 5_000, 1_024


def register(app: typer.Typer) -> None:
    """Add the `inspect` command to the root app."""
    app.command("inspect")(inspect_run)


def inspect_run(
    run: Annotated[Path, typer.Argument(help="A run directory (holds config.json).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the plots (default: RUN/inspect)."),
    ] = None,
    steps: Annotated[
        int, typer.Option(help=f"Steps T of the probe sequences (2-{MAX_STEPS:,}).")
    ] = 100,
    batch: Annotated[int, typer.Option(help=f"Probe sequences B (1-{MAX_BATCH:,}).")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the probe inputs and loss.")] = 0,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    threads: Threads = 0,
) -> None:
    """Write grad_norms.png, jacobian_spectra.png, recurrent_spectrum.png and inspect.json.

    The run's recurrent layer is driven by random probe inputs (random tokens through its
    embedding, or normal frames); the gradient of a probe loss at the last step is followed
    back through time.
    """
    check_range("--steps", steps, 2, MAX_STEPS)
    check_range("--batch", batch, 1, MAX_BATCH)
    use_threads(threads)
    out = out if out is not None else run_output_dir(run, "inspect")
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
        files = write_inspection(rep, out, run.name)
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
