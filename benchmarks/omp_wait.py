"""OpenMP's wait policy on a shared machine: a small training step at 1 and 2 threads, with
libgomp's default (spin ~300k iterations at every barrier before sleeping) against
OMP_WAIT_POLICY=PASSIVE (sleep at once) and a short GOMP_SPINCOUNT.

The variables are read when libgomp loads, so each variant is its own process; the variants
run one after another, round by round in a shuffled order, so they share the machine's load.
Prints each variant's median step time (wall and CPU) over the rounds and its ratio to
the default at 2 threads.

    PYTHONPATH=src python benchmarks/omp_wait.py [--rounds 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "1 thread": (1, {}),
    "2 threads": (2, {}),
    "2 threads, OMP_WAIT_POLICY=PASSIVE": (2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    "2 threads, GOMP_SPINCOUNT=10000": (2, {"GOMP_SPINCOUNT": "10000"}),
}


def child(threads: int, seconds: float) -> None:
    """Train a one-layer LSTM classifier for `seconds`; print median wall and CPU ms a step."""
    import torch

    import rnnkit

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rnn, head = rnnkit.LSTM(32, 64), torch.nn.Linear(64, 2)
    params = [*rnn.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, 1e-3)
    x, y = torch.randn(32, 50, 32), torch.randint(0, 2, (32,))

    def step():
        out, _ = rnn(x)
        loss = torch.nn.functional.cross_entropy(head(out[:, -1]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    walls, cpus = [], []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        w, c = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    print(json.dumps({
        "wall_ms": 1e3 * statistics.median(walls), "cpu_ms": 1e3 * statistics.median(cpus),
        "impl": rnn.impl_used, "steps": len(walls),
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seconds)
        return
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    results: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    loads = []
    rng = random.Random(0)
    for _ in range(args.rounds):
        order = list(VARIANTS)
        rng.shuffle(order)
        for name in order:
            threads, env = VARIANTS[name]
            loads.append(os.getloadavg()[0])
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(threads), "--seconds", str(args.seconds)],
                env={**base, **env}, capture_output=True, text=True, check=True,
            )  # fmt: skip
            results[name].append(json.loads(proc.stdout.splitlines()[-1]))
    ref = statistics.median(r["wall_ms"] for r in results["2 threads"])
    print(
        f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores, "
        f"{args.rounds} rounds of {args.seconds:g} s, impl {results['1 thread'][0]['impl']}"
    )
    print("| variant | wall ms/step (median of rounds) | CPU ms/step | vs 2 threads default |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        wall = statistics.median(r["wall_ms"] for r in rows)
        cpu = statistics.median(r["cpu_ms"] for r in rows)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {ref / wall:.2f}x |")


if __name__ == "__main__":
    main()
