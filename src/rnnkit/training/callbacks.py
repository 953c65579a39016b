"""Callbacks: hooks a task adds to the Trainer without touching the loop.

Subclass `Callback` and override what you need; every hook gets the Trainer, whose `step`,
`elapsed`, `state` (a TrainerState), `model`, `run_dir` and `should_stop` (set it to True to
stop after this step) are public. `on_eval_end` may add keys to the evaluation record before
it is written to metrics.jsonl (e.g. a generated text sample).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Callback:
    """No-op hooks, called in this order: fit_start, (step_end, log, eval_end, checkpoint)*,
    fit_end.

    Example:
        >>> class Sample(Callback):
        ...     def on_eval_end(self, trainer, record):
        ...         record["sample"] = generate(trainer.model)
    """

    def on_fit_start(self, trainer: Any) -> None: ...

    def on_step_end(self, trainer: Any, logs: dict[str, Any]) -> None: ...

    def on_log(self, trainer: Any, record: dict[str, Any]) -> None: ...

    def on_eval_end(self, trainer: Any, record: dict[str, Any]) -> None: ...

    def on_checkpoint(self, trainer: Any, path: Any) -> None: ...

    def on_fit_end(self, trainer: Any, result: Any) -> None: ...


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. `LambdaCallback(on_eval_end=fn)`."""

    HOOKS = ("on_fit_start", "on_step_end", "on_log", "on_eval_end", "on_checkpoint", "on_fit_end")

    def __init__(self, **hooks: Callable[..., None]):
        unknown = set(hooks) - set(self.HOOKS)
        if unknown:
            raise ValueError(f"LambdaCallback: unknown hooks {sorted(unknown)}; use {self.HOOKS}")
        for name, fn in hooks.items():
            setattr(self, name, fn)
