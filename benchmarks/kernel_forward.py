"""Forward time of the fused sequence kernels (no autograd, one thread), for one source tree.

Run it once per tree with that tree's src first on PYTHONPATH, alternating, to compare builds
(used for benchmarks/README.md, "Kernels as PyTorch operators"):

    PYTHONPATH=src python benchmarks/kernel_forward.py
"""

import json
import time

import torch

from rnnkit import kernels

SHAPES = ((32, 100, 64), (32, 1, 64), (1, 100, 64), (32, 100, 256))
CELLS = (("lstm", 4), ("gru", 3), ("elman", 1))


def median_ms(fn, n=21):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[n // 2] * 1e3


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    res = {}
    for B, T, H in SHAPES:
        for name, G in CELLS:
            x = torch.randn(B, T, H)
            w = [torch.randn(G * H, H) * 0.1, torch.randn(G * H, H) * 0.1]
            w += [torch.zeros(G * H), torch.zeros(G * H)]
            run = getattr(kernels, f"{name}_sequence")
            args = (x, None, None, *w) if name == "lstm" else (x, None, *w)
            with torch.no_grad():
                run(*args)
                ms = median_ms(lambda run=run, args=args: run(*args))
                res[f"{name} {(B, T, H)}"] = round(ms, 3)
    print(json.dumps({"kernels": kernels.available().reason, "forward_ms": res}))


if __name__ == "__main__":
    main()
