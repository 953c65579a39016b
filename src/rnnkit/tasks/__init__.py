"""Applications: one package per task, data -> model -> metrics -> report.

Imports anything below it in the chain (config .. training, data, diagnostics); imported by cli.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def lazy(package: str, modules: dict[str, str] | None = None) -> Callable[[str], Any]:
    """A task package's `__getattr__`: its names load from `<package>.task` (or the submodule
    `modules` names for them) on first use, so `--help` never imports torch.

    Example (in tasks/<name>/__init__.py):
        >>> __getattr__ = lazy(__name__)
    """
    modules = modules or {}

    def __getattr__(name: str) -> Any:
        if name.startswith("__") or name == "task" or name in modules.values():
            raise AttributeError(name)  # submodules: the import system sets them itself
        module = importlib.import_module(f"{package}.{modules.get(name, 'task')}")
        return getattr(module, name)

    return __getattr__


def entry_points(task: Any) -> tuple[Callable[..., Any], Callable[[Any], Any]]:
    """A task's Python API: `train(options, out, **kwargs)` (rnnkit.tasks.driver.train: train,
    evaluate model and baselines, write the run directory) and `load(run_dir)` (the task's
    predictor; RunError if `run_dir` is not a finished run of this task).

    Example (in tasks/<name>/task.py):
        >>> train, load = entry_points(TASK)
    """
    from . import driver

    def train(options: Any, out: Any, **kwargs: Any) -> Any:
        return driver.train(task, options, out, **kwargs)

    def load(run_dir: Any) -> Any:
        return driver.load(run_dir, task.name)

    command = task.name.replace("_", "-")
    train.__doc__ = f"`rnnkit train {command}` from Python, into run directory `out`."
    load.__doc__ = f"A `rnnkit train {command}` run directory, loaded for prediction."
    return train, load


@contextmanager
def malformed(run: Any, name: str) -> Iterator[None]:
    """Turn a missing key, a wrong type or a bad value met while reading a run's file `name`
    into RunError naming the file (a run directory edited or written by another version)."""
    from ..training import RunError

    try:
        yield
    except (KeyError, TypeError, ValueError) as err:  # ValueError: DataError too
        raise RunError(f"{run.path}/{name}: malformed ({err})") from None
