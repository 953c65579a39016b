"""`kill -9` of one rank of `rnnkit train text --nproc 2` mid-training (bounded, loopback only).

Starts a 2-process text run, waits for its first checkpoint, kills rank 1 with SIGKILL, and
measures how long every process of the run takes to exit; then checks that the run's last
checkpoint loads and that `--resume` continues from it (on 2 processes again). Prints one
JSON object. `--signal STOP` freezes rank 1 instead (a hung rank, which no socket reports):
the collective timeout, set to `--timeout` seconds, must then end the run.

    PYTHONPATH=src python benchmarks/ddp_faults.py [--out /tmp/ddp-faults] [--signal STOP]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

LIMIT_S = 30.0  # every rank must be gone this soon after the kill
CORPUS = "to be or not to be, that is the question; whether tis nobler in the mind\n" * 400


def children(pid: int) -> list[int]:
    """The process ids whose parent is `pid` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def rank_of(pid: int) -> int | None:
    try:
        env = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"RANK="):
            return int(item[5:])
    return None


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("/tmp/ddp-faults"))
    parser.add_argument("--signal", choices=("KILL", "STOP"), default="KILL")
    parser.add_argument("--timeout", type=float, default=10.0, help="collective timeout, s")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    corpus, run = args.out / "corpus.txt", args.out / "run"
    corpus.write_text(CORPUS, encoding="utf-8")
    common = ["--hidden", "32", "--embedding", "8", "--seq-len", "32", "--batch", "8",
              "--eval-every", "20", "--eval-batches", "1", "--threads", "1", "--quiet"]  # fmt: skip
    cmd = [sys.executable, "-m", "rnnkit", "train", "text", "--data", str(corpus), *common,
           "--steps", "100000", "--nproc", "2", "--out", str(run)]  # fmt: skip

    from rnnkit.training.distributed import TIMEOUT_ENV
    from rnnkit.training.run import latest_checkpoint

    env = {**os.environ, TIMEOUT_ENV: str(args.timeout)}
    launcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)  # fmt: skip
    deadline = time.monotonic() + 300
    while (run / "checkpoint").is_dir() is False or latest_checkpoint(run) is None:
        if time.monotonic() > deadline or launcher.poll() is not None:
            launcher.kill()
            sys.exit(f"no checkpoint within 300 s: {launcher.communicate()[1][-2000:]}")
        time.sleep(0.5)
    ranks = {rank_of(p): p for p in children(launcher.pid)}
    victim, survivor = ranks[1], ranks[0]
    killed_at = time.monotonic()
    os.kill(victim, getattr(signal, f"SIG{args.signal}"))
    exits = {}
    while len(exits) < 2 and time.monotonic() - killed_at < 120:
        if "rank 0" not in exits and not alive(survivor):
            exits["rank 0"] = time.monotonic() - killed_at
        if "launcher" not in exits and launcher.poll() is not None:
            exits["launcher"] = time.monotonic() - killed_at
        time.sleep(0.05)
    if alive(victim):  # a frozen rank the agent could not stop: not the run's exit
        os.kill(victim, signal.SIGKILL)
    stdout, stderr = launcher.communicate(timeout=60)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    ckpt = latest_checkpoint(run)
    step = int(ckpt.name.split("-")[1])

    from rnnkit.training import Trainer

    Trainer.from_run(run)._restore(ckpt)  # the last checkpoint loads into the run's model

    resume = [sys.executable, "-m", "rnnkit", "train", "text", "--resume", str(run),
              "--steps", str(step + 20), "--nproc", "2", "--quiet"]  # fmt: skip
    t0 = time.monotonic()
    resumed = subprocess.run(resume, capture_output=True, text=True, timeout=600)
    events = [json.loads(x) for x in (run / "metrics.jsonl").open()]
    fit = json.loads((run / "analysis.json").read_text())["fit"] if resumed.returncode == 0 else {}
    print(json.dumps({
        "signal": f"SIG{args.signal}", "collective_timeout_s": args.timeout,
        "checkpoint_step_at_kill": step,
        "exit_seconds_after_kill": {k: round(v, 2) for k, v in exits.items()},
        "all_exited_within_limit": len(exits) == 2 and max(exits.values()) <= LIMIT_S,
        "launcher_exit_code": launcher.returncode,
        "launcher_stderr_lines": lines,
        "resume_exit_code": resumed.returncode,
        "resume_seconds": round(time.monotonic() - t0, 1),
        "resumed_events": sum(e.get("event") == "resumed" for e in events),
        "resumed_to_step": fit.get("steps"),
        "resume_stderr_tail": resumed.stderr[-500:] if resumed.returncode else "",
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
