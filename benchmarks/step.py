"""`Recurrent.step` against torch's RNNCell/GRUCell/LSTMCell at B=1 (issue 11 point 5).

Each job runs `steps` steps of a streaming loop, the state fed back every step; the jobs take
turns (interleaved) and each figure is the median over `reps` rounds, in µs per step. Both
modes are timed: under torch.no_grad() and with autograd (weights requiring grad, the graph
built; the backward is not timed here, see --backward).

    PYTHONPATH=src python benchmarks/step.py --threads 1 [--hidden 64 256] [--backward]
        [--clock cpu]   (process CPU time: with one thread, steady on a busy machine)
"""

from __future__ import annotations

import argparse

import torch

from rnnkit.bench.speed import CLOCKS, TORCH_CELL, interleaved, stream_jobs

# torch's cell, Recurrent.step (impl "auto": the kernel plan without a gradient, else the cells)
APIS = ("torch_cell", "layer_auto")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    ap.add_argument("--backward", action="store_true", help="also time backward (grad mode)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("| cell | H | mode | torch cell µs | Recurrent.step µs | ratio |")
    print("|---|---|---|---|---|---|")
    for H in args.hidden:
        for cell in TORCH_CELL:
            for grad in (False, True):
                backward = args.backward and grad
                jobs = stream_jobs(cell, H, args.steps, reference=False, backward=backward)
                with torch.set_grad_enabled(grad):
                    med = interleaved({k: jobs[k] for k in APIS}, args.reps, CLOCKS[args.clock])
                us = {k: v / args.steps * 1e6 for k, v in med.items()}
                mode = ("grad+backward" if backward else "grad") if grad else "no_grad"
                print(f"| {cell} | {H} | {mode} | {us['torch_cell']:.2f} | "
                      f"{us['layer_auto']:.2f} | {us['torch_cell'] / us['layer_auto']:.2f}x |",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
