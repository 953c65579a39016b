"""`rnnkit train <task>`: one command per application, derived from its options dataclass.

Each field of the task's options (rnnkit.tasks.<name>.options) becomes a flag with the help
text and default declared there; `--out`, `--overwrite`, `--quiet` and `--resume` are added
for every task. Nothing here names a task: a new application package appears as a new command.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import typer

from .common import default_out, stderr_console, train_group
from .errors import user_errors

RUN_FLAGS = [
    ("out", Path | None, None, "Run directory. Default: runs/<task>-<date>-<time>."),
    ("overwrite", bool, False, "Replace an existing --out run directory."),
    ("quiet", bool, False, "No progress bar."),
    ("resume", Path | None, None, "Continue this run directory from its last checkpoint with "
     "the options it was trained with; --steps, --epochs or --minutes give it a new budget."),
]


def register(app: typer.Typer) -> None:
    from ..tasks.driver import task_names, task_package

    train = train_group(app)
    for name in task_names():
        package = task_package(name)
        command = train_command(name, package.Options)
        train.command(name.replace("_", "-"), help=package.HELP)(command)


def train_command(name: str, options_cls: type):
    """A typer command function whose parameters are the fields of `options_cls`."""
    from ..tasks.options import field_specs

    specs = [(f, tp) for f, tp in field_specs(options_cls) if f.metadata.get("cli", True)]
    params = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=tp,
                          default=typer.Option(f.default, help=_help(f.metadata)))
        for f, tp in specs
    ]  # fmt: skip
    params.insert(0, inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                       annotation=typer.Context))
    params += [
        inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, annotation=tp,
                          default=typer.Option(default, help=text))
        for key, tp, default, text in RUN_FLAGS
    ]  # fmt: skip

    def command(ctx: typer.Context, **values: Any) -> None:
        from rich.console import Console

        from ..tasks import driver

        out, overwrite, quiet, resume = (values.pop(key) for key, *_ in RUN_FLAGS)
        console = stderr_console()
        phase = {"console": console, "progress": not quiet,
                 "on_phase": lambda text: console.print(f"[dim]{text}[/]")}  # fmt: skip
        with user_errors():
            if resume is not None:
                run, task = _resume(ctx, name, resume, values, out, overwrite, phase)
            else:
                options = options_cls(**values)
                task = driver.get_task(name)
                out = default_out(out, task.run_name(options))
                run = driver.train(task, options, out, overwrite=overwrite, **phase)
        title, header, rows = task.summary(run.results)
        if rows:
            Console().print(_table(title, header, rows))
        print(f"run: {run.path}\nreport: {run.report}")
        if run.status == "interrupted":  # Ctrl-C / SIGTERM: the run is kept, the exit says so
            if quiet:  # else the progress bar has printed it
                console.print(run.message, soft_wrap=True, markup=False, highlight=False)
            raise typer.Exit(130)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = f"train_{name}"
    return command


def _resume(ctx, name: str, run_dir: Path, values: dict, out, overwrite: bool, phase: dict):
    """`--resume RUN`: the flags given on the command line change the run's budget (or its
    threads); any other is an error, since the data and model must be the run's own."""
    from ..tasks import driver
    from .errors import fail

    if out is not None or overwrite:
        raise fail("--resume continues the run in place; drop --out / --overwrite")
    given = {k: v for k, v in values.items() if _given(ctx, k)}
    task, _ = driver.resumed_options(run_dir, **given)  # checks the flags and the run
    if task.name != name:
        raise fail(f"{run_dir}: a {task.name} run; resume it with: rnnkit train "
                   f"{task.name.replace('_', '-')} --resume {run_dir}")  # fmt: skip
    return driver.resume(run_dir, **phase, **given), task


def _given(ctx, key: str) -> bool:
    """Whether flag `key` was on the command line (not merely its default)."""
    source = ctx.get_parameter_source(key)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _help(meta) -> str | None:
    choices = meta.get("choices")
    text = meta.get("help") or ""
    return f"{text} One of: {', '.join(choices)}." if choices else text or None


def _table(title: str, header: list[str], rows: list[list[Any]]):
    from rich.table import Table

    table = Table(title=title)
    for col in header:
        table.add_column(col)
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    return table
