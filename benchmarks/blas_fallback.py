"""What the kernels' ATen fallback costs: every GEMM through ATen's addmm (what RNNKIT_BLAS=aten
forces, and what a torch whose libraries export no sgemm_ runs) against the direct BLAS calls
(MKL's sgemm_ and packed GEMM here), for the fused Elman/GRU/LSTM sequence kernels.

One thread, CPU-time clock, the two paths interleaved in one process (the module's configure
switches them between calls), median of --reps. Training = forward + backward.

    PYTHONPATH=src python benchmarks/blas_fallback.py [--reps 15]
"""

from __future__ import annotations

import argparse
import time

import torch

from rnnkit import kernels
from rnnkit.bench.speed import interleaved

SHAPES = ((32, 100, 64), (32, 100, 256))
CELLS = (("elman", 1), ("gru", 3), ("lstm", 4))


def _calls(name: str, G: int, B: int, T: int, H: int):
    """(inference, training) calls of one cell's sequence kernel on random data."""
    x = torch.randn(B, T, H, requires_grad=True)
    w = [(torch.randn(G * H, H) * H**-0.5).requires_grad_() for _ in range(2)]
    w += [torch.zeros(G * H, requires_grad=True) for _ in range(2)]
    run = getattr(kernels, f"{name}_sequence")
    states = (None, None) if name == "lstm" else (None,)

    def infer():
        with torch.no_grad():
            run(x, *states, *w)

    def train():
        run(x, *states, *w)[0].sum().backward()

    return infer, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    module = kernels._build.native()[0]
    assert module is not None, kernels.available().reason

    def on(direct: bool):  # configure(use_pack, min_rows, use_blas); -1 keeps min_rows
        module.configure(int(direct), -1, int(direct))

    print(kernels.available().reason)
    print("| (B,T,H) | cell | mode | direct ms | ATen addmm ms | ATen / direct |")
    print("|---|---|---|---|---|---|")
    for B, T, H in SHAPES:
        for name, G in CELLS:
            infer, train = _calls(name, G, B, T, H)
            for mode, job in (("inference", infer), ("training", train)):
                jobs = {"direct": lambda job=job: (on(True), job()),
                        "aten": lambda job=job: (on(False), job())}  # fmt: skip
                got = interleaved(jobs, args.reps, time.process_time, warmup=2)
                d, a = got["direct"] * 1e3, got["aten"] * 1e3
                print(f"| {(B, T, H)} | {name} | {mode} | {d:.2f} | {a:.2f} | {a / d:.2f}x |")
    on(True)


if __name__ == "__main__":
    main()
