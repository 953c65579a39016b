"""Quality figures of the music application: NLL on held-out Bach chorales, RNN vs Kneser-Ney.

Runs `rnnkit train music` through the real CLI (unless --collect-only), then gathers its
results.json into benchmarks/results/apps_music.json and prints the README's table row.

    python benchmarks/apps_music.py --run runs/bench-music                 # the default run
    python benchmarks/apps_music.py --run runs/bench-music -- --minutes 3  # any train flags
    python benchmarks/apps_music.py --run runs/bench-music --collect-only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "apps_music.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/bench-music"))
    ap.add_argument("--collect-only", action="store_true")
    ap.add_argument("flags", nargs="*", help="extra `rnnkit train music` flags (after --)")
    args = ap.parse_args()
    seconds = None
    if not args.collect_only:
        cmd = [sys.executable, "-m", "rnnkit", "train", "music", "--out", str(args.run),
               "--overwrite", "--quiet", *args.flags]  # fmt: skip
        print("$", " ".join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        seconds = time.perf_counter() - t0
    results = json.loads((args.run / "results.json").read_text())
    config = json.loads((args.run / "config.json").read_text())["extra"]
    m, k, fit = results["model"], results["kneser_ney"], results["fit"]
    s = results["statistics"]
    out = {
        "command": "rnnkit train music " + " ".join(args.flags),
        "options": config["options"],
        "machine": config["machine"],
        "load_average_after": os.getloadavg()[0],
        "command_seconds": seconds,
        "fit": fit,
        "model": m,
        "kneser_ney": {key: v for key, v in k.items() if key != "val_nats"},
        "kneser_ney_val_grid": k["val_nats"],
        "statistics": s,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"| `{out['command'].strip()}` | {m['nats_per_token']:.4f} / {m['nats_per_quarter']:.2f} "
          f"| KN order {k['order']}, D={k['discount']}: {k['nats_per_token']:.4f} / "
          f"{k['nats_per_quarter']:.2f} | {fit['steps']:,} steps, {fit['seconds']:.0f} s |")


if __name__ == "__main__":
    main()
