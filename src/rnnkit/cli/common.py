"""What the command modules share: the `train` group, the stderr console, run-directory names."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

DEFAULT_OUT = "runs"


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
