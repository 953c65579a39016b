"""What the Trainer shows and hears while it runs: a progress bar, and stop signals.

    ProgressBar   a rich bar over the step budget with loss, validation loss and throughput
    TimeProgress  a callback drawing a bar over a wall-clock budget instead (--minutes alone)
    StopSignals   SIGINT (Ctrl-C) and SIGTERM ask the loop to stop after the current step

Both are context managers entered for the duration of `Trainer.fit`; neither touches the model.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from .callbacks import Callback


class ProgressBar:
    """A rich progress bar with loss and throughput (silent when disabled).

    Reads the trainer's step, last validation metrics and logging window on each `update`.
    """

    def __init__(self, trainer: Any, enabled: bool):
        self.t, self.enabled, self.bar = trainer, enabled, None
        self.console = trainer.console

    def __enter__(self) -> ProgressBar:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = self.console or Console(stderr=True)
        self.bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[val]}"),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.bar.__enter__()
        self.task = self.bar.add_task(
            "train", total=self.t.config.steps, completed=self.t.step, loss="-", val="", speed=""
        )
        return self

    def update(self, result) -> None:
        """Show the step just taken; `result` is the gradient algorithm's StepResult."""
        if self.bar is None:
            return
        t = self.t
        w = t.window
        speed = f"{w.throughput:,.0f} {w.unit}/s" if w.seconds else ""
        val = "" if t.state.last_val is None else f"val {t.state.last_val['loss']:.4f}"
        self.bar.update(
            self.task, completed=t.step, loss=f"{result.loss:.4f}", val=val, speed=speed
        )

    def message(self, text: str, error: bool = False) -> None:
        if self.enabled and self.console is not None:
            self.console.print(f"[red]{text}[/]" if error else text)

    def __exit__(self, *exc) -> bool:
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


class StopSignals:
    """The first SIGINT or SIGTERM asks the loop to stop after the current step (it then saves
    a checkpoint and ends "interrupted"); a second one aborts at once (KeyboardInterrupt).

    SIGTERM is what a job scheduler or `kill` sends before killing: treating it like Ctrl-C
    leaves a resumable run. Handlers are installed only in the main thread (Python allows no
    other) and the previous ones are restored on exit.

    Example:
        >>> with StopSignals() as stop:
        ...     while not stop.requested:
        ...         step()
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self.previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.received is not None

    @property
    def name(self) -> str:
        """The first signal's name ("SIGINT", "SIGTERM"), "" if none came."""
        return "" if self.received is None else self.received.name

    def _handler(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> bool:
        for sig, handler in self.previous.items():
            if handler is not None:  # None: the handler was not set from Python
                signal.signal(sig, handler)
        self.previous = {}
        return False


class TimeProgress(Callback):
    """A progress bar over a wall-clock budget (the Trainer's own bar counts steps)."""

    def __init__(self, budget_s: float, console: Any):
        self.budget_s, self.console, self.bar, self.val = budget_s, console, None, ""

    def on_fit_start(self, trainer) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("[bold]train"), BarColumn(), TimeElapsedColumn(), TextColumn("/"),
            TextColumn(f"{self.budget_s / 60:g} min"), TextColumn("step {task.fields[step]}"),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[val]}"),
            TextColumn("{task.fields[speed]}"), console=self.console,
        )  # fmt: skip
        self.bar.__enter__()
        self.task = self.bar.add_task(
            "train", total=self.budget_s, step=0, loss="-", val="", speed=""
        )

    def on_step_end(self, trainer, logs) -> None:
        if self.bar is None or trainer.step % 5:
            return
        speed = trainer.items / trainer.elapsed if trainer.elapsed > 0 else 0.0
        self.bar.update(
            self.task, completed=min(trainer.elapsed, self.budget_s), step=trainer.step,
            loss=f"{logs['loss']:.3f}", val=self.val, speed=f"{speed:,.0f} tok/s",
        )  # fmt: skip

    def on_eval_end(self, trainer, record) -> None:
        self.val = f"val {record['loss']:.3f}"

    def on_fit_end(self, trainer, result) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.budget_s, val=self.val)
            self.bar.__exit__(None, None, None)
            self.bar = None
        self.console.print(f"[dim]{result.message}[/]")
