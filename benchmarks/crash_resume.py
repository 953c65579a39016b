"""kill -9 at random moments of a small training, then resume it (issue 17).

A tiny `rnnkit train text` run (600 steps; a checkpoint every 100) is trained straight once.
Then, --kills times, the same command is started in a fresh directory and killed with SIGKILL
at a random moment: one time in five during start-up (0-3 s, before anything may be written),
else at a random step in 0..600 (when metrics.jsonl first logs it, plus 0-0.3 s) or, one time
in ten, 0-10 s after the training's last step (evaluation, samples, report).
After each kill:

1. the run directory loads (`rnnkit.training.load_run`), or the loader says clearly that no
   weights were saved yet / that it is not a run yet (one RunError line);
2. `rnnkit train text --resume RUN` continues from the last checkpoint; with no checkpoint it
   is refused with one line, and the directory is removed and the run trained again;
3. the final weights (the last checkpoint's model.safetensors) equal the straight run's byte
   for byte.

    .venv/bin/python benchmarks/crash_resume.py --kills 20 --seed 0    # ~5-10 min, 2 cores shared

Writes benchmarks/results/crash_resume.json (every kill: moment, state found, outcome).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
TRAIN = ["--steps", "600", "--hidden", "16", "--embedding", "8", "--seq-len", "16", "--batch",
         "4", "--eval-every", "20", "--threads", "1", "--quiet"]  # fmt: skip
CORPUS = " ".join(f"the {w} fox jumps over the {v} dog." for w in ("quick", "lazy", "red")
                  for v in ("brown", "old", "small")) * 60  # fmt: skip


def rnnkit(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)  # fmt: skip


def start(corpus: Path, run: Path) -> tuple[subprocess.Popen, float]:
    """Start the training into `run`; returns (the process, when)."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "train", "text", "--data",
                             str(corpus), *TRAIN, "--out", str(run)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return proc, time.perf_counter()


def logged_step(run: Path) -> int:
    """The last step metrics.jsonl names (-1 before it exists)."""
    from rnnkit.atomic import read_jsonl

    steps = [r.get("step", -1) for r in read_jsonl(run / "metrics.jsonl")]
    return max(steps, default=-1) if (run / "metrics.jsonl").exists() else -1


def final_weights(run: Path) -> bytes:
    from rnnkit.training.run import latest_checkpoint

    return (latest_checkpoint(run) / "model.safetensors").read_bytes()


def state_after_kill(run: Path) -> str:
    """What a user finds: 'loads (step N)' or the loader's one line."""
    from rnnkit.training import RunError, load_run

    try:
        loaded = load_run(run)
    except RunError as err:
        return f"refused: {err}"
    return f"loads (checkpoint step {loaded.step})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "crash_resume.json")
    args = p.parse_args()
    sys.path.insert(0, str(SRC))
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="crash-resume-"))
    corpus = root / "corpus.txt"
    corpus.write_text(CORPUS)
    straight, started = start(corpus, root / "a")
    assert straight.wait() == 0
    wall = time.perf_counter() - started
    reference = final_weights(root / "a")
    rows, clear = [], ("no weights saved yet", "not a run directory", "not a directory")
    for i in range(args.kills):
        run = root / f"k{i}"
        during = rng.choices(["start-up", "training", "finishing"], [2, 7, 1])[0]
        target = {"start-up": None, "training": rng.randrange(601), "finishing": 600}[during]
        delay = rng.uniform(0.0, {"start-up": 3.0, "training": 0.3, "finishing": 10.0}[during])
        proc, _ = start(corpus, run)
        while target is not None and proc.poll() is None and logged_step(run) < target:
            time.sleep(0.01)
        time.sleep(delay)
        finished = proc.poll() is not None
        proc.kill()
        proc.wait()
        state, reached = state_after_kill(run), logged_step(run)
        ok_state = state.startswith("loads") or any(c in state for c in clear)
        r = rnnkit("train", "text", "--resume", str(run), "--threads", "1", "--quiet")
        how = "resumed"
        if r.returncode != 0:
            lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
            one_line = len(lines) == 1 and lines[0].startswith("error: ")
            how = f"refused ({lines[-1] if lines else r.returncode})"
            assert one_line, r.stderr
            shutil.rmtree(run, ignore_errors=True)  # nothing to keep: start it again
            r = rnnkit("train", "text", "--data", str(corpus), *TRAIN, "--out", str(run))
            assert r.returncode == 0, r.stderr
            how += ", trained again"
        equal = final_weights(run) == reference
        rows.append({"kill": i, "during": during, "at_step": target, "then_s": round(delay, 2),
                     "logged_step": reached, "finished_before_kill": finished,
                     "state": state[:160], "state_clear": ok_state, "resume": how[:200],
                     "final_weights_equal": equal})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    summary = {
        "command": "benchmarks/crash_resume.py " + " ".join(sys.argv[1:]),
        "train": TRAIN, "straight_wall_s": round(wall, 1), "kills": len(rows),
        "state_clear": sum(r["state_clear"] for r in rows),
        "resumed": sum(r["resume"] == "resumed" for r in rows),
        "final_weights_equal": sum(r["final_weights_equal"] for r in rows),
        "load_average": os.getloadavg(), "rows": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    print({k: v for k, v in summary.items() if k != "rows"})


if __name__ == "__main__":
    main()
