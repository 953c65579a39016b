"""`rnnkit train <task>`: one command per application, derived from its options dataclass.

Each field of the task's options (rnnkit.tasks.<name>.options) becomes a flag with the help
text and default declared there; `--out`, `--overwrite`, `--quiet`, `--resume` and `--nproc`
are added for every task. Nothing here names a task: a new application package appears as a
new command. Under torchrun every rank runs the command (rnnkit.training.distributed); `--nproc
N` launches that on this machine.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import typer

from .common import default_out, stderr_console, train_group
from .errors import fail, user_errors

RUN_FLAGS = [
    ("out", Path | None, None, "Run directory. Default: runs/<task>-<date>-<time>."),
    ("overwrite", bool, False, "Replace an existing --out run directory."),
    ("quiet", bool, False, "No progress bar."),
    ("resume", Path | None, None, "Continue this run directory from its last checkpoint with "
     "the options it was trained with; --steps, --epochs or --minutes give it a new budget."),
    ("nproc", int, 1, "Processes to train with, data parallel on this machine (torchrun); the "
     "batch is split between them; --threads is per process (default: the cores shared out). "
     "A run resumes on any number."),
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
        from ..training import distributed

        nproc = values["nproc"]
        if nproc < 1:
            raise fail(f"--nproc must be >= 1, got {nproc}")
        if nproc > 1 and distributed.launched():
            raise fail("--nproc launches torchrun itself; under torchrun, drop it")
        try:
            if nproc > 1:
                _launch(ctx, name, options_cls, values)
                return
            with distributed.session() as world:
                _train(ctx, name, options_cls, values, world)
        except distributed.PeerFailure as err:
            if os.environ.get(distributed.LAUNCHED_ENV):
                raise typer.Exit(1) from None  # the launcher says what failed, once
            raise fail(str(err), code=1) from None

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = f"train_{name}"
    return command


def _train(ctx, name: str, options_cls: type, values: dict, world) -> None:
    """The command in this process (one rank of several under torchrun)."""
    from rich.console import Console

    from ..tasks import driver
    from ..training.distributed import ShardError, broadcast

    out, overwrite, quiet, resume, _ = (values.pop(key) for key, *_ in RUN_FLAGS)
    console = stderr_console()
    quiet = quiet or not world.writer  # rank 0 alone draws and prints
    phase = {"console": console, "progress": not quiet,
             "on_phase": (lambda text: console.print(f"[dim]{text}[/]")) if world.writer
             else None}  # fmt: skip
    with user_errors(ShardError):
        if resume is not None:
            run, task = _resume(ctx, name, resume, values, out, overwrite, phase)
        else:
            options = options_cls(**values)
            task = driver.get_task(name)
            out = broadcast(default_out(out, task.run_name(options)))  # one name for all ranks
            run = driver.train(task, options, out, overwrite=overwrite, **phase)
    if not world.writer:
        return
    title, header, rows = task.summary(run.results)
    if rows:
        Console().print(_table(title, header, rows))
    print(f"run: {run.path}\nreport: {run.report}")
    if run.status == "interrupted":  # Ctrl-C / SIGTERM: the run is kept, the exit says so
        if quiet:  # else the progress bar has printed it
            console.print(run.message, soft_wrap=True, markup=False, highlight=False)
        raise typer.Exit(130)


def _launch(ctx, name: str, options_cls: type, values: dict) -> None:
    """`--nproc N`: check what can be checked here, then run the command as N torchrun ranks
    with the flags given (and the run directory named, so every rank writes to one)."""
    from ..tasks import driver
    from ..training.distributed import PeerFailure, launch
    from ..training.run import check_out_dir, latest_checkpoint

    args = _argv(ctx, exclude=("nproc",))
    out, resume, nproc = values["out"], values["resume"], values["nproc"]
    run_flags = {key for key, *_ in RUN_FLAGS}
    with user_errors():
        if resume is None:
            options = options_cls(**{k: v for k, v in values.items() if k not in run_flags})
            if out is None:
                out = default_out(out, driver.get_task(name).run_name(options))
                args += ["--out", str(out)]
            check_out_dir(out, values["overwrite"])
        else:
            given = {k: v for k, v in values.items() if k not in run_flags and _given(ctx, k)}
            _, options = driver.resumed_options(resume, **given)
            out = resume
        driver.train_device(options.device, nproc)  # several processes train on the CPU
    if values["threads"] is None:  # the cores shared out, not each rank taking all idle ones
        args += ["--threads", str(max(1, (os.cpu_count() or 1) // nproc))]
    if options.batch % nproc:  # the global batch is split evenly between the ranks
        raise fail(f"--batch {options.batch} cannot be split evenly over --nproc {nproc}; "
                   f"use a batch divisible by {nproc}")  # fmt: skip
    try:
        code = launch(nproc, ["train", name.replace("_", "-"), *args], values["threads"])
    except PeerFailure as err:
        ckpt = latest_checkpoint(out) if Path(out).is_dir() else None
        kept = ("no checkpoint was saved" if ckpt is None else
                f"{out} keeps its checkpoint of step {int(ckpt.name.split('-')[1])}; resume with: "
                f"rnnkit train {name.replace('_', '-')} --resume {out} --nproc {nproc}")
        raise fail(f"{err}; {kept}", code=1) from None
    if code:  # interrupted: rank 0 has printed the command that resumes the run
        raise typer.Exit(code)


def _argv(ctx, exclude: tuple[str, ...]) -> list[str]:
    """The flags given on the command line, written out again (booleans as --x / --no-x)."""
    args = []
    for key, value in ctx.params.items():
        if key in exclude or not _given(ctx, key):
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{key.replace('_', '-')}")
        else:
            args += [flag, str(value)]
    return args


def _resume(ctx, name: str, run_dir: Path, values: dict, out, overwrite: bool, phase: dict):
    """`--resume RUN`: the flags given on the command line change the run's budget (or its
    threads, device); any other is an error, since the data and model must be the run's own."""
    from ..tasks import driver

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
