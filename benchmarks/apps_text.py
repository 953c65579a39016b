"""Quality figures of the text applications: sentiment, de-en translation, number words.

Runs the three default trainings through the real CLI (unless --collect-only) and gathers
their results.json files into benchmarks/results/apps_text.json.

    python benchmarks/apps_text.py --runs runs/bench-text            # train + collect
    python benchmarks/apps_text.py --runs runs/bench-text --collect-only

Each run is an ordinary run directory with report.html. Figures are test-split metrics
measured in the same process as the baseline they are compared with.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

RUNS = {
    "sentiment": ["train", "sentiment"],
    "translate-de-en": ["train", "translate", "--task", "de-en"],
    "translate-numbers": ["train", "translate", "--task", "numbers"],
}
RNNKIT = [sys.executable, "-m", "rnnkit"]


def train(runs: Path, extra: list[str]) -> dict[str, float]:
    seconds = {}
    for name, args in RUNS.items():
        cmd = [*RNNKIT, *args, "--out", str(runs / name), "--overwrite", "--quiet", *extra]
        print("$", " ".join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        seconds[name] = time.perf_counter() - t0
    return seconds


def pick(metrics: dict, keys=("bleu", "chrf", "exact_match", "accuracy", "macro_f1")) -> dict:
    return {k: metrics[k] for k in keys if k in metrics}


def collect(runs: Path, seconds: dict[str, float] | None = None) -> dict:
    out: dict = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(),
        },  # fmt: skip
        "runs": {},
    }
    for name in RUNS:
        path = runs / name / "results.json"
        if not path.is_file():
            continue
        res = json.loads(path.read_text())
        cfg = json.loads((runs / name / "config.json").read_text())
        task_key = "sentiment" if name == "sentiment" else "translate"
        entry = {
            "options": cfg["extra"][task_key]["options"],
            "data": res["data"]["split"],
            "model": pick(res["model"]),
            "baseline": {"name": res["baseline"]["name"], **pick(res["baseline"])},
            "train_seconds": res["fit"]["seconds"],
            "steps": res["fit"]["steps"],
        }
        if "model_greedy" in res:
            entry["model_greedy"] = pick(res["model_greedy"])
        if "majority" in res:
            entry["majority_accuracy"] = res["majority"]["accuracy"]
        if seconds and name in seconds:
            entry["wall_seconds"] = seconds[name]
        out["runs"][name] = entry
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs/bench-text"))
    ap.add_argument("--collect-only", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results/apps_text.json"))
    args = ap.parse_args()
    seconds = None
    if not args.collect_only:
        seconds = train(args.runs, ["--threads", str(args.threads)])
    data = collect(args.runs, seconds)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
