"""Tokens/s of the text command on 2 processes × 1 thread against 1 process × 2 threads.

Same --steps and global batch (--batch streams, split between the ranks), no evaluation
during training; each command is stopped once its training has completed (the final analysis
is not measured). Throughput is the mean of the logged `tokens_per_s` windows (global tokens
over rank 0's step time) after the first window (warm-up). The pair runs back to back,
`--repeats` times, so both see the same load of a shared machine; one process × one
thread runs beside them as a reference. Prints one JSON object.

    PYTHONPATH=src python benchmarks/ddp_throughput.py [--steps 300] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAYOUTS = {"nproc 2 × threads 1": ["--nproc", "2", "--threads", "1"],
           "nproc 1 × threads 2": ["--nproc", "1", "--threads", "2"],
           "nproc 1 × threads 1 (reference)": ["--nproc", "1", "--threads", "1"]}  # fmt: skip
TIMEOUT_S = 1800


def run(flags: list[str], steps: int, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "rnnkit", "train", "text", "--steps", str(steps),
           "--eval-every", str(10**9), "--quiet", "--out", str(out), *extra, *flags]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    records: list[dict] = []
    # training is what is measured: the text command's final analysis (a full validation
    # pass, samples, the gradient profile) is cut short once training has completed
    while not any(r.get("event") == "completed" for r in records):
        if proc.poll() is not None or time.monotonic() - t0 > TIMEOUT_S:
            os.killpg(proc.pid, signal.SIGKILL)
            sys.exit(f"{' '.join(cmd)} did not complete: {proc.communicate()[1][-2000:]}")
        time.sleep(0.5)
        path = out / "metrics.jsonl"
        records = [json.loads(x) for x in path.open() if x.endswith("\n")] if path.exists() else []
    wall = time.monotonic() - t0
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    train = [r for r in records if r.get("split") == "train"]
    rates = [r["tokens_per_s"] for r in train[1:]]
    return {"command": "rnnkit train text " + " ".join(cmd[5:]), "tokens_per_s":
            round(sum(rates) / len(rates)), "seconds_to_completed": round(wall, 1),
            "last_train_loss": round(train[-1]["loss"], 4)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("extra", nargs="*", help="more flags for both commands")
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            rounds.append({name: run(flags, args.steps, Path(tmp) / f"{i}-{k}", args.extra)
                           for k, (name, flags) in enumerate(LAYOUTS.items())})  # fmt: skip
    print(json.dumps(rounds, indent=2))


if __name__ == "__main__":
    main()
