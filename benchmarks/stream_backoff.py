"""The streamer's worker split, round by round as the split timing runs it, or burst by burst
as `rnnkit bench` runs it.

Rounds (default): rounds of 50 worker-split steps taking turns with a one-thread and a
parallel_for round, each worker round sorted by what its steps posted (worker_stats): nothing
(the caller backing off: the round ran on one thread), all halves run by the worker, or some.

Bursts (--bursts N): the bench's pattern, `--steps` worker-split steps after `--gap-ms` of
the caller busy with torch's cell (the other jobs of `interleaved`), so each burst begins
with the worker asleep. Per burst, from worker_stats read after every step: the steps and
microseconds until the worker first ran a half (its wake-up; with a tree that logs them,
stream_worker_wakes, also the worker's own notify-to-awake latencies and how many of its
wake-ups were on the caller's CPU; --no-move keeps it there), whether the caller backed off
inside the burst (a step that posted nothing) or the burst began backed off, the median µs
a step of the first 20 steps and of the last 100, and the burst's mean; and the mean of a
one-thread streamer's burst run right after each (the same conditions).

B = 1, D = H, 2 threads, wall clock.

    PYTHONPATH=src python benchmarks/stream_backoff.py [--rounds 60] [--prime]
    PYTHONPATH=src python benchmarks/stream_backoff.py --bursts 40 [--gap-ms 8] [--hs 128]

--prime wakes the worker and clears the back-off before each worker round
(stream_worker_prime, as KernelStreamer's timing does). Prints one JSON line per (cell, H).
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
    ap.add_argument("--bursts", type=int, default=0, help="burst mode: this many bursts")
    ap.add_argument("--steps", type=int, default=200, help="steps a burst")
    ap.add_argument("--gap-ms", type=float, default=8.0, help="busy gap before each burst")
    ap.add_argument(
        "--no-move",
        action="store_true",
        help="burst mode: a worker woken on the caller's CPU stays there",
    )
    ap.add_argument("--cells", nargs="+", default=["gru", "lstm"])
    ap.add_argument("--hs", nargs="+", type=int, default=[128, 256])
    args = ap.parse_args()
    torch.set_num_threads(2)
    for cell in args.cells:
        for H in args.hs:
            (bursts if args.bursts else measure)(cell, H, args)


def q(v, p):
    v = sorted(v)
    return round(v[min(len(v) - 1, int(p * len(v)))], 1) if v else None


def bursts(cell: str, H: int, args) -> None:
    mod, tcell = seeded_pair(cell, H)
    layer = from_torch(mod, impl="fused").eval()
    s, one = layer.streamer(split="worker"), layer.streamer(split=False)
    x = torch.zeros(1, H)
    h0 = torch.zeros(1, H)
    st0 = (h0, h0.clone()) if cell == "lstm" else h0
    clock, stats = time.perf_counter, s.worker_stats
    wakes = getattr(s._module, "stream_worker_wakes", None)  # a tree that logs them
    option = getattr(s._module, "stream_worker_option", None)
    if option and args.no_move:
        option(s._worker, "move", 0)
    rows, lat, one_us = [], [], []
    with torch.no_grad():
        for _ in range(1000):  # warm-up
            s.step(x)
        if wakes:
            wakes(s._worker)
        for _ in range(args.bursts):
            t_end = clock() + args.gap_ms / 1e3
            st = st0
            while clock() < t_end:  # the caller busy elsewhere, the worker falls asleep
                st = tcell(x, st)
            s.reset()
            ts, who = [], []
            p0, r0 = stats()
            t0 = clock()
            for _ in range(args.steps):
                s.step(x)
                ts.append(clock())
                p1, r1 = stats()
                who.append("w" if r1 > r0 else "c" if p1 > p0 else "1")  # worker/caller/one
                p0, r0 = p1, r1
            if wakes:
                lat += wakes(s._worker)
            one.reset()  # the one-thread streamer's burst, right after: the same conditions
            t1 = clock()
            for _ in range(args.steps):
                one.step(x)
            one_us.append((clock() - t1) / args.steps * 1e6)
            dts = [(b - a) * 1e6 for a, b in zip([t0, *ts[:-1]], ts, strict=True)]
            first = who.index("w") if "w" in who else None
            rows.append({
                "wake_steps": first,
                "wake_us": None if first is None else (ts[first - 1] - t0) * 1e6 if first else 0.0,
                "began_backed_off": who[0] == "1",
                "backed_off_inside": who[0] != "1" and "1" in who,
                "one_thread_steps": who.count("1"),
                "worker_steps": who.count("w"),
                "first20": statistics.median(dts[:20]),
                "last100": statistics.median(dts[-100:]),
                "mean": (ts[-1] - t0) / args.steps * 1e6,
            })  # fmt: skip
    woke = [r["wake_us"] for r in rows if r["wake_us"] is not None]
    out = {
        "cell": cell, "H": H, "bursts": len(rows), "gap_ms": args.gap_ms, "steps": args.steps,
        "never_woke": sum(r["wake_steps"] is None for r in rows),
        "began_backed_off": sum(r["began_backed_off"] for r in rows),
        "backed_off_inside": sum(r["backed_off_inside"] for r in rows),
        "wake_us_p10_50_90_max": [q(woke, 0.1), q(woke, 0.5), q(woke, 0.9), q(woke, 1.0)],
        "logged_wakes": len(lat),
        "logged_wake_us_p10_50_90_max": [q(us, p) for us in ([u for u, _ in lat],)
                                         for p in (0.1, 0.5, 0.9, 1.0)] if lat else None,
        "woke_on_callers_cpu": sum(here for _, here in lat),
        "moves": s._module.stream_worker_option(s._worker, "moves", -1) if option else None,
        "wake_steps_median": statistics.median([r["wake_steps"] for r in rows
                                                if r["wake_steps"] is not None] or [0]),
        "first20_us": round(statistics.median(r["first20"] for r in rows), 2),
        "last100_us": round(statistics.median(r["last100"] for r in rows), 2),
        "burst_mean_us_median": round(statistics.median(r["mean"] for r in rows), 2),
        "one_thread_burst_mean_us_median": round(statistics.median(one_us), 2),
        "worker_share": round(sum(r["worker_steps"] for r in rows) / (len(rows) * args.steps), 3),
        "load": os.getloadavg()[0],
    }  # fmt: skip
    print(json.dumps(out), flush=True)


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
