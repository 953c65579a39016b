"""Nothing a user has is lost or mixed: one writer per run directory, one overwrite policy,
crash debris cleaned, and a loss that explodes counts as divergence (issue 17)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from _tasks import delayed_echo
from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig, TrainConfig
from rnnkit.models import build_model
from rnnkit.training import RunError, Trainer
from rnnkit.training.run import RunLock, clean_debris, prepare_out_dir

HOLD = """
import sys, time
from rnnkit.training.run import RunLock
with RunLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(30)
"""


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = rf"in use by another rnnkit process \(pid {holder.pid}\)"
        with pytest.raises(RunError, match=busy):
            RunLock(tmp_path).__enter__()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path):  # the kernel released the dead holder's lock
        pass


def test_overwrite_replaces_a_whole_run_and_leaves_other_files_alone(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "report.html").write_text("the old run's report")
    (run / "checkpoint").mkdir()
    with pytest.raises(RunError, match="already exists"):
        prepare_out_dir(run, overwrite=False)
    prepare_out_dir(run, overwrite=True)
    assert list(run.iterdir()) == []  # no stale report beside the new weights
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.html").write_text("mine")
    prepare_out_dir(mine, overwrite=True)  # not a run: the user's files stay
    assert (mine / "report.html").read_text() == "mine"


def test_crash_debris_is_cleaned(tmp_path):
    (tmp_path / ".model.safetensors.abc.tmp").write_bytes(b"half")
    (tmp_path / "checkpoint" / ".step-00000010-x").mkdir(parents=True)
    (tmp_path / "checkpoint" / "step-00000005-y").mkdir()
    removed = {p.name for p in clean_debris(tmp_path)}
    assert removed == {".model.safetensors.abc.tmp", ".step-00000010-x"}
    assert (tmp_path / "checkpoint" / "step-00000005-y").is_dir()


def test_a_loss_that_explodes_is_divergence_not_a_result():
    torch.manual_seed(0)
    model = build_model(ManyToManyConfig(InputConfig("tokens", 8, 8), HeadConfig("softmax", 8),
                                         RNNConfig("elman", 16)))  # fmt: skip
    cfg = TrainConfig(steps=60, lr=1e6, clip="none", optimizer="sgd", progress=False)
    result = Trainer(model, config=cfg).fit(lambda step, g: delayed_echo(16, g))
    assert result.status == "diverged", (result.status, result.loss)
    assert "loss exploded" in result.message and "it started at" in result.message
