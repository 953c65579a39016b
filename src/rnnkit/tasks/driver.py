"""One driver for every application: train a Task into a run directory, load it back.

    train(task, options, out)  validate -> optional deps -> data -> overwrite policy -> threads
                               -> seed -> build -> fit (files written at start) -> best weights
                               -> evaluate + baselines -> metrics.jsonl -> results.json -> report
    resume(run_dir, steps=..)  the same, continuing the run's checkpoint with its stored
                               options (a budget may be given anew)
    load(run_dir)              the task that made the run, and its predictor

The run record (config.json["extra"]) is the same for every task: see rnnkit.training.record.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..record import SCHEMA, run_record
from .options import OptionError, check_options, resolve_device, to_dict
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


def machine(device: str = "cpu") -> dict[str, Any]:
    """machine_info(), with the GPU's name when training runs on CUDA `device`."""
    from ..training import machine_info

    info = machine_info()
    if device.startswith("cuda"):
        import torch

        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def train_device(name: str, processes: int = 1) -> str:
    """The device a run trains on, by name: resolve_device's ("auto" resolved, checked against
    this machine). Several processes (--nproc, torchrun) train on the CPU alone."""
    device = resolve_device(name)
    if processes > 1 and device.type != "cpu":
        raise OptionError("device", "cpu when several processes train (--nproc > 1)", name)
    return str(device)


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
    resume: bool = False  # continue the checkpoint in `out` (see `resume`)
    resume_command: str | None = None  # named when training is interrupted
    member: int = 0  # the ensemble member being trained (fit_members)


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
    resume: bool = False,
) -> TaskRun:
    """Train `task` with `options` into run directory `out`; evaluate; write the report.
    With `resume`, continue the checkpoint in `out` instead (use `resume(out)`, which reads
    the options the run was trained with).

    Raises:
        OptionError: an option is out of range (names the field).
        DataError: the data cannot be used, or training diverged.
        RunError: `out` holds something that must not be replaced.
    """
    from contextlib import nullcontext

    from ..deps import require
    from ..training import distributed, seed_everything, write_run_json
    from ..training.run import RunLock, check_out_dir, prepare_out_dir

    task = get_task(task) if isinstance(task, str) else task
    if not isinstance(options, task.options):
        raise TypeError(f"{task.name}: options must be {task.options.__name__}")
    say = on_phase or (lambda text: None)
    check_options(options)
    data_arg = getattr(options, "data", None)
    if isinstance(data_arg, str) and Path(data_arg).exists():
        # a file is recorded by its absolute path: `evaluate RUN` and `--resume` must not
        # depend on the directory they are run from
        options = dataclasses.replace(options, data=str(Path(data_arg).resolve()))
    # checked here, not when options are made (a GPU run's options load on any machine); the
    # run records the device it trains on ("auto" resolved), every Trainer of the task gets it
    options = dataclasses.replace(options, device=train_device(
        options.device, distributed.World.of().size))  # fmt: skip
    require(*task.requires, what=f"rnnkit train {task.run_name(options)}")
    out = Path(out)
    # before the data step: it may train (sequence-classify's automatic settings), and
    # --threads bounds all of a run's work
    cap_threads(getattr(options, "threads", None), say)
    data = task.prepare(options)
    writer = distributed.World.of().writer  # with several processes, rank 0 alone writes
    if writer and isinstance(data.summary.get("note"), str):  # what the data step left out
        say(data.summary["note"])
    if not resume and writer:
        check_out_dir(out, overwrite)  # refuse before the lock file is made
    # one writer per run directory, from the overwrite check to the report
    with RunLock(out) if writer else nullcontext():
        if not resume and writer:
            prepare_out_dir(out, overwrite)
        seed_everything(options.seed)
        model = task.build(options, data)
        config = dataclasses.replace(task.train_config(options, data), progress=progress)
        extra = {"schema": SCHEMA, "task": task.name, "options": to_dict(options),
                 "data": data.summary, "machine": machine(options.device)}  # fmt: skip
        ctx = Context(options, data, model, config, out, extra, console, say, resume,
                      resume_command=f"rnnkit train {task.name.replace('_', '-')} --resume "
                                     f"{shlex.quote(str(out))}")  # fmt: skip
        fitted = task.fit(ctx)
        if not writer:  # the other ranks trained; rank 0 evaluates and reports
            distributed.wait_for_writer()
            fit = fitted.result
            report = out / task.report_file  # rank 0's
            return TaskRun(out, fit.status, fit.message, fit.step, fit.elapsed, {}, report)
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
    distributed.wait_for_writer()
    return TaskRun(out, fit.status, fit.message, fit.step, fit.elapsed, results, report)


