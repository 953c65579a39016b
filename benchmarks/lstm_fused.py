"""The LSTM forward's step modes, A/B in one process, against torch.nn.LSTM (oneDNN).

`lstm_configure(mode)` (csrc/cells.h rk_lstm_fuse): 0 the input projection's GEMM, the step
GEMM and the row pass (what ran before session 9); 1 the fused tile after the projection's GEMM;
2 the fused tile over x and h; 3 by shape and CPU (the default, rk_lstm_auto). Jobs take turns
(interleaved), medians; D = H.

    PYTHONPATH=src python benchmarks/lstm_fused.py [--sizes 32x100x64,32x100x256] [--threads 1]
        [--clock cpu] [--reps 9] [--modes 0,1,2] [--training] [--onnx]

Prints one JSON line: per size, ms per job ("m0", "m1", "m2", "torch") and torch's time over
each mode's ("x_m0", ...; > 1: the mode is faster), with --onnx also onnxruntime ("ort") and
its time over each mode's ("ort_m0", ...), with the load average. With --threads 1,
--clock cpu (process CPU time) is steady on a shared machine.
"""

import argparse
import json
import os

import torch

from rnnkit.bench.speed import CLOCKS, interleaved, layer_job, onnx_job
from rnnkit.kernels.sequence import lib
from rnnkit.layers import from_torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="32x100x64,32x100x256")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--modes", default="0,1,2")
    ap.add_argument("--training", action="store_true", help="forward + backward of out.sum()")
    ap.add_argument("--onnx", action="store_true", help="add onnxruntime (inference)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    module = lib()
    mode_was = module.lstm_configure(-1)
    kind = "training" if args.training else "inference"
    result = {}
    for size in args.sizes.split(","):
        B, T, H = (int(v) for v in size.split("x"))
        torch.manual_seed(0)
        mod = torch.nn.LSTM(H, H, batch_first=True)
        x = torch.randn(B, T, H)
        fused = layer_job(from_torch(mod, impl="fused"), x, kind)

        def with_mode(mode, fused=fused):
            def job():
                module.lstm_configure(mode)
                fused()

            return job

        jobs = {f"m{m}": with_mode(int(m)) for m in args.modes.split(",")}
        jobs["torch"] = layer_job(from_torch(mod, impl="torch"), x, kind)
        if args.onnx and not args.training:
            jobs["ort"] = onnx_job(mod, x)[0]
        med = interleaved(jobs, args.reps, CLOCKS[args.clock], warmup=2)
        ms = {k: round(v * 1e3, 3) for k, v in med.items()}
        modes = [k for k in med if k.startswith("m")]
        ratios = {f"x_{k}": round(med["torch"] / med[k], 3) for k in modes}
        if "ort" in med:
            ratios |= {f"ort_{k}": round(med["ort"] / med[k], 3) for k in modes}
        result[size] = ms | ratios
    module.lstm_configure(mode_was)
    result["mode"] = kind
    result["threads"] = args.threads
    result["clock"] = args.clock
    result["load"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
