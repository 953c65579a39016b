"""What the application tasks share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
