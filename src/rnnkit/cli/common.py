"""What the command modules share: the `train` group, the stderr console, run-directory names,
and the progress bar of the commands that take a while."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

DEFAULT_OUT = "runs"
Update = Callable[[str, int, int], None]  # (what, done, total)


def train_group(app: typer.Typer) -> typer.Typer:
    """The app's `train` group, created if it has none yet."""
    for group in app.registered_groups:
        if group.name == "train" and group.typer_instance is not None:
            return group.typer_instance
    train = typer.Typer(help="Train a model for an application.", no_args_is_help=True)
    app.add_typer(train, name="train")
    return train


def stderr_console() -> Console:
    """Progress and tables go to stderr, so stdout carries only results (e.g. a run path)."""
    return Console(stderr=True)


def default_out(out: Path | None, prefix: str) -> Path:
    """`out`, or runs/<prefix>-<date>-<time> so a new run never lands on an old one."""
    return out if out is not None else Path(DEFAULT_OUT) / time.strftime(f"{prefix}-%Y%m%d-%H%M%S")


@contextmanager
def progress_bar(console: Console, quiet: bool = False) -> Iterator[Update]:
    """A rich bar per named pass, on `console` (stderr); yields `update(what, done, total)`,
    which draws nothing when `quiet`."""
    if quiet:
        yield lambda what, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    tasks: dict[str, int] = {}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:  # fmt: skip

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield update
