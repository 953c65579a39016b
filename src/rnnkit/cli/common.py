"""What the command modules share: the `train` group, the stderr console, run-directory names,
and the progress bar of the commands that take a while."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .errors import fail

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


MAX_THREADS = 1 << 20  # as the training commands' --threads; more than the cores is capped

Threads = Annotated[
    int,
    typer.Option(help="torch CPU threads, at most this machine's cores (0: the cores other "
                 "work leaves idle)."),
]  # fmt: skip


def use_threads(threads: int) -> str:
    """Apply a prediction command's --threads to torch: 0 picks the cores other work leaves
    idle (a busy machine's spinning threads run several times slower than one), more than the
    cores are capped with a note on stderr. Returns a note saying what was chosen."""
    check_range("--threads", threads, 0, MAX_THREADS)
    if threads == 0:
        from ..training import set_auto_threads

        return set_auto_threads()
    from ..tasks.driver import cap_threads

    chosen = cap_threads(threads, lambda note: print(f"note: {note}", file=sys.stderr))
    return f"using {chosen} thread(s)"


def check_range(flag: str, value: float, lo: float, hi: float) -> None:
    """One line and exit 2 unless lo <= value <= hi: a prediction command's numeric option is
    bounded before any run is loaded, so no value runs for minutes unannounced."""
    if not lo <= value <= hi:
        raise fail(f"{flag} must be in {lo:,}..{hi:,}, got {value:,}")


def run_output_dir(run: Path, name: str) -> Path:
    """RUN/name, where a command writes by default: refused (one line) when it is a symlink
    or leads out of the run directory, so a run from elsewhere cannot make rnnkit write
    outside it."""
    path = run / name
    if path.is_symlink() or (path.exists() and not path.resolve().is_relative_to(run.resolve())):
        raise fail(f"{path} is a link out of the run directory; remove it, or choose where to "
                   "write with --out")  # fmt: skip
    return path
