"""Helpers of the task tests: run a command in-process, check a usage error, a toy series."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from rnnkit.cli import app


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, *words) -> None:
    """Exit code 2, one `error:` line on stderr naming each of `words`, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert "Traceback" not in result.output


def write_series_csv(path):
    """160 months of a 12-step seasonal load with noise and one gap (month 49)."""
    t = np.arange(160)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.3, 160)
    lines = ["month,load"] + [f"{i},{v:.3f}" for i, v in zip(t, y, strict=True)]
    lines[50] = "49,"  # a gap
    path.write_text("\n".join(lines) + "\n")
    return path
