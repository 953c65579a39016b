"""The streamer's two-thread split, A/B in one process: the old fixed rule against the timed
choice (kernels.KernelStreamer, split=None), with one thread, the parallel_for split and the
worker-thread split forced for reference, and torch's cell. B = 1, D = H, wall clock, jobs of
`--steps` steps taking turns, medians.

    PYTHONPATH=src python benchmarks/stream_split.py [--threads 2] [--reps 15] [--steps 200]

Prints one JSON line per (cell, H): µs a step per job ("rule": rk_split_min = 2^18 weight
elements, what every streamer ran before the timed choice), the choice the timed streamer
made with its own timing, the cost of building it, the speedups over torch's cell, and the
share of steps whose second half the worker thread ran ("worker_ran"; the caller runs it when
the worker is late).
"""

import argparse
import json
import os
import time

import torch

from rnnkit.bench.speed import CLOCKS, interleaved, seeded_pair
from rnnkit.kernels import step as kstep
from rnnkit.layers import from_torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--cells", nargs="+", default=["elman", "gru", "lstm"])
    ap.add_argument("--hs", nargs="+", type=int, default=[64, 128, 256])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for H in args.hs:
        for cell in args.cells:
            measure(cell, H, args)


def measure(cell: str, H: int, args) -> None:
    mod, tcell = seeded_pair(cell, H)
    layer = from_torch(mod, impl="fused").eval()
    x = torch.randn(1, H)
    s0 = (torch.zeros(1, H), torch.zeros(1, H)) if cell == "lstm" else torch.zeros(1, H)
    t0 = time.perf_counter()
    auto = layer.streamer()
    build_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    layer.streamer(split=False)
    build_fixed_ms = (time.perf_counter() - t0) * 1e3
    rule = layer.streamer(split=False)
    rule._set_split(kstep._SPLIT_RULE)
    streamers = {"rule": rule, "auto": auto, "one": layer.streamer(split=False),
                 "split": layer.streamer(split=True)}  # fmt: skip
    worker = None
    if hasattr(kstep, "_SPLIT_WORKER"):  # a tree with the worker thread
        worker = streamers["worker"] = layer.streamer(split="worker")

    def torch_job():
        s = s0
        with torch.no_grad():
            for _ in range(args.steps):
                s = tcell(x, s)

    def stream_job(s):
        def job():
            s.reset()
            for _ in range(args.steps):
                s.step(x)

        return job

    jobs = {"torch_cell": torch_job, **{k: stream_job(s) for k, s in streamers.items()}}
    med = interleaved(jobs, args.reps, CLOCKS["wall"])
    us = {k: round(v / args.steps * 1e6, 2) for k, v in med.items()}
    extra = {}
    if worker is not None:
        posted, ran = worker.worker_stats()
        extra = {"worker_ran": round(ran / max(posted, 1), 3),
                 "x_torch_worker": round(us["torch_cell"] / us["worker"], 1)}  # fmt: skip
    print(json.dumps({
        "cell": cell, "H": H, "threads": args.threads, "us": us, **extra,
        "auto_split": auto.split, "auto_reason": auto.split_reason,
        "build_ms": round(build_ms, 2), "build_fixed_ms": round(build_fixed_ms, 2),
        "x_torch_rule": round(us["torch_cell"] / us["rule"], 1),
        "x_torch_auto": round(us["torch_cell"] / us["auto"], 1),
        "load": os.getloadavg()[0],
    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
