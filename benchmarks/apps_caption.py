"""Quality figures of image captioning (digits): the captioner against its baselines.

Runs the default `rnnkit train caption` through the real CLI (unless --collect-only) and
gathers its results.json into benchmarks/results/apps_caption.json.

    python benchmarks/apps_caption.py --runs runs/bench-caption                 # train + collect
    python benchmarks/apps_caption.py --runs runs/bench-caption --collect-only
    python benchmarks/apps_caption.py --runs runs/bench-caption -- --threads 1  # extra flags

The run is an ordinary run directory with report.html (attention maps). Every baseline is
computed in the same run, on the same test pictures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

NAME = "caption-digits"
ROWS = ("model", "model_greedy", "nn_pixels", "nn_features", "oracle")
KEYS = ("exact_match", "exact_match_seen", "exact_match_unseen", "bleu", "chrf")


def collect(runs: Path, seconds: float | None = None) -> dict:
    res = json.loads((runs / NAME / "results.json").read_text())
    cfg = json.loads((runs / NAME / "config.json").read_text())["extra"]
    return {
        "machine": cfg["machine"],
        "options": cfg["options"],
        "data": res["data"],
        "fit": res["fit"],
        "wall_seconds": seconds,
        "test": {row: {k: res[row][k] for k in KEYS} for row in ROWS},
        "oracle_digit_accuracy": res["oracle"]["digit_accuracy"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs/bench-caption"))
    ap.add_argument("--collect-only", action="store_true")
    ap.add_argument("--results", type=Path,
                    default=Path(__file__).parent / "results" / "apps_caption.json")
    ap.add_argument("extra", nargs="*", help="more `train caption` flags (after --)")
    args = ap.parse_args()
    seconds = None
    if not args.collect_only:
        cmd = [sys.executable, "-m", "rnnkit", "train", "caption", "--out",
               str(args.runs / NAME), "--overwrite", "--quiet", *args.extra]
        print("$", " ".join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        seconds = time.perf_counter() - t0
    out = collect(args.runs, seconds)
    args.results.write_text(json.dumps(out, indent=2) + "\n")
    for row, m in out["test"].items():
        print(f"{row:14s} exact {m['exact_match']:.3f}  BLEU {m['bleu']:5.1f}  "
              f"chrF {m['chrf']:5.1f}")


if __name__ == "__main__":
    main()
