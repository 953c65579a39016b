"""`rnnkit train text --nproc 2`: torchrun's elastic agent starts 2 ranks on this machine; they
end where one process with the same global batch ends, rank 0 alone writes and prints, and
the run resumes on one process. (One launch: torchrun and 2 ranks start in seconds.)"""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

import rnnkit
from clitest import invoke, one_line_error
from rnnkit.training.run import latest_checkpoint

CORPUS = "to be or not to be, that is the question; whether tis nobler in the mind\n" * 40
ARGS = ["--steps", "6", "--hidden", "16", "--embedding", "8", "--seq-len", "16", "--batch", "4",
        "--eval-every", "3", "--threads", "1", "--quiet"]  # fmt: skip


def weights(run_dir: Path) -> dict:
    return load_file(latest_checkpoint(run_dir) / "model.safetensors")


def test_two_processes_train_as_one_and_the_run_resumes_on_one(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    two, one = tmp_path / "two", tmp_path / "one"
    env = {**os.environ, "PYTHONPATH": str(Path(rnnkit.__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit", "train", "text", "--data", str(corpus), *ARGS,
         "--nproc", "2", "--out", str(two)],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run: ") == 1  # rank 0 alone prints
    assert invoke("train", "text", "--data", corpus, *ARGS, "--out", one).exit_code == 0
    a, b = weights(two), weights(one)
    for name in b:  # float32: the order of the sums differs
        assert torch.allclose(a[name], b[name], atol=1e-5, rtol=0), name
    events = [json.loads(x).get("event") for x in (two / "metrics.jsonl").open()]
    assert events.count("completed") == 1  # one writer

    result = invoke("train", "text", "--resume", two, "--steps", "8", "--quiet")  # 1 process
    assert result.exit_code == 0, result.output
    assert json.loads((two / "analysis.json").read_text())["fit"]["steps"] == 8

    one_line_error(invoke("train", "text", "--data", corpus, *ARGS, "--nproc", "0"), "--nproc")
    one_line_error(invoke("train", "text", "--data", corpus, *ARGS, "--nproc", "3",
                          "--out", tmp_path / "three"), "--batch 4", "--nproc 3")  # fmt: skip
