"""`rnnkit train TASK --device`: where training runs. A device this machine lacks, or a name
torch cannot read, is one line before any work; every Trainer a task builds gets the device;
the run records it, loads on the CPU, and `--resume RUN --device X` may move it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from clitest import invoke, one_line_error
from rnnkit.tasks import driver
from rnnkit.tasks.options import OptionError, resolve_device

TINY = ["--limit", "80", "--hidden", "8", "--embedding", "8", "--eval-every", "2", "--ensemble",
        "1", "--steps", "3", "--quiet"]  # fmt: skip


def options_of(run) -> dict:
    return json.loads((Path(run) / "config.json").read_text())["extra"]["options"]


@pytest.mark.parametrize("name", ["cpu", "auto"])
def test_cpu_and_auto_train_and_the_run_records_the_device(name, tmp_path):
    out = tmp_path / name
    r = invoke("train", "sentiment", *TINY, "--device", name, "--out", out)
    assert r.exit_code == 0, r.output
    # "auto" is resolved when training starts: the run records where it trained
    assert options_of(out)["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert (out / "results.json").exists()


@pytest.mark.parametrize("name", ["bogus", "meta", "cuda:99", "cuda:x", "gpu"])
def test_a_device_torch_cannot_read_or_this_machine_lacks_is_one_line(name, tmp_path):
    r = invoke("train", "sentiment", *TINY, "--device", name, "--out", tmp_path / "x")
    one_line_error(r, "--device", repr(name))
    assert not (tmp_path / "x").exists()  # refused before any work


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_one_line(tmp_path):
    r = invoke("train", "sentiment", *TINY, "--device", "cuda", "--out", tmp_path / "x")
    one_line_error(r, "--device", "no CUDA GPU", "'cuda'")


def test_resolve_device_checks_the_machine(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(OptionError, match="cpu, cuda, cuda:N, mps or auto") as err:
        resolve_device("bogus")
    assert err.value.field == "device"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(OptionError, match="no CUDA GPU"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(OptionError, match="cuda:0 to cuda:1"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(OptionError, match="no MPS device"):
        resolve_device("mps")


def test_several_processes_train_on_the_cpu_alone(monkeypatch, tmp_path):
    monkeypatch.setattr(driver, "resolve_device", lambda name: torch.device("cuda"))
    r = invoke("train", "sentiment", *TINY, "--device", "cuda", "--nproc", 2, "--batch", 8,
               "--out", tmp_path / "x")  # fmt: skip
    one_line_error(r, "--device must be cpu when several processes train")


class Devices:
    """Trainer.__init__ recording the device each Trainer is given."""

    def __init__(self, monkeypatch):
        from rnnkit.training import Trainer

        self.seen: list[torch.device] = []
        init = Trainer.__init__

        def recording(trainer, *args, device="cpu", **kwargs):
            self.seen.append(torch.device(device))
            init(trainer, *args, device=device, **kwargs)

        monkeypatch.setattr(Trainer, "__init__", recording)
        # a device of its own name, so that a Trainer left at its default shows
        monkeypatch.setattr(driver, "resolve_device", lambda name: torch.device("cpu", 0))


def test_every_trainer_of_a_task_gets_the_device(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))  # pretrained anew, not cached
    devices = Devices(monkeypatch)
    # sentiment: the language-model pretraining's Trainer, then the classifier's (fit_one)
    out = tmp_path / "sentiment"
    r = invoke("train", "sentiment", *TINY, "--pretrain", "train", "--pretrain-epochs", 0.1,
               "--out", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert devices.seen == [torch.device("cpu", 0)] * 2
    assert options_of(out)["device"] == "cpu:0"
    # sequence-classify: the automatic settings' candidates (choose), then the member
    devices.seen.clear()
    csv = tmp_path / "seq.csv"
    rng = np.random.default_rng(0)
    lines = ["id,label,t,x,split"]
    for i in range(16):
        label, sign = ("rise", 1) if i % 2 else ("fall", -1)
        split = "test" if i >= 12 else "train"
        lines += [f"s{i},{label},{t},{sign * t + rng.normal(0, 0.1):.3f},{split}"
                  for t in range(6)]  # fmt: skip
    csv.write_text("\n".join(lines) + "\n")
    r = invoke("train", "sequence-classify", "--data", csv, "--time-column", "t", "--hidden", 4,
               "--filters", 4, "--steps", 2, "--select-steps", 2, "--batch", 4, "--ensemble", 1,
               "--threads", 1, "--baselines", "euclidean", "--quiet", "--out",
               tmp_path / "seq")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert len(devices.seen) >= 3 and set(devices.seen) == {torch.device("cpu", 0)}


def test_resume_may_change_the_device_and_a_gpu_run_loads_here(tmp_path):
    run = tmp_path / "run"
    assert invoke("train", "sentiment", *TINY, "--out", run).exit_code == 0
    # as if trained on a GPU: its options load on this machine (evaluation, prediction)...
    config = json.loads((run / "config.json").read_text())
    config["extra"]["options"]["device"] = "cuda:7"
    (run / "config.json").write_text(json.dumps(config))
    assert driver.load(run).classify("a fine film")["prediction"]
    # ...it resumes on a device this machine has (a machine setting), and not elsewhere
    if torch.cuda.device_count() < 8:
        one_line_error(invoke("train", "sentiment", "--resume", run, "--steps", 4), "--device",
                       "'cuda:7'")  # fmt: skip
    r = invoke("train", "sentiment", "--resume", run, "--device", "cpu", "--steps", 4, "--quiet")
    assert r.exit_code == 0, r.output
    assert options_of(run)["device"] == "cpu"
    assert json.loads((run / "results.json").read_text())["fit"]["steps"] == 4
    one_line_error(invoke("train", "sentiment", "--resume", run, "--hidden", 4), "--hidden")
    assert driver.resumed_options(run, device="auto")[1].device == "auto"  # resolved in train


def test_every_torch_load_reads_onto_the_cpu():
    """A run or cache written on a GPU loads where there is none: map_location everywhere."""
    src = Path(__file__).resolve().parents[2] / "src" / "rnnkit"
    calls = []
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "torch"):  # fmt: skip
                calls.append((path.name, {k.arg for k in node.keywords}))
    assert len(calls) >= 2
    assert all("map_location" in keys for _, keys in calls), calls


def test_members_train_in_turn_off_the_cpu():
    from rnnkit.tasks.sequence_classify import SequenceClassifyOptions
    from rnnkit.tasks.sequence_classify.task import ensemble_plan

    at_once = {"ensemble": 3, "parallel_members": 3, "threads": 1}
    assert ensemble_plan(SequenceClassifyOptions(**at_once))[0] == 3
    # options are not checked against the machine when made: a GPU run's load anywhere
    assert ensemble_plan(SequenceClassifyOptions(**at_once, device="cuda"))[0] == 1
