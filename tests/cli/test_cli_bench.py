"""`rnnkit bench` on a tiny grid: it runs, reports the targets and writes JSON + markdown.

No timing assertions: speed is measured in benchmarks/, never in unit tests.
"""

import json

import pytest
import torch
from typer.testing import CliRunner

from rnnkit import kernels
from rnnkit.cli import app

TINY = [
    "--sizes",
    "2x3x8",
    "--stream-h",
    "8",
    "--stream-steps",
    "2",
    "--reps",
    "1",
    "--peak-n",
    "64",
    "--no-onnx",
]


@pytest.mark.skipif(not kernels.available(), reason="native kernels unavailable")
def test_bench_writes_json_and_markdown(tmp_path):
    threads = torch.get_num_threads()
    result = CliRunner().invoke(
        app, ["bench", *TINY, "--threads", "1", "--clock", "cpu", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == threads  # the run restores torch's threads
    data = json.loads((tmp_path / "speed.json").read_text())
    assert data["meta"]["threads"] == 1 and data["meta"]["clock"] == "cpu"
    seq = data["sequence"]
    assert {(r["cell"], r["mode"]) for r in seq} == {
        (c, m) for c in ("elman", "gru", "lstm") for m in ("inference", "training")
    }
    assert all(set(r["ms"]) == {"fused", "torch", "reference"} for r in seq)
    assert {s["cell"] for s in data["streaming"]} == {"elman", "gru", "lstm"}
    assert all("met" in t for t in data["targets"])
    md = (tmp_path / "speed.md").read_text()
    assert "| cell |" in md and "Targets (issue 6)" in md
    assert "Targets (issue 6)" in result.output


def test_bench_rejects_bad_sizes(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--sizes", "2x3", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert not (tmp_path / "speed.json").exists()


def test_bench_rejects_bad_clock(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--clock", "sundial", "--out", str(tmp_path)])
    assert result.exit_code == 2
