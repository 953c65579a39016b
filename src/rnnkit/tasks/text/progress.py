"""What a text run shows and chooses while it trains: a progress bar over its wall-clock budget
(the Trainer's own bar counts steps) and torch's threads when --threads is not given."""

from __future__ import annotations

import os

from rich.console import Console

from ...training import Callback


def auto_threads(cores: int | None = None, load: float | None = None) -> int:
    """Threads for torch when --threads is not given: the cores other processes leave idle (>= 1).

    On a machine shared with other work, OpenMP threads that wait on a busy core spin and
    slow training several-fold (measured: 1 thread ran 3x faster than 2 on 2 cores at load 12).
    """
    cores = cores or os.cpu_count() or 1
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, cores - round(load)))


def set_auto_threads() -> str:
    """Give torch auto_threads() threads; returns a note saying what was chosen and why."""
    import torch

    chosen = auto_threads()
    torch.set_num_threads(chosen)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return (
        f"using {chosen} thread(s): load average {load:.1f} on {os.cpu_count()} cores "
        "(--threads to choose)"
    )


class TimeProgress(Callback):
    """A progress bar over a wall-clock budget (the Trainer's own bar counts steps)."""

    def __init__(self, budget_s: float, console: Console):
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
