"""Ctrl-C or SIGTERM during training, in every application on the driver: exit 130, no
traceback, a loadable run with a report (issue 17)."""

from __future__ import annotations

import signal

import pytest

from clitest import invoke
from rnnkit.training.progress import StopSignals

TINY = {
    "sentiment": ["--limit", "40", "--hidden", "4", "--embedding", "4", "--steps", "20"],
    "translate": ["--data", "numbers", "--high", "99", "--hidden", "8", "--embedding", "4",
                  "--steps", "20", "--beam", "1"],
}  # fmt: skip


@pytest.mark.parametrize("task, sig", [("sentiment", signal.SIGTERM), ("translate", signal.SIGINT)])
def test_a_signal_before_the_first_validation_keeps_a_run(task, sig, tmp_path, monkeypatch):
    enter = StopSignals.__enter__

    def interrupted_at_once(self):  # as if the signal came during the first step
        self.received = sig
        return enter(self)

    monkeypatch.setattr(StopSignals, "__enter__", interrupted_at_once)
    out = tmp_path / "cut"
    result = invoke("train", task, *TINY[task], "--threads", "1", "--quiet", "--out", out)
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    assert (out / "report.html").exists() and (out / "results.json").exists()
