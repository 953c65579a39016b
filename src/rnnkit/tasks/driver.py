"""One driver for every application: train a Task into a run directory, load it back.

    train(task, options, out)  validate -> optional deps -> data -> overwrite policy -> threads
                               -> seed -> build -> fit (files written at start) -> best weights
                               -> evaluate + baselines -> metrics.jsonl -> results.json -> report
    load(run_dir)              the task that made the run, and its predictor

The run record (config.json["extra"]) is the same for every task: see rnnkit.training.record.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..record import SCHEMA, run_record
from .options import check_options, to_dict
from .task import Fitted, Task, TaskRun

# ---- the task registry: every package under rnnkit/tasks/ with a TASK ----------------------


def task_names() -> list[str]:
    """The applications, by name (each package under rnnkit/tasks/ is one)."""
    from .. import tasks

    return sorted(m.name for m in pkgutil.iter_modules(tasks.__path__) if m.ispkg)


def task_package(name: str) -> Any:
    """The torch-free package of task `name` (NAME, HELP, Options)."""
    if name not in task_names():
        raise ValueError(f"unknown task {name!r}; known: {', '.join(task_names())}")
    return importlib.import_module(f"{__package__}.{name}")


def get_task(name: str) -> Task:
    """The Task object of application `name` (imports its model code)."""
    module = importlib.import_module(f"{__package__}.{name}.task")
    return module.TASK


def machine() -> dict[str, Any]:
    from ..training import machine_info

    return machine_info()


# ---- training -----------------------------------------------------------------------------


@dataclass
class Context:
    """What a Task's `fit` hook gets: everything the driver prepared."""

    options: Any
    data: Any
    model: Any
    config: Any
    out: Path
    extra: dict[str, Any]
    console: Any
    say: Callable[[str], None]


def cap_threads(threads: int | None, say: Callable[[str], None]) -> int | None:
    """torch's CPU threads: at most the machine's cores (more only spin), with a note."""
    if threads is None:
        return None
    cores = os.cpu_count() or 1
    if threads > cores:
        say(f"threads {threads} capped at this machine's {cores} cores")
        threads = cores
    import torch

    torch.set_num_threads(threads)
    return threads


def train(
    task: Task | str,
    options: Any,
    out: str | Path,
    *,
    overwrite: bool = False,
    console: Any = None,
    progress: bool = True,
    on_phase: Callable[[str], None] | None = None,
) -> TaskRun:
    """Train `task` with `options` into run directory `out`; evaluate; write the report.

    Raises:
        OptionError: an option is out of range (names the field).
        DataError: the data cannot be used, or training diverged.
        RunError: `out` holds something that must not be replaced.
    """
    from ..deps import require
    from ..training import seed_everything, write_run_json
    from ..training.run import RunLock, check_out_dir, prepare_out_dir

    task = get_task(task) if isinstance(task, str) else task
    if not isinstance(options, task.options):
        raise TypeError(f"{task.name}: options must be {task.options.__name__}")
    say = on_phase or (lambda text: None)
    check_options(options)
    require(*task.requires, what=f"rnnkit train {task.run_name(options)}")
    out = Path(out)
    data = task.prepare(options)
    check_out_dir(out, overwrite)  # refuse before the lock file is made
    with RunLock(out):  # one writer per run directory, from the overwrite check to the report
        prepare_out_dir(out, overwrite)
        cap_threads(getattr(options, "threads", None), say)
        seed_everything(options.seed)
        model = task.build(options, data)
        config = dataclasses.replace(task.train_config(options, data), progress=progress)
        extra = {"schema": SCHEMA, "task": task.name, "options": to_dict(options),
                 "data": data.summary, "machine": machine()}  # fmt: skip
        ctx = Context(options, data, model, config, out, extra, console, say)
        fitted = task.fit(ctx)
        if task.evaluation:
            say(f"evaluating: {task.evaluation}")
        results = task.evaluate(options, data, fitted)
        fit = fitted.result
        results["fit"] = {"status": fit.status, "message": fit.message, "steps": fit.step,
                          "seconds": fit.elapsed, "best": fit.best, "best_step": fit.best_step,
                          "monitor": fit_monitor(fitted)}  # fmt: skip
        results.setdefault("data", data.summary)
        test = task.test_metrics(results)
        if test:
            fitted.trainer.log({"split": "test", "event": "evaluation", **test})
        write_run_json(out, task.results_file, results)
        report = write_report(out, task)
    return TaskRun(out, fit.status, fit.message, fit.step, fit.elapsed, results, report)


def fit_monitor(fitted: Fitted) -> str:
    return fitted.trainer.config.monitor


def fit_one(task: Task, ctx: Context, callbacks: tuple = (), config: Any = None) -> Fitted:
    """One Trainer run into ctx.out; the task's files are written when training starts; the
    model comes back with its best weights (on validation), in eval mode.

    `callbacks` are added to the Trainer's; `config` replaces ctx.config (e.g. progress off
    when the task draws its own bar)."""
    from ..data.text import DataError
    from ..training import Callback, Trainer, load_run, write_run_json

    files = task.files(ctx.options, ctx.data)

    class WriteFiles(Callback):
        def on_fit_start(self, trainer) -> None:
            for name, value in files.items():
                write_run_json(ctx.out, name, value)

    train, val = task.batches(ctx.options, ctx.data)
    trainer = Trainer(
        ctx.model, task.algorithm(ctx.options), config or ctx.config, run_dir=ctx.out,
        callbacks=[WriteFiles(), *callbacks], extra=ctx.extra, overwrite=True, console=ctx.console,
    )  # fmt: skip
    result = trainer.fit(train, val)
    if result.status == "diverged":
        raise DataError(f"training diverged: {result.message}")
    return Fitted(load_run(ctx.out).model, trainer, result)


# ---- loading and reports ------------------------------------------------------------------


def load_run_of(run_dir: str | Path, name: str | None = None) -> tuple[Task, Any]:
    """(the Task that made the run, the loaded Run). RunError if it is not a task's run, or
    (with `name`) not a run of that task."""
    from ..training import RunError, load_run

    run = load_run(run_dir)
    record = run_record(run.extra)
    made_by = record["task"]
    if made_by is None or made_by not in task_names():
        raise RunError(f"{run_dir}: not a run of an rnnkit application (task {made_by!r})")
    if name is not None and made_by != name:
        raise RunError(
            f"{run_dir}: a {made_by} run, not a {name} run "
            f"(train one with: rnnkit train {name.replace('_', '-')})"
        )
    if record["schema"] != SCHEMA:
        raise RunError(
            f"{run_dir}: written by rnnkit 0.1 (run schema {record['schema']}); "
            f"retrain it with: rnnkit train {made_by.replace('_', '-')}"
        )
    return get_task(made_by), run


def load(run_dir: str | Path, name: str | None = None) -> Any:
    """The predictor of a trained run (the task's own: Classifier, Translator, ...)."""
    task, run = load_run_of(run_dir, name)
    return task.load(run)


def write_report(run_dir: str | Path, task: Task | None = None) -> Path:
    """(Re)write report.html from the run directory's files alone."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from ..training import load_run
    from .report import Report, training_section

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    record = run_record(run.extra)
    task = task or get_task(record["task"])
    results = run.read_json(task.results_file)
    r = Report(f"{task.title}: {run_dir.name}")
    task.report(r, run, results)
    if task.training_section:
        training_section(r, run, results.get("fit", {}))
    r.heading("Run")
    r.table(record.get("machine", {}))
    r.paragraph(f"options: {record['options']}", muted=True)
    return r.write(run_dir / task.report_file)