def fit_monitor(fitted: Fitted) -> str:
    return fitted.trainer.config.monitor


def member_dir(run_dir: str | Path, k: int) -> Path:
    """Where ensemble member k lives: the run directory itself for k = 0, else member-<k>/."""
    return Path(run_dir) if k == 0 else Path(run_dir) / f"member-{k}"


def member_seed(seed: int, k: int) -> int:
    """Member k of the run with --seed S is seeded S·1000 + k (member 0 keeps S), so the
    members of different seeds never coincide."""
    return seed if k == 0 else seed * 1000 + k


def member_models(run: Any, n: int) -> list:
    """The n members' models of an ensemble run (member 0 is `run`'s own)."""
    from ..training import load_run

    return [run.model] + [load_run(member_dir(run.path, k)).model for k in range(1, n)]


def ensemble_models(run: Any) -> list:
    """The members' models of a run trained with `--ensemble N` (its recorded N; 1 if none)."""
    return member_models(run, int(run_record(run.extra)["options"].get("ensemble", 1)))


def fit_members(task: Task, ctx: Context, n: int,
                fit: Callable[[Context], Fitted] | None = None, jobs: int = 1,
                threads: int = 1) -> tuple[list[Fitted], Any]:  # fmt: skip
    """An ensemble's n members: member k seeded member_seed(--seed, k), trained by `fit`
    (default fit_one) into member_dir(out, k) with ctx.member = k; member 0 is the model the
    driver built. In turn, or with jobs > 1 that many at once, each in its own process with
    `threads` torch threads (rnnkit.tasks.members; `fit` must then pickle: a task's bound
    method), the same weights at the same thread count. A Ctrl-C / SIGTERM stops the ensemble
    after the member(s) it ends. -> (the members' Fitted, the result the run ends with: the
    interrupted member's, else member 0's)."""
    from ..training import seed_everything

    if jobs > 1 and n > 1:
        from .members import fit_parallel

        return fit_parallel(task, ctx, n, fit or FitOne(task), jobs, threads)
    fits: list[Fitted] = []
    for k in range(n):
        seed = member_seed(ctx.options.seed, k)
        if k > 0:
            seed_everything(seed)
        member = dataclasses.replace(
            ctx, model=ctx.model if k == 0 else task.build(ctx.options, ctx.data),
            config=dataclasses.replace(ctx.config, seed=seed), out=member_dir(ctx.out, k),
            member=k,
        )  # fmt: skip
        if n > 1:
            ctx.say(f"member {k + 1} of {n} (seed {seed})")
        fits.append(fit(member) if fit is not None else fit_one(task, member))
        if fits[-1].result.status == "interrupted":
            if n > 1:
                ctx.say(f"stopped after member {k + 1} of {n}")
            break
    ended = fits[-1].result if fits[-1].result.status == "interrupted" else fits[0].result
    return fits, ended


@dataclass(frozen=True)
class FitOne:
    """fit_one(task, member) as a callable that pickles (for members trained at once)."""

    task: Task

    def __call__(self, member: Context) -> Fitted:
        return fit_one(self.task, member)


