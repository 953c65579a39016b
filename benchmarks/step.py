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
import statistics
import time

import torch
from torch import nn

from rnnkit.layers import from_torch

TORCH_SEQ = {"elman": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
TORCH_CELL = {"elman": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def jobs(cell: str, H: int, steps: int, backward: bool):
    torch.manual_seed(0)
    mod = TORCH_SEQ[cell](H, H, batch_first=True)
    tcell = TORCH_CELL[cell](H, H)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(tcell, name).copy_(getattr(mod, f"{name}_l0"))
    layer = from_torch(mod).eval()
    x = torch.randn(1, H)
    zero = (torch.zeros(1, H), torch.zeros(1, H)) if cell == "lstm" else torch.zeros(1, H)

    def torch_cell():
        s = zero
        for _ in range(steps):
            s = tcell(x, s)
        if backward:
            (s[0] if isinstance(s, tuple) else s).sum().backward()

    def layer_step():
        s = None
        for _ in range(steps):
            y, s = layer.step(x, s)
        if backward:
            y.sum().backward()

    return {"torch_cell": torch_cell, "layer_step": layer_step}, layer


def interleaved(js: dict, reps: int, grad: bool, clock) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in js}
    with torch.set_grad_enabled(grad):
        for job in js.values():
            job()  # warm-up: plans, caches
        for _ in range(reps):
            for k, job in js.items():
                t = clock()
                job()
                times[k].append(clock() - t)
    return {k: statistics.median(v) for k, v in times.items()}


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
    print("| cell | H | mode | torch cell µs | Recurrent.step µs | ratio | impl_used |")
    print("|---|---|---|---|---|---|---|")
    for H in args.hidden:
        for cell in TORCH_CELL:
            for grad in (False, True):
                js, layer = jobs(cell, H, args.steps, args.backward and grad)
                med = interleaved(js, args.reps, grad, CLOCKS[args.clock])
                us = {k: v / args.steps * 1e6 for k, v in med.items()}
                mode = ("grad+backward" if args.backward else "grad") if grad else "no_grad"
                print(f"| {cell} | {H} | {mode} | {us['torch_cell']:.2f} | "
                      f"{us['layer_step']:.2f} | {us['torch_cell'] / us['layer_step']:.2f}x | "
                      f"{layer.impl_used} |", flush=True)


if __name__ == "__main__":
    main()
