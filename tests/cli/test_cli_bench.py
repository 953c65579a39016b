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
    assert "| cell |" in md and "Targets (issue 11)" in md
    assert "Targets (issue 11)" in result.output


def test_bench_rejects_bad_sizes(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--sizes", "2x3", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert not (tmp_path / "speed.json").exists()


def test_bench_rejects_bad_clock(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--clock", "sundial", "--out", str(tmp_path)])
    assert result.exit_code == 2


def _row(cell, size, mode, torch_x, ort_x=None, peak=0.5):
    speedup = {"torch": torch_x, **({"onnxruntime": ort_x} if ort_x is not None else {})}
    B, T, H = size
    return {"cell": cell, "B": B, "T": T, "H": H, "mode": mode, "speedup": speedup,
            "fused_peak_fraction": peak}  # fmt: skip


def test_targets_are_issue_11_must_show():
    from rnnkit.bench.speed import targets

    rows = [
        _row("elman", (32, 100, 64), "training", 3.2),  # just under 3.3
        _row("gru", (32, 100, 64), "training", 3.8),  # exactly the target
        _row("lstm", (32, 100, 256), "training", 1.3),
        _row("lstm", (32, 100, 256), "inference", 0.95),
        _row("gru", (64, 100, 512), "inference", 1.2, ort_x=0.9),
        _row("gru", (64, 100, 512), "training", 1.2, peak=0.76),
        _row("elman", (8, 10, 16), "training", 0.5),  # no target at this size
    ]
    speeds = {"streamer": 15.0, "layer_fused": 2.5}
    stream = [{"cell": "gru", "H": h, "speedup_vs_torch_cell": speeds, "speedup_grad": 0.7}
              for h in (64, 128)]  # fmt: skip
    got = {t["target"]: (t["value"], t["met"]) for t in targets(rows, stream)}
    assert got == {
        "elman training vs torch.nn at (32, 100, 64) >= 3.3x": (3.2, False),
        "gru training vs torch.nn at (32, 100, 64) >= 3.8x": (3.8, True),
        "lstm training vs torch.nn at (32, 100, 256) >= 1.2x": (1.3, True),
        "lstm inference vs torch.nn (oneDNN) at (32, 100, 256) >= 1x": (0.95, False),
        "gru inference vs onnxruntime at (64, 100, 512) >= 1x": (0.9, False),
        "gru training at (64, 100, 512) >= 75% of sgemm peak": (0.76, True),
        "streaming gru B=1 H=64 (kernels.KernelStreamer) >= 14x torch cell": (15.0, True),
        "streaming gru B=1 H=128 (kernels.KernelStreamer) >= 10x torch cell": (15.0, True),
        "Recurrent.step gru B=1 H=64 no_grad >= 3x torch cell": (2.5, False),
        "Recurrent.step gru B=1 H=64 autograd >= 3x torch cell": (0.7, False),
    }
