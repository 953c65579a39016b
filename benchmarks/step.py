"""`Recurrent.step` against torch's RNNCell/GRUCell/LSTMCell at B=1 (issue 11 point 5).

Each job runs `steps` steps of a streaming loop, the state fed back every step; the jobs take
turns (interleaved) and each figure is the median over `reps` rounds, in µs per step. Modes:
no_grad (torch.no_grad()), grad (weights requiring grad, the graph built, no backward) and,
with --backward, grad+backward (a backward of the last output after the steps, timed too).

    PYTHONPATH=src python benchmarks/step.py --threads 1 [--hidden 64 256] [--backward]
        [--clock cpu]   (process CPU time: with one thread, steady on a busy machine)

A/B of two source trees (--ab OTHER_SRC): the script runs itself in subprocesses, this tree's
src and OTHER_SRC taking turns for --rounds rounds, and prints the median µs of each tree's
Recurrent.step and of torch's cell, by cell, H and mode:

    python benchmarks/step.py --ab /work/main/src --rounds 5 --clock cpu --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import torch

# torch's cell, Recurrent.step (impl "auto")
APIS = ("torch_cell", "layer_auto")


def measure(args) -> list[dict]:
    """One row per (cell, H, mode): µs per step of torch's cell and of Recurrent.step."""
    from rnnkit.bench.speed import CLOCKS, TORCH_CELL, interleaved, stream_jobs

    torch.set_num_threads(args.threads)
    modes = ["no_grad", "grad"] + (["grad+backward"] if args.backward else [])
    rows = []
    for H in args.hidden:
        for cell in TORCH_CELL:
            for mode in modes:
                jobs = stream_jobs(cell, H, args.steps, reference=False,
                                   backward=mode == "grad+backward")  # fmt: skip
                with torch.set_grad_enabled(mode != "no_grad"):
                    med = interleaved({k: jobs[k] for k in APIS}, args.reps, CLOCKS[args.clock])
                us = {k: v / args.steps * 1e6 for k, v in med.items()}
                rows.append({"cell": cell, "H": H, "mode": mode, **us})
    return rows


def ab(args) -> None:
    """This tree against `args.ab`, subprocesses taking turns (see the module docstring)."""
    here = str(Path(__file__).resolve().parents[1] / "src")
    given = {"steps": args.steps, "reps": args.reps, "threads": args.threads, "clock": args.clock}
    flags = [f"--{k}={v}" for k, v in given.items()]
    flags += ["--hidden", *map(str, args.hidden), *(["--backward"] if args.backward else [])]
    runs: dict[str, list[list[dict]]] = {"this": [], "other": []}
    for _ in range(args.rounds):
        for name, src in (("this", here), ("other", args.ab)):
            env = {**os.environ, "PYTHONPATH": src}
            out = subprocess.run([sys.executable, __file__, "--json", *flags], env=env,
                                 check=True, capture_output=True, text=True).stdout  # fmt: skip
            runs[name].append(json.loads(out))
    print(
        f"| cell | H | mode | torch cell µs | step µs, {args.ab} | step µs, this tree "
        "| this / other (time) | × torch cell, other | × torch cell, this |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for i, row in enumerate(runs["this"][0]):
        med = {
            name: {k: statistics.median(r[i][k] for r in rs) for k in APIS}
            for name, rs in runs.items()
        }
        cell = statistics.median([r[i]["torch_cell"] for rs in runs.values() for r in rs])
        o, t = med["other"]["layer_auto"], med["this"]["layer_auto"]
        print(f"| {row['cell']} | {row['H']} | {row['mode']} | {cell:.2f} | {o:.2f} | {t:.2f} "
              f"| {t / o:.2f} | {med['other']['torch_cell'] / o:.2f}x "
              f"| {med['this']['torch_cell'] / t:.2f}x |", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="wall")
    ap.add_argument("--backward", action="store_true", help="also time backward (grad mode)")
    ap.add_argument("--ab", metavar="OTHER_SRC", help="A/B against another tree's src")
    ap.add_argument("--rounds", type=int, default=5, help="--ab: subprocess rounds per tree")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ab:
        ab(args)
        return
    rows = measure(args)
    if args.json:
        print(json.dumps(rows))
        return
    print("| cell | H | mode | torch cell µs | Recurrent.step µs | ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['cell']} | {r['H']} | {r['mode']} | {r['torch_cell']:.2f} | "
              f"{r['layer_auto']:.2f} | {r['torch_cell'] / r['layer_auto']:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
