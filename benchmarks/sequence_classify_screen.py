"""Screen a non-default option of `rnnkit train sequence-classify` against the default's rows.

    PYTHONPATH=src .venv/bin/python benchmarks/sequence_classify_screen.py \
        --set layout=parallel --seeds 0 NAME ...
    ... --set choose_dilate=2 [--choose-only] NAME ...   # session 8: the dilation chosen
    ... --seeds 0 NAME ...                               # no --set: the default, re-run here

Each (data set, seed) is the default command with --seed S --threads 1 and the --set
options, baselines 1-NN Euclidean only (the deterministic 1-NN DTW and MiniRocket of the
same split are in results/sequence_classify.jsonl / .session4.jsonl, seed 0), one run at a
time in this process. Rows append to results/sequence_classify.screen.jsonl with the
options, the wall time, the seconds the run prints, the accuracies of the ensembles of the
first k members and each member's training seconds (its metrics.jsonl clock); the default's
row of the same data set and seed (results/sequence_classify.jsonl) is printed beside each.
--choose-only: only the automatic settings (`choose`, training split alone: no member
trained, no test case read), one row each with "choose_only": true. Without --set the run
is the default's (its row has "set": {}), for a side-by-side on one machine. Each row
records the 1-minute load average before and after it ("load").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "sequence_classify.screen.jsonl"
DEFAULT = ROOT / "results" / "sequence_classify.jsonl"


def member_seconds(run_dir: Path, n: int) -> list[float | None]:
    """Each member's training seconds: the last "time" (the Trainer's elapsed clock,
    evaluations included) in its metrics.jsonl."""
    from rnnkit.tasks.driver import member_dir

    out = []
    for k in range(n):
        times = [json.loads(line).get("time") for line in
                 (member_dir(run_dir, k) / "metrics.jsonl").read_text().splitlines() if line]
        times = [t for t in times if t is not None]
        out.append(max(times) if times else None)
    return out


def main() -> None:
    import torch

    from rnnkit.bench.speed import _cpu_name
    from rnnkit.tasks import sequence_classify as sc
    from rnnkit.tasks.sequence_classify.task import choose, load_data

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="+")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--set", action="append", default=[], help="option=value")
    p.add_argument("--choose-only", action="store_true", help="only the automatic settings")
    p.add_argument("--out", type=Path, default=OUT, help="the rows' file (default: %(default)s)")
    args = p.parse_args()
    extra: dict = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        extra[k] = json.loads(v) if v[:1].isdigit() or v in ("true", "false") else v
    torch.set_num_threads(1)
    base = {(r["data"], r["seed"]): r for r in map(json.loads, DEFAULT.read_text().splitlines())
            if r}  # fmt: skip
    for name in args.names:
        for seed in args.seeds:
            start, load = time.perf_counter(), os.getloadavg()[0]
            options = sc.Options(data=name, seed=seed, threads=1, baselines="euclidean", **extra)
            if args.choose_only:
                choice = choose(load_data(options), options)
                row = {"data": name, "seed": seed, "set": extra, "choose_only": True,
                       "auto": dataclasses.asdict(choice),
                       "wall_s": round(time.perf_counter() - start, 1),
                       "load": [round(load, 2), round(os.getloadavg()[0], 2)],
                       "date": time.strftime("%Y-%m-%d %H:%M"), "machine": _cpu_name()}  # fmt: skip
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
                val = {k: round(v["val_accuracy"], 3) for k, v in choice.dilate_scores.items()}
                print(f"{name} seed {seed} {extra}: dilate {choice.dilate} {val} "
                      f"({choice.frontend}/{choice.normalise}); {choice.seconds} s, wall "
                      f"{row['wall_s']} s", flush=True)  # fmt: skip
                continue
            tag = "-".join(f"{k}{v}" for k, v in extra.items()) or "default"
            run = sc.train(options, Path("runs") / "screen" / f"{name}-{seed}-{tag}",
                           overwrite=True, progress=False)  # fmt: skip
            r = run.results
            row = {"data": name, "seed": seed, "set": extra, "test_accuracy": r["test_accuracy"],
                   "member_accuracies": r["member_accuracies"],
                   "first_k_accuracies": r["first_k_accuracies"],
                   "member_seconds": member_seconds(run.path, len(r["member_accuracies"])),
                   "auto": r["auto"],
                   "seconds": r["seconds"], "wall_s": round(time.perf_counter() - start, 1),
                   "load": [round(load, 2), round(os.getloadavg()[0], 2)],
                   "date": time.strftime("%Y-%m-%d %H:%M"), "machine": _cpu_name()}  # fmt: skip
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
            was = base.get((name, seed), {}).get("test_accuracy")
            print(f"{name} seed {seed} {extra}: {r['test_accuracy']:.3f} members "
                  f"{[round(a, 3) for a in r['member_accuracies']]} dilate "
                  f"{r['auto'].get('dilate', '-')} (default "
                  f"{'-' if was is None else f'{was:.3f}'}); {row['seconds']} wall "
                  f"{row['wall_s']} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