def fit_one(task: Task, ctx: Context, callbacks: tuple = (), config: Any = None) -> Fitted:
    """One Trainer run into ctx.out; the task's files are written when training starts; the
    model comes back with its best weights (on validation), in eval mode.

    `callbacks` are added to the Trainer's; `config` replaces ctx.config (e.g. progress off
    when the task draws its own bar)."""
    from ..data.text import DataError
    from ..training import Callback, Trainer, distributed, load_run, write_run_json

    files = task.files(ctx.options, ctx.data)

    class WriteFiles(Callback):
        def on_fit_start(self, trainer) -> None:
            for name, value in files.items() if trainer.run_dir is not None else ():
                write_run_json(ctx.out, name, value)

    train, val = task.batches(ctx.options, ctx.data)
    model = distributed.wrap(ctx.model)  # DDP when torchrun started several ranks
    trainer = Trainer(
        model, task.algorithm(ctx.options), config or ctx.config, run_dir=ctx.out,
        callbacks=[WriteFiles(), *callbacks], extra=ctx.extra, overwrite=True, console=ctx.console,
        resume_command=ctx.resume_command, device=ctx.options.device,
    )  # fmt: skip
    result = trainer.fit(train, val, resume=ctx.resume)
    if result.status == "diverged":
        raise DataError(f"training diverged: {result.message}")
    if trainer.run_dir is None:  # another rank than 0: its model, not rank 0's files
        return Fitted(trainer.model.eval(), trainer, result)
    return Fitted(load_run(ctx.out).model, trainer, result)


# ---- resuming -----------------------------------------------------------------------------

BUDGETS = ("steps", "epochs", "minutes")  # what a resumed run may be given anew
# settings of this machine, not of the run (parallel_members: sequence-classify's members
# trained at once; each member's seed and data are its own either way; device: a checkpoint
# continues on another, its model and optimiser state moved there)
MACHINE = ("threads", "parallel_members", "device")


def resumed_options(run_dir: str | Path, **changes: Any) -> tuple[Task, Any]:
    """(the Task that made the run, the options it was trained with, `changes` applied).

    A budget given (steps, epochs, minutes) replaces the run's whole budget: `steps=4000`
    alone continues to step 4000 whatever epochs or minutes the run had. `threads`, `device`
    (and `parallel_members`, where the task has it) may change too; nothing else may (the data
    and the model must be the run's).

    Raises:
        RunError: `run_dir` is not a task's run, or has no checkpoint to continue.
        OptionError: a change is not a budget, or out of range.
    """
    from ..training import RunError
    from ..training.run import latest_checkpoint, read_run_config
    from .options import OptionError, from_dict

    record = run_record(read_run_config(run_dir).get("extra") or {})
    name = record["task"]
    if name not in task_names() or not isinstance(record.get("options"), dict):
        raise RunError(f"{run_dir}: not a run of an rnnkit application (task {name!r})")
    if record["schema"] != SCHEMA:
        raise RunError(f"{run_dir}: written by an older rnnkit (run schema {record['schema']}); "
                       f"it cannot be resumed")  # fmt: skip
    if latest_checkpoint(run_dir) is None:
        raise RunError(f"{run_dir}: has no checkpoint to resume (it stopped before the first)")
    other = sorted(set(changes) - set(BUDGETS) - set(MACHINE))
    if other:
        raise OptionError(other[0], "left as the run had it (a resumed run keeps its options; "
                          f"only {', '.join(BUDGETS + MACHINE)} may change)")  # fmt: skip
    task = get_task(name)
    options = from_dict(task.options, {**task.legacy_options, **record["options"]})
    absent = sorted(k for k in changes if not hasattr(options, k))
    if absent:
        raise OptionError(absent[0], f"not an option of {name.replace('_', '-')}")
    if any(k in BUDGETS for k in changes):
        changes = {**dict.fromkeys(BUDGETS), **changes}
    return task, dataclasses.replace(options, **changes)


def resume(run_dir: str | Path, *, console: Any = None, progress: bool = True,
           on_phase: Callable[[str], None] | None = None, **changes: Any) -> TaskRun:
    """Continue a task's run from its latest checkpoint with the options it was trained with
    (`changes`: a new budget, see `resumed_options`); then evaluate and report as `train`.
    Resuming an interrupted run gives the same parameters as the run not interrupted.

    Example:
        >>> driver.resume("runs/text-20260101-120000", steps=4000)
    """
    task, options = resumed_options(run_dir, **changes)
    return train(task, options, run_dir, console=console, progress=progress, on_phase=on_phase,
                 resume=True)  # fmt: skip


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
