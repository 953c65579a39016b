"""Time of the fused sequence kernels for one source tree: inference (no autograd) and a training
step (forward + backward of out.sum() through the registered autograd), CPU-time clock.

Run it once per tree with that tree's src first on PYTHONPATH, alternating, to compare builds
(benchmarks/README.md, "Kernels as PyTorch operators" and "Sequence kernels, session 4"):

    PYTHONPATH=src python benchmarks/kernel_forward.py [--threads N] [--train] [--reps R]

Prints one JSON line: {"kernels": ..., "forward_ms": {...}, "train_ms": {...}} (medians, ms).
"""

import argparse
import json
import time

import torch

from rnnkit import kernels

SHAPES = ((32, 100, 64), (32, 1, 64), (1, 100, 64), (32, 100, 256))
CELLS = (("lstm", 4), ("gru", 3), ("elman", 1))


def median_ms(fn, n=21):
    fn()
    times = []
    for _ in range(n):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return sorted(times)[n // 2] * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train", action="store_true", help="also time a training step")
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--shapes", default=None, help="BxTxH,... (default: the built-in grid)")
    args = ap.parse_args()
    shapes = SHAPES
    if args.shapes:
        shapes = tuple(tuple(int(v) for v in s.split("x")) for s in args.shapes.split(","))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    fwd, train = {}, {}
    for B, T, H in shapes:
        for name, G in CELLS:
            x = torch.randn(B, T, H)
            w = [torch.randn(G * H, H) * 0.1, torch.randn(G * H, H) * 0.1]
            w += [torch.zeros(G * H), torch.zeros(G * H)]
            run = getattr(kernels, f"{name}_sequence")
            key = f"{name} {(B, T, H)}"

            def call(w=w, run=run, x=x, name=name):
                return run(*((x, None, None, *w) if name == "lstm" else (x, None, *w)))

            with torch.no_grad():
                fwd[key] = round(median_ms(call, args.reps), 3)
            if args.train:
                params = [p.requires_grad_() for p in w]

                def step(params=params, call=call):
                    for p in params:
                        p.grad = None
                    call()[0].sum().backward()

                train[key] = round(median_ms(step, args.reps), 3)
    out = {"kernels": kernels.available().reason, "threads": args.threads, "forward_ms": fwd}
    if args.train:
        out["train_ms"] = train
    print(json.dumps(out))


if __name__ == "__main__":
    main()
