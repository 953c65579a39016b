"""The root typer app. Subcommands live in sibling modules and are registered here.

A command module has `register(app)`; `train` (train.py) is a group with one command per
application, derived from its options (tasks/<name>/options.py).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn


class OneLineErrors(typer.core.TyperGroup):
    """Usage errors (a bad flag, a value of the wrong type) as one `error:` line, exit code 2."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
        from typer.exceptions import Abort

        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as err:
            err.show()
            sys.exit(err.exit_code)
        except ClickException as err:
            message = " ".join(err.format_message().split())
            print(f"error: {message} (see --help)", file=sys.stderr, flush=True)
            sys.exit(err.exit_code)
        except Abort:
            print("aborted", file=sys.stderr)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="rnnkit",
    cls=OneLineErrors,
    help="Recurrent neural networks: train, generate, evaluate, inspect.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
train_app = typer.Typer(help="Train a model for an application.", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"rnnkit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Recurrent neural networks: train, generate, evaluate, inspect."""


@app.command()
def demo(
    steps: Annotated[int, typer.Option(min=1, help="Training updates.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train a 2-layer LSTM to echo a digit stream 3 steps late, and show what it learned."""
    from ..tasks.demo import DELAY, run_demo

    console.print(
        f"[bold]Task[/]: read random digits, output each digit again {DELAY} steps later."
    )
    with Progress(
        TextColumn("training"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("train", total=steps, loss=float("nan"))
        result = run_demo(steps, seed, lambda s, loss: bar.update(task, advance=1, loss=loss))
    console.print(f"input : {' '.join(map(str, result.example_input))}")
    console.print(f"output: {' '.join(map(str, result.example_output))}")
    console.print(
        f"[bold]accuracy[/] on fresh sequences (after the first {DELAY} steps): "
        f"{result.accuracy:.1%}"
    )


def _register_commands() -> None:
    from . import (
        anomaly,
        audio,
        bench,
        datasets,
        forecast,
        inspect,
        runs,
        sentiment,
        text,
        train,
        translate,
    )

    text.register(app)
    train.register(app)
    for module in (sentiment, translate, forecast, anomaly, audio, inspect, datasets, runs, bench):
        module.register(app)


_register_commands()


def main() -> None:
    app()
