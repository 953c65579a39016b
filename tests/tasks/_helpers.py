"""Helpers of the series task tests: a toy monthly series (and the shared CLI helpers)."""

from __future__ import annotations

import numpy as np

from clitest import invoke, one_line_error  # noqa: F401  (re-exported for the series tests)


def write_series_csv(path):
    """160 months of a 12-step seasonal load with noise and one gap (month 49)."""
    t = np.arange(160)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.3, 160)
    lines = ["month,load"] + [f"{i},{v:.3f}" for i, v in zip(t, y, strict=True)]
    lines[50] = "49,"  # a gap
    path.write_text("\n".join(lines) + "\n")
    return path
