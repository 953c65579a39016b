"""The `rnnkit` command (typer + rich). Thin: parses options, calls tasks, prints results.

Imports anything; imported by nothing.
"""

from __future__ import annotations

from .app import app, main

__all__ = ["app", "main"]
