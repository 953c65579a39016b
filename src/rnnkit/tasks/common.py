"""What the application tasks share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class TaskRun:
    """A finished training command: its run directory, how training ended, its results."""

    path: Path
    status: str  # the Trainer's: completed, early_stopped, time_budget, interrupted, ...
    message: str
    steps: int
    seconds: float
    results: dict
    report: Path


def fit_and_reload(
    model: Any,
    config: Any,
    out: Path,
    train: Any,
    val: Any,
    extra: dict,
    files: dict[str, Any],
    console: Any = None,
) -> tuple[Any, Any, Any]:
    """Train with full BPTT into run directory `out` and reload its best weights.

    `files` (name -> JSON value: vocabularies, label lists) are written into the run when
    training starts, so even an interrupted run can be loaded. A diverged run raises DataError
    with the Trainer's message.

    Returns:
        (the Trainer, for logging test metrics into metrics.jsonl; its FitResult; the model
        reloaded from `out`, in eval mode).
    """
    from ..algorithms import BPTT
    from ..data.text import DataError
    from ..training import Callback, Trainer, load_run, write_run_json

    class WriteFiles(Callback):
        def on_fit_start(self, trainer) -> None:
            for name, value in files.items():
                write_run_json(out, name, value)

    trainer = Trainer(
        model, BPTT(), config, run_dir=out, callbacks=[WriteFiles()], extra=extra,
        overwrite=True, console=console,
    )  # fmt: skip
    result = trainer.fit(train, val)
    if result.status == "diverged":
        raise DataError(f"training diverged: {result.message}")
    return trainer, result, load_run(out).model
