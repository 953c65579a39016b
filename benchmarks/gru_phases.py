"""GRU and LSTM training at one size, phase by phase, each phase's GEMM FLOPs over its time.

Phases (torch.ops.rnnkit.{gru,lstm}_{fwd,bwd} called directly, reset_after=True, D = H, x
needing no gradient as in `rnnkit bench`): the forward; its input projection alone (the own
GEMM, as the kernel runs it); the forward's rest (per-step GEMM + gate pass); the backward
sweep alone (per-step dh GEMM + gate backward: the backward with no gradient but dh asked
for); the weight gradients (backward with dW, db minus the sweep); the same weight-gradient
GEMMs alone through torch.mm (MKL) on the kernel's layouts; the whole training step.

    PYTHONPATH=src python benchmarks/gru_phases.py [--size 64x100x512] [--threads 1] [--reps 7]

Clock: process CPU time with one thread (steady on a shared machine), wall clock otherwise.
Prints one line per phase and the 2048^3 sgemm peak (own GEMM, torch.mm) measured in the run.
"""

import argparse
import os
import time

import torch

import rnnkit.kernels as kernels
from rnnkit.bench.speed import _own_gemm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="64x100x512")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    status = kernels.available()
    if not status:
        raise SystemExit(f"native kernels unavailable: {status.reason}")
    B, T, H = (int(v) for v in args.size.split("x"))
    D, TB = H, B * T
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    own = _own_gemm()
    if own is None:
        raise SystemExit("the own GEMM does not run here (no AVX-512F)")

    def med(f) -> float:
        f()
        ts = []
        for _ in range(args.reps):
            t0 = clock()
            f()
            ts.append(clock() - t0)
        return sorted(ts)[len(ts) // 2]

    def line(flops: int, t: float) -> str:
        return f"{t * 1e3:7.1f} ms {flops / t / 1e9:6.1f} GFLOP/s"

    print(f"load {os.getloadavg()[0]:.2f}, threads {args.threads}, (B,T,H) = ({B},{T},{H})")
    n = 2048
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    print(
        f"sgemm {n}: own {line(2 * n**3, med(lambda: own(a, b, c)))}, "
        f"torch.mm {line(2 * n**3, med(lambda: torch.mm(a, b, out=c)))}"
    )
    torch.manual_seed(0)
    x, h0, dout = torch.randn(B, T, D), torch.zeros(B, H), torch.ones(B, T, H)
    xt = x.transpose(0, 1).contiguous().view(TB, D)
    for cell, G in (("gru", 3), ("lstm", 4)):
        cell_phases(cell, G, B, T, H, x, h0, dout, xt, own, med, line)


def cell_phases(cell, G, B, T, H, x, h0, dout, xt, own, med, line) -> None:
    """Time one cell's phases and print them (see the module docstring)."""
    D, TB, ops = H, B * T, torch.ops.rnnkit
    wi, wh = torch.randn(G * H, D) * 0.04, torch.randn(G * H, H) * 0.04
    bi, bh = torch.randn(G * H) * 0.1, torch.randn(G * H) * 0.1
    if cell == "gru":

        def fwd():
            return ops.gru_fwd(x, h0, wi, wh, bi, bh, True, None)

        _, _, hs, gates, ext = fwd()

        def bwd(need):
            return lambda: ops.gru_bwd(x, wi, wh, None, hs, gates, ext, dout, None, True, need)

        n_w, n_0 = [False, False, True, True, True, True], [False] * 6
        dg, dxn = torch.randn(TB, G * H), torch.randn(TB, H)  # the kernel's layouts
        oh, o2, o3 = torch.empty(G * H, H), torch.empty(2 * H, D), torch.empty(H, D)

        def mm():
            torch.mm(dg.t(), hs_t, out=oh)
            torch.mm(dg[:, : 2 * H].t(), xt, out=o2)
            torch.mm(dxn.t(), xt, out=o3)
    else:
        c0 = torch.zeros(B, H)

        def fwd():
            return ops.lstm_fwd(x, h0, c0, wi, wh, bi, bh, None)

        _, _, _, hs, cs, gates = fwd()

        def bwd(need):
            return lambda: ops.lstm_bwd(x, wi, wh, None, hs, cs, gates, dout, None, None, need)

        n_w, n_0 = [False, False, False, True, True, True, True], [False] * 7
        dg = torch.randn(TB, G * H)
        oh, oi = torch.empty(G * H, H), torch.empty(G * H, D)

        def mm():
            torch.mm(dg.t(), hs_t, out=oh)
            torch.mm(dg.t(), xt, out=oi)

    hs_t = hs[:T].reshape(TB, H)
    wt, s = wi.t().contiguous(), torch.empty(TB, G * H)
    with torch.no_grad():
        t_f, t_p = med(fwd), med(lambda: own(xt, wt, s))
        t_0, t_w, t_mm = med(bwd(n_0)), med(bwd(n_w)), med(mm)
    f_p, f_r, f_w = 2 * TB * G * H * D, 2 * TB * G * H * H, 2 * TB * G * H * (D + H)
    print(f"{cell} forward               {line(f_p + f_r, t_f)}")
    print(f"{cell}   input projection    {line(f_p, t_p)}")
    print(f"{cell}   steps (GEMM + gates) {line(f_r, t_f - t_p)}")
    print(f"{cell} backward sweep (dh)   {line(f_r, t_0)}")
    print(f"{cell} weight gradients      {line(f_w, t_w - t_0)}")
    print(f"{cell}   same GEMMs, torch.mm {line(f_w, t_mm)}")
    print(f"{cell} training step         {line(f_p + 2 * f_r + f_w, t_f + t_w)}")


if __name__ == "__main__":
    main()
