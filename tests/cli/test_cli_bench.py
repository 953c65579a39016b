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


def test_sgemm_peak_is_the_best_of_torch_mm_and_the_own_gemm(monkeypatch):
    from rnnkit.bench import speed

    peaks = speed.sgemm_peaks(speed.CLOCKS["cpu"], n=256, reps=2)
    own = speed._own_gemm()
    assert set(peaks) == ({"torch.mm", "own"} if own else {"torch.mm"})
    assert all(v > 0 for v in peaks.values())
    if own:  # the entry point computes the product it is timed on
        a, b, c = torch.randn(37, 53), torch.randn(53, 61), torch.empty(37, 61)
        own(a, b, c)
        torch.testing.assert_close(c, a @ b, atol=1e-4, rtol=1e-4)
    # no extension, or one without the entry point: torch.mm alone
    monkeypatch.setattr(speed, "_own_gemm", lambda: None)
    assert set(speed.sgemm_peaks(speed.CLOCKS["cpu"], n=64, reps=1)) == {"torch.mm"}
    monkeypatch.undo()

    def missing():
        raise RuntimeError("rnnkit native kernels are unavailable: test")

    monkeypatch.setattr(speed.kernels.sequence, "lib", missing)
    assert speed._own_gemm() is None


def test_peak_rows_name_the_gemm_that_gave_the_peak():
    from rnnkit.bench.speed import _peak_note, targets

    rows = [_row("lstm", (64, 100, 512), "training", 1.0, peak=0.8)]
    got = [t["target"] for t in targets(rows, [], "own")]
    assert got == ["lstm training at (64, 100, 512) >= 75% of sgemm peak (own GEMM)"]
    got = [t["target"] for t in targets(rows, [], "torch.mm")]
    assert got == ["lstm training at (64, 100, 512) >= 75% of sgemm peak (torch.mm)"]
    meta = {"sgemm_peak_source": "own", "sgemm_peak_by_gemm": {"torch.mm": 131.2, "own": 160.4}}
    assert _peak_note(meta) == ", own GEMM (torch.mm 131)"
    alone = {"sgemm_peak_source": "torch.mm", "sgemm_peak_by_gemm": {"torch.mm": 90.0}}
    assert _peak_note(alone) == ", torch.mm"
    assert _peak_note({}) == ""  # a result written before the peak named its GEMM
