"""The streamer's worker split, round by round as the split timing runs it: rounds of 50
worker-split steps taking turns with a one-thread and a parallel_for round, each worker round
sorted by what its steps posted (worker_stats): nothing (the caller backing off: the round ran
on one thread), all halves run by the worker, or some. B = 1, D = H, 2 threads, wall clock.

    PYTHONPATH=src python benchmarks/stream_backoff.py [--rounds 60] [--prime]

--prime wakes the worker and clears the back-off before each worker round
(stream_worker_prime, as KernelStreamer's timing does). Prints one JSON line per (cell, H):
rounds and the median µs a step of each kind.
"""

import argparse
import json
import os
import statistics
import time

import torch

from rnnkit.bench.speed import seeded_pair
from rnnkit.kernels import step as ks
from rnnkit.layers import from_torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--prime", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    for cell in ("gru", "lstm"):
        for H in (128, 256):
            measure(cell, H, args)


def measure(cell: str, H: int, args) -> None:
    mod, _ = seeded_pair(cell, H)
    s = from_torch(mod, impl="fused").eval().streamer(split=False)
    s._start_worker()
    x = torch.zeros(1, H)
    clock = time.perf_counter

    def rnd(mode, n=50):
        s._set_split(mode)
        ts = []
        for _ in range(n):
            t0 = clock()
            s.step(x)
            ts.append(clock() - t0)
        return statistics.median(ts) * 1e6

    kinds = {"posted nothing": [], "worker ran all": [], "worker ran some": []}
    with torch.no_grad():
        for _ in range(args.rounds):
            if args.prime:
                s._module.stream_worker_prime(s._worker, ks._WORKER_PRIME_US)
            a = s.worker_stats()
            us = rnd(ks._SPLIT_WORKER)
            b = s.worker_stats()
            posted, ran = b[0] - a[0], b[1] - a[1]
            kind = (
                "posted nothing"
                if not posted
                else "worker ran all"
                if ran == posted
                else "worker ran some"
            )
            kinds[kind].append(us)
            rnd(ks._SPLIT_NEVER)
            rnd(ks._SPLIT_ALWAYS)
    out = {k: [len(v), round(statistics.median(v), 2) if v else None] for k, v in kinds.items()}
    print(json.dumps({"cell": cell, "H": H, "prime": args.prime, "rounds": out,
                      "load": os.getloadavg()[0]}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
