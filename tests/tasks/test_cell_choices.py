"""The scan cells (minGRU, minLSTM, LRU) on the training commands: `--cell` offers them, and a
run with one trains and records it."""

from __future__ import annotations

import dataclasses
import json

from clitest import invoke


def test_every_train_command_offers_the_scan_cells():
    """--cell mingru|minlstm|lru on every `rnnkit train` command; translate leaves out the LRU
    (its encoder-to-decoder bridge sets the first state tensor, which is the LRU's output), and
    so does caption (its decoder initialises h, or (h, c), from the image and reads h)."""
    from rnnkit.tasks.driver import task_names, task_package

    for name in task_names():
        cell = next(f for f in dataclasses.fields(task_package(name).Options) if f.name == "cell")
        offered = set(cell.metadata["choices"])
        want = {"mingru", "minlstm"} | (set() if name in ("translate", "caption") else {"lru"})
        assert want <= offered, name


def test_train_text_with_a_scan_cell(tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 40, encoding="utf-8")
    out = tmp_path / "run"
    result = invoke("train", "text", "--data", corpus, "--cell", "lru", "--steps", "2",
                    "--hidden", "8", "--embedding", "8", "--seq-len", "16", "--batch", "4",
                    "--out", out, "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["model"]["config"]["rnn"]["cell"] == "lru"
