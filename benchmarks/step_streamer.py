"""`KernelStreamer.step` against torch's RNNCell/GRUCell/LSTMCell at B=1 (issue 11's streamer
rows): µs a step; prints JSON {"<cell> <H>": [streamer µs, torch cell µs, ratio]}.

With --threads 1 (the default) both are timed by process CPU time: the streamer (2000 steps)
and torch's cell (500 steps) take turns, median of 7 turns each. With --threads 2 a step at
H >= 96 splits over two threads (csrc/team.h), whose helper spins between steps, so CPU time
would count it twice: each step is timed alone by the wall clock (perf_counter_ns) and the
figure is the 10th percentile of those times, which leaves out the steps that waited for a core
on a loaded machine (a quiet machine gives nearly the median). The JSON then also has "crew":
[helper threads, parts the helpers ran] (absent from older builds). --halves prints, on one
thread, the whole step against the half a split thread runs (csrc/step.cpp rk_split_min). A/B
two trees by running it under each in turn:

    for t in /work/main /tmp/wt/kstream; do
        PYTHONPATH=$t/src python benchmarks/step_streamer.py --threads 2; done
"""

import argparse
import json
import statistics
import time

import torch

import rnnkit


def per_step(fn, args, steps: int) -> float:
    """µs a call of fn(*args) over `steps` calls, by process CPU time."""
    t = time.process_time()
    for _ in range(steps):
        fn(*args)
    return (time.process_time() - t) / steps * 1e6


def each_step(fn, args, steps: int, into: list) -> None:
    """Appends the wall-clock ns of each of `steps` calls of fn(*args)."""
    ns = time.perf_counter_ns
    for _ in range(steps):
        t = ns()
        fn(*args)
        into.append(ns() - t)


def low(times: list, q: float = 0.1) -> float:
    """The q-quantile of `times` (ns) in µs."""
    return sorted(times)[int(len(times) * q)] / 1e3


def halves(hidden: list) -> dict:
    """One thread: the whole step of (H, H) streamers against the half a split thread does, the
    (H + H/2, H/2) streamer (half the weights, the same row length): {"<cell> <H>": [whole µs,
    half µs]}, 10th percentile of single-step wall times, the two taking turns."""
    torch.set_num_threads(1)
    out = {}
    for H in hidden:
        for make in (rnnkit.RNN, rnnkit.GRU, rnnkit.LSTM):
            pair = [(make(H, H), H), (make(H + H // 2, H // 2), H + H // 2)]
            pair = [(m.eval().streamer(1), torch.randn(1, d)) for m, d in pair]
            times = [[], []]
            with torch.no_grad():
                for _ in range(60):
                    for (streamer, x), into in zip(pair, times, strict=True):
                        each_step(streamer.step, (x,), 100, into)
            out[f"{make.__name__} {H}"] = [round(low(t), 3) for t in times]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--halves", action="store_true", help="the split threshold's table")
    args = ap.parse_args()
    if args.halves:
        print(json.dumps(halves(args.hidden)))
        return
    torch.set_num_threads(args.threads)
    out = {}
    cells = {rnnkit.RNN: torch.nn.RNNCell, rnnkit.GRU: torch.nn.GRUCell,
             rnnkit.LSTM: torch.nn.LSTMCell}  # fmt: skip
    for H in args.hidden:
        for make, cell_type in cells.items():
            streamer, x = make(H, H).eval().streamer(1), torch.randn(1, H)
            cell, h = cell_type(H, H), torch.zeros(1, H)
            state = (h, h.clone()) if cell_type is torch.nn.LSTMCell else h
            ours, theirs = [], []
            with torch.no_grad():
                for _ in range(7):
                    if args.threads == 1:
                        ours.append(per_step(streamer.step, (x,), 2000))
                        theirs.append(per_step(cell, (x, state), 500))
                    else:
                        each_step(streamer.step, (x,), 2000, ours)
                        each_step(cell, (x, state), 500, theirs)
            if args.threads == 1:
                a, b = statistics.median(ours), statistics.median(theirs)
            else:
                a, b = low(ours), low(theirs)
            out[f"{make.__name__} {H}"] = [round(a, 3), round(b, 3), round(b / a, 2)]
    if args.threads > 1:
        from rnnkit.kernels.sequence import lib

        crew = getattr(lib(), "step_crew", None)  # absent in builds before the crew
        if crew:
            out["crew"] = list(crew())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
