"""Where a run ran: recorded with every run, because speed and timed budgets depend on it.

A time-budgeted run trains fewer steps on a busy or slower machine, so its figures can only be
compared with the machine beside them; the load average says how much other work shared it.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import torch


def load_average() -> tuple[float, float, float] | None:
    """The 1-, 5- and 15-minute load averages (other work on the machine); None on Windows."""
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def cpu_model() -> str | None:
    """The processor's name, e.g. "Intel(R) Xeon(R) Processor" (None if it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict[str, Any]:
    """A JSON-ready description of this machine and process, now.

    Keys: cpu (model name), cpus (logical cores), torch_threads, load_average ([1, 5, 15]
    minutes, or None), rnnkit, torch and python versions, platform, and kernels: whether the
    fused native kernels load ("fused") or why not (rnnkit.kernels.available(); the first call
    in a fresh cache builds them, ~4 s, and impl="auto" would do so anyway).

    Example:
        >>> info = machine_info()
        >>> info["cpus"], info["torch_threads"], info["load_average"]
    """
    from .. import __version__, kernels

    status = kernels.available()
    load = load_average()
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": None if load is None else [round(v, 2) for v in load],
        "rnnkit": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kernels": "fused" if status else f"unavailable: {status.reason}",
    }


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
    chosen = auto_threads()
    torch.set_num_threads(chosen)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return (
        f"using {chosen} thread(s): load average {load:.1f} on {os.cpu_count()} cores "
        "(--threads to choose)"
    )
