"""Quality figures of image captioning (digits, emoji): the captioner against its baselines.

Runs the default `rnnkit train caption --data D` through the real CLI (unless
--collect-only) for each data set and merges its results.json into
benchmarks/results/apps_caption.json (one entry per data set).

    python benchmarks/apps_caption.py --runs runs/bench-caption                 # both
    python benchmarks/apps_caption.py --runs runs/bench-caption --data emoji    # one
    python benchmarks/apps_caption.py --runs runs/bench-caption --collect-only
    python benchmarks/apps_caption.py --runs runs/bench-caption -- --threads 1  # extra flags

Each run is an ordinary run directory with report.html (attention maps). Every baseline is
computed in the same run, on the same test pictures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DATA = ("digits", "emoji")
ROWS = ("model", "model_greedy", "nn_pixels", "nn_features", "oracle")
KEYS = ("exact_match", "exact_match_seen", "exact_match_unseen", "bleu", "chrf")


def collect(run: Path, seconds: float | None = None) -> dict:
    res = json.loads((run / "results.json").read_text())
    cfg = json.loads((run / "config.json").read_text())["extra"]
    out = {
        "machine": cfg["machine"],
        "options": cfg["options"],
        "data": res["data"],
        "fit": res["fit"],
        "wall_seconds": seconds,
        "test": {row: {k: res[row][k] for k in KEYS} for row in ROWS if row in res},
    }  # fmt: skip
    if "oracle" in res:
        out["oracle_digit_accuracy"] = res["oracle"]["digit_accuracy"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs/bench-caption"))
    ap.add_argument("--data", nargs="+", choices=DATA, default=list(DATA))
    ap.add_argument("--collect-only", action="store_true")
    ap.add_argument("--results", type=Path,
                    default=Path(__file__).parent / "results" / "apps_caption.json")
    ap.add_argument("extra", nargs="*", help="more `train caption` flags (after --)")
    args = ap.parse_args()
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    for data in args.data:
        run, seconds = args.runs / f"caption-{data}", None
        if not args.collect_only:
            cmd = [sys.executable, "-m", "rnnkit", "train", "caption", "--data", data, "--out",
                   str(run), "--overwrite", "--quiet", *args.extra]  # fmt: skip
            print("$", " ".join(cmd[2:]), flush=True)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True)
            seconds = time.perf_counter() - t0
        if not (run / "results.json").is_file():
            continue
        if seconds is None:  # collecting only: keep the wall time measured when it trained
            seconds = results.get(data, {}).get("wall_seconds")
        results[data] = collect(run, seconds)
        for row, m in results[data]["test"].items():
            print(f"{data:7s} {row:14s} exact {m['exact_match']:.3f}  BLEU {m['bleu']:5.1f}  "
                  f"chrF {m['chrf']:5.1f}")
    args.results.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
