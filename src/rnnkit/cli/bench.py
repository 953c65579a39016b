"""`rnnkit bench`: time rnnkit's fused kernels against its reference and torch.nn (issue 11)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import fail

DEFAULT_OUT = Path("benchmarks/results")


def register(app: typer.Typer) -> None:
    """Add the `bench` command to the root app."""
    app.command("bench")(bench)


def _parse_sizes(text: str) -> tuple[tuple[int, int, int], ...]:
    try:
        sizes = tuple(tuple(int(v) for v in part.lower().split("x")) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or any(len(s) != 3 or min(s) < 1 for s in sizes):
        raise fail(f"--sizes must look like 32x100x64,32x100x256 (BxTxH), got {text!r}")
    return sizes  # type: ignore[return-value]


def bench(
    quick: Annotated[
        bool, typer.Option(help="First size and first streaming H only, 3 repeats.")
    ] = False,
    threads: Annotated[
        int | None, typer.Option(min=1, help="torch threads for the run (default: torch's).")
    ] = None,
    clock: Annotated[
        str,
        typer.Option(
            help="wall (elapsed) or cpu (process CPU time; with --threads 1 it is "
            "steady on a busy machine)."
        ),
    ] = "wall",
    out: Annotated[Path, typer.Option(help="Directory for NAME.json and NAME.md.")] = DEFAULT_OUT,
    name: Annotated[str, typer.Option(help="Stem of the output files.")] = "speed",
    reps: Annotated[int | None, typer.Option(min=1, help="Timed repeats per measurement.")] = None,
    onnx: Annotated[
        bool, typer.Option(help="Add onnxruntime for inference when it is installed.")
    ] = True,
    reference: Annotated[
        bool, typer.Option(help="Time the reference (Python time loop) implementation.")
    ] = True,
    sizes: Annotated[
        str | None, typer.Option(hidden=True, help="BxTxH,... instead of the issue's sizes.")
    ] = None,
    stream_h: Annotated[
        str | None, typer.Option(hidden=True, help="H,... for the streaming step.")
    ] = None,
    stream_steps: Annotated[int | None, typer.Option(hidden=True, min=1)] = None,
    peak_n: Annotated[int | None, typer.Option(hidden=True, min=16)] = None,
) -> None:
    """Time fused vs reference vs torch.nn (and onnxruntime): JSON + markdown in --out."""
    from ..bench import speed

    if clock not in speed.CLOCKS:
        raise fail(f"--clock must be one of {', '.join(speed.CLOCKS)}, got {clock!r}")
    overrides: dict = {"clock": clock, "threads": threads, "onnx": onnx, "reference": reference}
    if reps:
        overrides["reps"] = reps
    if sizes:
        overrides["sizes"] = _parse_sizes(sizes)
    if stream_h:
        try:
            overrides["stream_h"] = tuple(int(h) for h in stream_h.split(","))
        except ValueError:
            raise fail(f"--stream-h must look like 64,128, got {stream_h!r}") from None
    if stream_steps:
        overrides["stream_steps"] = stream_steps
    if peak_n:
        overrides["peak_n"] = peak_n
    try:
        config = speed.quick_config(**overrides) if quick else speed.SpeedConfig(**overrides)
    except ValueError as err:
        raise fail(str(err)) from None
    if not speed.kernels.available():
        raise fail(f"native kernels unavailable: {speed.kernels.available().reason}")

    console = Console()
    with Progress(
        TextColumn("[bold]bench[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("bench", total=None)

        def report(done: int, total: int, line: str) -> None:
            bar.update(task, completed=done, total=total)
            bar.console.print(line, highlight=False)

        result = speed.run(config, report)
    json_path, md_path = speed.write(result, out, name)
    console.print(_targets_table(result))
    console.print(f"wrote {json_path} and {md_path}")


def _targets_table(result: dict) -> Table:
    table = Table(title="Targets (issue 11)")
    table.add_column("target")
    table.add_column("measured", justify="right")
    table.add_column("met")
    for t in result["targets"]:
        v = f"{100 * t['value']:.0f}%" if "peak" in t["target"] else f"{t['value']:.2f}x"
        table.add_row(t["target"], v, "[green]yes[/]" if t["met"] else "[red]no[/]")
    return table
