"""Large-size rows of `rnnkit bench` for one source tree, with the page faults of each call.

Run it once per tree with that tree's src first on PYTHONPATH, alternating trees, to compare
builds (benchmarks/README.md, "Kernel block cache"):

    PYTHONPATH=src python benchmarks/workspace.py [--threads 2] [--reps 5] [--clock cpu|wall]
        [--gemm own|blas]

The fused layer and torch.nn take turns (rnnkit.bench.speed.interleaved), so a load change hits
both; the sgemm peak is measured in the same process. Prints one JSON line per row: medians in
ms, fused/torch speedup (--peer), GEMM GFLOP/s as a share of the peak (the faster of torch.mm
and the own GEMM), minor page faults a call, and which GEMM the kernels ran (--gemm forces it:
the own GEMM's packs come from the block cache too, session 8).
"""

import argparse
import json
import resource

import torch

from rnnkit.bench.speed import CLOCKS, TORCH_SEQ, gemm_flops, interleaved, layer_job, sgemm_peak
from rnnkit.kernels.sequence import lib
from rnnkit.layers import from_torch

ROWS = (
    ("lstm", (64, 100, 512), "inference"),
    ("lstm", (32, 100, 256), "inference"),
    ("gru", (64, 100, 512), "inference"),
    ("lstm", (64, 100, 512), "training"),
    ("gru", (64, 100, 512), "training"),
    ("elman", (64, 100, 512), "training"),
)


def faults_per_call(job, n: int = 2) -> float:
    """Minor page faults of one call (mean of n, after a warm-up call)."""
    job()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        job()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    ap.add_argument("--label", default="")
    ap.add_argument("--gemm", choices=("own", "blas"), help="the kernels' GEMM (default: theirs)")
    ap.add_argument("--peer", action="store_true", help="also time torch.nn (the speedup column)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    module = lib()
    if args.gemm:
        module.gemm_configure(int(args.gemm == "own"))
    gemm = "own" if module.gemm_configure(-1)[0] else "blas"
    clock = CLOCKS[args.clock]
    peak = sgemm_peak(clock)
    for cell, (B, T, H), mode in ROWS:
        torch.manual_seed(0)
        mod = TORCH_SEQ[cell](H, H, batch_first=True)
        x = torch.randn(B, T, H)
        jobs = {"fused": layer_job(from_torch(mod, impl="fused"), x, mode)}
        if args.peer:
            jobs["torch"] = layer_job(mod, x, mode)
        med = interleaved(jobs, args.reps, clock)
        gflops = gemm_flops(cell, B, T, H, H, mode) / med["fused"] / 1e9
        print(
            json.dumps(
                {
                    "label": args.label,
                    "cell": cell,
                    "size": f"{B}x{T}x{H}",
                    "mode": mode,
                    "clock": args.clock,
                    "gemm": gemm,
                    "fused_ms": round(med["fused"] * 1e3, 1),
                    **(
                        {
                            "torch_ms": round(med["torch"] * 1e3, 1),
                            "speedup": round(med["torch"] / med["fused"], 3),
                        }
                        if args.peer
                        else {}
                    ),
                    "peak_share": round(gflops / peak, 3),
                    "faults": faults_per_call(jobs["fused"]),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
