"""Quality figures of the audio applications: voice classification and speech recognition.

Runs the default trainings through the real CLI (unless --collect-only) and gathers their
results.json files into benchmarks/results/apps_audio.json. The corpora are generated once
(espeak-ng, seeded) and cached in $RNNKIT_DATA; later runs reuse them.

    python benchmarks/apps_audio.py --runs runs/bench-audio            # train + collect
    python benchmarks/apps_audio.py --runs runs/bench-audio --collect-only

Each run is an ordinary run directory with report.html. Figures are test-split metrics on
voices never heard in training (speaker: on held-out utterances of the known voices),
measured in the same process as the baselines they are compared with.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

RUNS = {
    "voice-sex": ["train", "voice", "--label", "sex"],
    "voice-language": ["train", "voice", "--label", "language"],
    "voice-speaker": ["train", "voice", "--label", "speaker"],
    "speech-digits": ["train", "speech"],
}
RNNKIT = [sys.executable, "-m", "rnnkit"]
KEYS = ("accuracy", "balanced_accuracy", "cer", "wer", "sentence_accuracy", "threshold_hz",
        "penalty", "templates", "C")  # fmt: skip


def train(runs: Path, names: list[str], extra: list[str]) -> dict[str, float]:
    seconds = {}
    for name in names:
        cmd = [*RNNKIT, *RUNS[name], "--out", str(runs / name), "--overwrite", "--quiet", *extra]
        print("$", " ".join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        seconds[name] = time.perf_counter() - t0
    return seconds


def pick(metrics: dict) -> dict:
    return {k: metrics[k] for k in KEYS if k in metrics}


def collect(runs: Path, seconds: dict[str, float] | None = None) -> dict:
    import torch

    out: dict = {"machine": {"python": platform.python_version(), "torch": torch.__version__},
                 "runs": {}}  # fmt: skip
    for name in RUNS:
        path = runs / name / "results.json"
        if not path.is_file():
            continue
        res = json.loads(path.read_text())
        cfg = json.loads((runs / name / "config.json").read_text())["extra"]
        entry = {"options": cfg["options"], "sizes": res["data"]["sizes"],
                 "split": res["data"]["split"], "train_seconds": res["fit"]["seconds"],
                 "steps": res["fit"]["steps"], "best_step": res["fit"]["best_step"]}  # fmt: skip
        if "model" in res:
            entry["model"] = pick(res["model"])
            entry["confusion"] = res["model"]["confusion"]
            entry["baselines"] = {k: {"name": b["name"], **pick(b)}
                                  for k, b in res["baselines"].items()}  # fmt: skip
        else:
            entry["beam"], entry["greedy"] = pick(res["beam"]), pick(res["greedy"])
            entry["baseline"] = {"name": res["baseline"]["name"], **pick(res["baseline"])}
        if seconds and name in seconds:
            entry["wall_seconds"] = seconds[name]
        out["runs"][name] = entry
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs/bench-audio"))
    ap.add_argument("--only", nargs="*", choices=list(RUNS), default=list(RUNS))
    ap.add_argument("--collect-only", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results/apps_audio.json"))
    args = ap.parse_args()
    seconds = None
    if not args.collect_only:
        seconds = train(args.runs, args.only, ["--threads", str(args.threads)])
    data = collect(args.runs, seconds)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
