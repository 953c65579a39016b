"""The Task pattern: what an application fills in, and what the driver does for all of them.

An application is a package `rnnkit/tasks/<name>/`:

    __init__.py   NAME, HELP, Options (torch-free, so `rnnkit --help` stays fast) and the
                  Python API (`train`, `load`), loaded lazily
    options.py    the options dataclass (`@options`, subclassing TrainOptions)
    task.py       a `Task` subclass: data, model, training config, evaluation and baselines,
                  report sections, the files a run needs, and the loaded predictor

The driver (`rnnkit.tasks.driver.train`) runs any task the same way: validate, check optional
dependencies, prepare data, apply the overwrite policy, cap threads, seed, build, write the
run's files when training starts (so an interrupted run loads), fit, reload the best weights,
evaluate model and baselines on the test split, log the test metrics, write results.json and
report.html. A task overrides only what is its own; `fit` is a hook too, for tasks that train
several models (an ensemble) or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from torch import nn

    from ..config import TrainConfig
    from ..training import FitResult, Run, Trainer
    from ..training.report import Report


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


@dataclass
class Fitted:
    """What `Task.fit` hands back: the trained model (best weights, eval mode), the Trainer
    (for logging the test metrics) and its FitResult."""

    model: Any
    trainer: Trainer
    result: FitResult


class Task:
    """Base of every application. Class attributes name it; methods are the hooks.

    Data objects are the task's own; the driver reads only `data.summary` (a JSON dict: source,
    split sizes, ...), stored in config.json with the options and the machine.
    """

    name: ClassVar[str]
    options: ClassVar[type]
    requires: ClassVar[tuple[str, ...]] = ()  # optional modules (e.g. "sklearn"), checked first
    # options added after runs were recorded, with the value those runs implicitly had
    # (a resumed run must go on as it began, not take a newer default)
    legacy_options: ClassVar[dict[str, Any]] = {}
    results_file: ClassVar[str] = "results.json"
    report_file: ClassVar[str] = "report.html"
    title: ClassVar[str] = "Run"  # the report's heading: "<title>: <run directory>"
    evaluation: ClassVar[str] = "the test split, the model and the baselines"  # said when it starts
    training_section: ClassVar[bool] = True  # False: the task's report draws its own curves

    # ---- data and model ------------------------------------------------------------------

    def prepare(self, options: Any) -> Any:
        """Load and split the data; fit vocabularies or scalers on the training split only."""
        raise NotImplementedError

    def build(self, options: Any, data: Any) -> nn.Module:
        raise NotImplementedError

    def files(self, options: Any, data: Any) -> dict[str, Any]:
        """JSON files (name -> value) a run needs to reload: vocabularies, labels, scalers."""
        return {}

    # ---- training --------------------------------------------------------------------------

    def train_config(self, options: Any, data: Any) -> TrainConfig:
        raise NotImplementedError

    def algorithm(self, options: Any) -> Any:
        from ..algorithms import BPTT

        return BPTT()

    def batches(self, options: Any, data: Any) -> tuple[Any, Any]:
        """(training batches: a callable (step, generator) -> batch or an iterable, validation
        batches or None)."""
        raise NotImplementedError

    def fit(self, ctx: Any) -> Fitted:
        """Train; the default is one Trainer run into the run directory (driver.fit_one)."""
        from .driver import fit_one

        return fit_one(self, ctx)

    # ---- results ---------------------------------------------------------------------------

    def evaluate(self, options: Any, data: Any, fitted: Fitted) -> dict[str, Any]:
        """Test metrics of the model and of the baselines computed in the same run."""
        raise NotImplementedError

    def test_metrics(self, results: dict[str, Any]) -> dict[str, float]:
        """The flat figures logged to metrics.jsonl as the test evaluation."""
        return {}

    def summary(self, results: dict[str, Any]) -> tuple[str, list[str], list[list[Any]]]:
        """(title, header, rows) printed by `rnnkit train <task>` at the end."""
        return "", [], []

    def report(self, r: Report, run: Run, results: dict[str, Any]) -> None:
        """The task's report sections (the driver writes the title, training and machine)."""

    def run_name(self, options: Any) -> str:
        """The prefix of the default run directory, runs/<run_name>-<date>-<time>."""
        return self.name.replace("_", "-")

    # ---- loading ---------------------------------------------------------------------------

    def load(self, run: Run) -> Any:
        """The trained run, loaded for prediction (the task's own predictor object)."""
        return run

    def export_model(self, run: Run) -> nn.Module:
        """The network `rnnkit export` writes: the run's model, or for an ensemble one module
        that runs its members and combines them as the predictor does (rnnkit.export)."""
        return run.model
