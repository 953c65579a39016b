"""The `rnnkit` command (typer + rich). Thin: parses options, calls tasks, prints results.

Imports anything; imported by nothing.
"""

from __future__ import annotations

import os

# Set before torch loads libgomp, which reads it once. libgomp's default: a thread waiting at a
# barrier spins 300,000 times before it sleeps; on cores busy with other work it spins on the
# CPU that the thread with the work needs. 10,000 (libgomp itself takes 1,000 when it sees more
# threads than cores, which it cannot see for other processes): a 2-thread training step on the
# loaded 2-core machine went from 817 to 11 ms (benchmarks/README.md, "OpenMP waits on a shared
# machine"). A value the user set wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from .app import app, main  # noqa: E402 - after the variable, which torch's import reads

__all__ = ["app", "main"]
