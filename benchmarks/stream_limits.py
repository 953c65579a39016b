"""The B = 1 streamer's limits on this machine (issue 11, session 13): how fast one core
streams its half of the weights, what a handoff between the caller and a worker thread
costs, and where a split step's time goes; then, with --bursts, the streamer's step-by-step
times in `rnnkit bench`'s pattern.

    PYTHONPATH=src python benchmarks/stream_limits.py [--reps 15] [--steps 1000] [--H 128]
    PYTHONPATH=src python benchmarks/stream_limits.py --bursts 15 [--cells gru lstm]
    PYTHONPATH=src python benchmarks/stream_limits.py --steady 25
    PYTHONPATH=src python benchmarks/stream_limits.py --rows 15

The first form compiles benchmarks/stream_limits.cpp (with the kernels' own step.h and
compiler flags, g++) and prints its JSON lines (the figures are described at the top of the
.cpp), plus one for a sleeping thread's wake-up. The second times `--bursts` bursts of 200
steps of a worker-split and a one-thread streamer, each after the other jobs of the bench's
streaming rows (rnnkit.bench.speed.stream_jobs: torch's cell, Recurrent.step fused, auto and
reference; ~20 ms; --prime: the worker woken, untimed, right before each of its bursts), and
prints per mode the median µs of each of the first 10 steps, of steps
10-50 and 50-200, the median burst mean, and the excess over the tail's rate (µs a burst).
--steady N: N rounds of 300 + 2000 continuous steps, taking turns, of a one-thread streamer, a
worker-split one and (a tree with stream_worker_option "lean") the worker split with lean=0
(the handoff before session 13); min and median µs a step of the 2000-step blocks. --rows N:
the bench's own streaming jobs (stream_jobs + N interleaved reps, as `rnnkit bench`), torch's
cell and the streamer (its timed choice) only, µs a step. Both A/B two trees by PYTHONPATH.
The figures are wall clock: pause anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "src" / "rnnkit" / "kernels" / "csrc"


def limits(args) -> None:
    sys.path.insert(0, str(ROOT / "src" / "rnnkit" / "kernels"))
    import _flags  # the kernels' compiler flags (stdlib only)

    flags = [f for f in _flags.compile_args("") if f != "-fopenmp"]
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "stream_limits"
        src = Path(__file__).with_suffix(".cpp")
        subprocess.run(["g++", *flags, "-std=c++17", "-w", f"-I{CSRC}", str(src), "-o", str(exe),
                        "-lpthread"], check=True)  # fmt: skip
        load = os.getloadavg()[0]
        for extra in ([], ["40"]):
            out = subprocess.run([str(exe), str(args.reps), str(args.steps), str(args.H), *extra],
                                 check=True, capture_output=True, text=True).stdout  # fmt: skip
            for line in out.splitlines():
                print(json.dumps({**json.loads(line), "load": load}), flush=True)


def bursts(args) -> None:
    import torch

    from rnnkit.bench.speed import seeded_pair, stream_jobs
    from rnnkit.layers import from_torch

    torch.set_num_threads(2)
    clock = time.perf_counter_ns
    for cell in args.cells:
        others = stream_jobs(cell, args.H, 200, reference=True)
        del others["streamer"]
        mod, _ = seeded_pair(cell, args.H)
        fused = from_torch(mod, impl="fused").eval()
        modes = {"worker": fused.streamer(split="worker"), "one": fused.streamer(split=False)}
        x = torch.randn(1, args.H)
        per = {m: [[] for _ in range(200)] for m in modes}
        means = {m: [] for m in modes}
        with torch.no_grad():
            for job in others.values():
                job()
            for _ in range(args.bursts):
                for m, s in modes.items():  # each mode's burst after the other jobs
                    for job in others.values():
                        job()
                    if args.prime and m == "worker":  # awake, untimed: what the wake-up costs
                        s._module.stream_worker_prime(s._worker, 1e5)
                    ts = [0] * 201
                    s.reset()
                    ts[0] = clock()
                    for i in range(200):
                        s.step(x)
                        ts[i + 1] = clock()
                    for i in range(200):
                        per[m][i].append((ts[i + 1] - ts[i]) / 1e3)
                    means[m].append((ts[200] - ts[0]) / 200e3)
        for m, s in modes.items():
            med = [statistics.median(v) for v in per[m]]
            tail = statistics.median(med[50:])
            print(json.dumps({
                "cell": cell, "H": args.H, "mode": m, "bursts": args.bursts,
                "burst_mean_us": round(statistics.median(means[m]), 2),
                "first10_us": [round(v, 1) for v in med[:10]],
                "steps_10_50_us": round(statistics.median(med[10:50]), 2),
                "steps_50_200_us": round(tail, 2),
                "excess_over_tail_us": round(sum(med) - 200 * tail, 1),
                "worker_stats": s.worker_stats(), "load": os.getloadavg()[0],
            }), flush=True)  # fmt: skip


def steady(args) -> None:
    import torch

    from rnnkit.bench.speed import seeded_pair
    from rnnkit.layers import from_torch

    torch.set_num_threads(2)
    for cell in args.cells:
        mod, _ = seeded_pair(cell, args.H)
        layer = from_torch(mod, impl="fused").eval()
        ss = {"one": layer.streamer(split=False), "worker": layer.streamer(split="worker")}
        option = getattr(ss["worker"]._module, "stream_worker_option", None)
        try:
            option(ss["worker"]._worker, "lean", -1)
            ss["worker_lean0"] = layer.streamer(split="worker")
            option(ss["worker_lean0"]._worker, "lean", 0)
        except (TypeError, ValueError):  # a tree before session 13
            pass
        x = torch.randn(1, args.H)
        us = {k: [] for k in ss}
        with torch.no_grad():
            for _ in range(args.steady):
                for k, s in ss.items():
                    f = s.step
                    for _ in range(300):
                        f(x)
                    t0 = time.perf_counter()
                    for _ in range(2000):
                        f(x)
                    us[k].append((time.perf_counter() - t0) / 2000 * 1e6)
        print(json.dumps({"cell": cell, "H": args.H, "min_median_us": {
            k: [round(min(v), 2), round(statistics.median(v), 2)] for k, v in us.items()},
            "load": os.getloadavg()[0]}), flush=True)  # fmt: skip


def rows(args) -> None:
    import torch

    from rnnkit.bench.speed import interleaved, stream_jobs

    torch.set_num_threads(2)
    for cell in args.cells:
        jobs = stream_jobs(cell, args.H, 200, reference=True)
        with torch.no_grad():
            t = interleaved(jobs, args.rows, time.perf_counter)
        a, b = t["torch_cell"] / 200 * 1e6, t["streamer"] / 200 * 1e6
        print(json.dumps({"cell": cell, "H": args.H, "torch_cell_us": round(a, 2),
                          "streamer_us": round(b, 2), "x": round(a / b, 2),
                          "split": jobs["streamer"].split_reason,
                          "load": os.getloadavg()[0]}), flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--H", type=int, default=128)
    ap.add_argument("--bursts", type=int, default=0, help="the bench's pattern: this many bursts")
    ap.add_argument(
        "--prime",
        action="store_true",
        help="bursts: wake the worker (untimed) before each of its bursts",
    )
    ap.add_argument("--steady", type=int, default=0, help="continuous: this many rounds")
    ap.add_argument("--rows", type=int, default=0, help="the bench's rows: this many reps")
    ap.add_argument("--cells", nargs="+", default=["gru", "lstm"])
    args = ap.parse_args()
    mode = bursts if args.bursts else steady if args.steady else rows if args.rows else limits
    mode(args)


if __name__ == "__main__":
    main()
