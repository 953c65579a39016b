"""Damaged or hostile run directories and logs: one clear RunError, never a hang or a crash
(issue 17's defects, each reproduced)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from rnnkit.atomic import append_jsonl, read_jsonl
from rnnkit.training import RunError, load_run
from rnnkit.training.run import save_model


@pytest.fixture
def run_dir(tmp_path):
    from rnnkit.config import HeadConfig, InputConfig, ManyToOneConfig, RNNConfig
    from rnnkit.models import build_model

    model = build_model(ManyToOneConfig(InputConfig("frames", features=3), HeadConfig("softmax", 2),
                                        RNNConfig("gru", 4)))  # fmt: skip
    save_model(tmp_path / "run", model)
    return tmp_path / "run"


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1})
    with open(path, "ab") as f:
        f.write(b'{"step": 2, "lo')  # a crash mid-append
    append_jsonl(path, {"step": 3})
    assert read_jsonl(path) == [{"step": 1}, {"step": 3}]


def test_non_utf8_and_non_object_lines_are_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1}\n\xff\xfe{"x": 1}\n[1, 2]\n{"step": 2}\n')
    assert read_jsonl(path) == [{"step": 1}, {"step": 2}]


def test_integer_weights_are_refused(run_dir):
    from safetensors.torch import load_file, save_file

    tensors = {k: v.to(torch.int32) for k, v in load_file(run_dir / "model.safetensors").items()}
    save_file(tensors, run_dir / "model.safetensors")
    with pytest.raises(RunError, match="int32, the model expects torch.float32"):
        load_run(run_dir)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_a_symlink_to_a_device_or_a_fifo_is_refused_at_once(run_dir, name):
    (run_dir / name).unlink()
    os.symlink("/dev/zero", run_dir / name)
    with pytest.raises(RunError, match="not a regular file"):
        load_run(run_dir)
    (run_dir / name).unlink()
    os.mkfifo(run_dir / name)  # opening it for reading would block forever
    with pytest.raises(RunError, match="not a regular file"):
        load_run(run_dir)


def test_deeply_nested_config_is_one_error(run_dir):
    (run_dir / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunError, match="not valid JSON|not an rnnkit run config"):
        load_run(run_dir)


def test_non_utf8_config_is_one_error(run_dir):
    (run_dir / "config.json").write_bytes(b"\xff" + json.dumps({"a": 1}).encode())
    with pytest.raises(RunError, match="not valid JSON"):
        load_run(run_dir)


def test_hourly_timestamps_are_distinct_steps(tmp_path):
    from rnnkit.data.series import load_series_csv

    path = tmp_path / "hourly.csv"
    rows = [f"2010-01-01 {h:02d}:00,{h}" for h in range(24)]
    path.write_text("time,temp\n" + "\n".join(rows) + "\n")
    s = load_series_csv(path, "temp", "time")
    assert len(s.values) == 24 and list(s.values[:3]) == [0, 1, 2]


def test_csv_input_that_is_a_fifo_or_too_large_is_refused(tmp_path, monkeypatch):
    from rnnkit.data import tables
    from rnnkit.data.text import DataError

    fifo = tmp_path / "series.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        tables.read_csv_frame(fifo)
    big = tmp_path / "big.csv"
    big.write_text("t;v\n" + "".join(f"{i};{i}\n" for i in range(2000)))
    assert list(tables.read_csv_frame(big).columns) == ["t", "v"]  # ';' sniffed
    monkeypatch.setattr(tables, "MAX_CSV_BYTES", 1000)
    with pytest.raises(DataError, match="MiB; rnnkit reads CSV files of up to"):
        tables.read_csv_frame(big)


def _edit_config(run_dir, edit) -> None:
    config = json.loads((run_dir / "config.json").read_text())
    edit(config["model"]["config"])
    (run_dir / "config.json").write_text(json.dumps(config))


def test_a_config_of_a_million_layers_is_refused_before_any_model_is_built(run_dir):
    import resource

    _edit_config(run_dir, lambda c: c["rnn"].update(num_layers=10**6))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(RunError, match="1,000,000 recurrent layers but the weights hold only"):
        load_run(run_dir)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


def test_sizes_are_checked_against_the_weights_header_before_allocating(run_dir, monkeypatch):
    from rnnkit.training import run as run_module

    _edit_config(run_dir, lambda c: c["rnn"].update(hidden_size=40_000))  # 19 GB if built
    built = []
    real = run_module.model_from_dict
    monkeypatch.setattr(run_module, "model_from_dict",
                        lambda d: built.append(torch.empty(0).device) or real(d))  # fmt: skip
    with pytest.raises(RunError, match=r"has shape \(2, 4\), the model expects \(2, 40000\)"):
        load_run(run_dir)
    assert built == [torch.device("meta")]  # only the shape-only model was made


def test_a_header_that_lies_about_its_sizes_is_refused(run_dir):
    import struct

    raw = (run_dir / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [10**6, 10**6]
    text = json.dumps(header).encode()
    (run_dir / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])
    with pytest.raises(RunError, match="does not fit the file"):
        load_run(run_dir)


def test_latest_json_cannot_lead_out_of_the_run(run_dir, tmp_path):
    from rnnkit.training.run import latest_checkpoint

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for name in ("model.safetensors", "trainer.pt"):
        (outside / name).write_bytes(b"x")
    (run_dir / "checkpoint").mkdir()
    (run_dir / "checkpoint" / "latest.json").write_text(json.dumps({"dir": "../../elsewhere"}))
    os.symlink(outside, run_dir / "checkpoint" / "step-000000009-abcdef")
    assert latest_checkpoint(run_dir) is None


def test_a_run_killed_before_its_first_checkpoint_says_so(run_dir):
    (run_dir / "model.safetensors").unlink()
    with pytest.raises(RunError, match="no weights saved yet"):
        load_run(run_dir)
