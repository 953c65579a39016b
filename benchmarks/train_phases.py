"""Elman, GRU and LSTM training phases at one size under each own-GEMM routing, interleaved.

For each cell (torch.ops.rnnkit.*_fwd / *_bwd called directly, D = H, x needing no gradient as
in `rnnkit bench`, GRU reset_after=True): the forward; the backward sweep alone (no gradient
but dh0 asked for); the weight gradients (dW_ih, dW_hh: the backward with them minus the sweep)
and the bias gradients (the backward with dW and db minus the one with dW). Each phase is timed
under every routing given (gemm_route bits, gemm.h RK_ROUTE_*: 0 is session 11's rule less the
one-row products; 2 the h12-int rule; 1 the weight gradients in the own GEMM too; "mkl" the
own GEMM off, every product in MKL / the BLAS, as on GenuineIntel by default), the routings
taking turns within every repetition, medians printed with GFLOP/s (GEMM work only). A numeric
routing turns the own GEMM on for its turn (gemm_configure(1)) where the CPU can run it (AVX-512F),
also where it is off by default (Intel). Clock: process CPU time with one thread, wall clock
otherwise.

    PYTHONPATH=src python benchmarks/train_phases.py [--size 64x100x512] [--threads 2]
        [--reps 5] [--routes 2,1] [--cells elman,gru,lstm]
    PYTHONPATH=src python benchmarks/train_phases.py --routes mkl,1   # on an Intel CPU
"""

import argparse
import os
import time

import torch

import rnnkit.kernels as kernels
from rnnkit.kernels.sequence import lib


def cell_calls(cell, B, T, H):
    """(G, forward, backward(need dW, need db)) for one cell at (B, T, H), D = H."""
    ops, D = torch.ops.rnnkit, H
    G = {"elman": 1, "gru": 3, "lstm": 4}[cell]
    torch.manual_seed(0)
    x, h0, dout = torch.randn(B, T, D), torch.zeros(B, H), torch.ones(B, T, H)
    wi, wh = torch.randn(G * H, D) * 0.04, torch.randn(G * H, H) * 0.04
    bi, bh = torch.randn(G * H) * 0.1, torch.randn(G * H) * 0.1
    if cell == "elman":
        fwd = lambda: ops.elman_fwd(x, h0, wi, wh, bi, bh, 0, None)  # noqa: E731
        _, _, P, hN = fwd()

        def bwd(w, b):
            need = [False, True, w, w, b, b]
            return lambda: ops.elman_bwd(x, wi, wh, None, P, hN, dout, None, 0, need)
    elif cell == "gru":
        fwd = lambda: ops.gru_fwd(x, h0, wi, wh, bi, bh, True, None)  # noqa: E731
        _, _, hs, gates, ext = fwd()

        def bwd(w, b):
            need = [False, True, w, w, b, b]
            return lambda: ops.gru_bwd(x, wi, wh, None, hs, gates, ext, dout, None, True, need)
    else:
        c0 = torch.zeros(B, H)
        fwd = lambda: ops.lstm_fwd(x, h0, c0, wi, wh, bi, bh, None)  # noqa: E731
        _, _, _, hs, cs, gates = fwd()

        def bwd(w, b):
            need = [False, True, False, w, w, b, b]
            return lambda: ops.lstm_bwd(x, wi, wh, None, hs, cs, gates, dout, None, None, need)
    return G, fwd, bwd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="64x100x512")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--routes", default="2,1")
    ap.add_argument("--cells", default="elman,gru,lstm")
    args = ap.parse_args()
    if not kernels.available():
        raise SystemExit(f"native kernels unavailable: {kernels.available().reason}")
    module = lib()
    B, T, H = (int(v) for v in args.size.split("x"))
    routes = [r if r == "mkl" else int(r) for r in args.routes.split(",")]
    old_on, reason = module.gemm_configure(-1)
    if any(r != "mkl" for r in routes):
        module.gemm_configure(1)
        if not module.gemm_configure(old_on)[0]:
            raise SystemExit(f"the own GEMM cannot run here ({reason}): use --routes mkl")
    torch.set_num_threads(args.threads)
    print(f"load {os.getloadavg()[0]:.2f}, threads {args.threads}, (B,T,H) = ({B},{T},{H}), "
          f"routes {routes}; default {reason}")
    old = module.gemm_route(-1)
    try:
        for cell in args.cells.split(","):
            run_cell(module, cell, B, T, H, routes, args.reps)
    finally:
        module.gemm_route(old)
        module.gemm_configure(old_on)


def set_route(module, r) -> None:
    """One routing's turn: "mkl" turns the own GEMM off, a number turns it on with those bits."""
    module.gemm_configure(0 if r == "mkl" else 1)
    if r != "mkl":
        module.gemm_route(r)


def run_cell(module, cell, B, T, H, routes, reps) -> None:
    """Time and print one cell's phases under each routing (see the module docstring)."""
    G, fwd, bwd = cell_calls(cell, B, T, H)
    calls = {"forward": fwd, "sweep": bwd(False, False), "dW": bwd(True, False),
             "dW+db": bwd(True, True)}
    times = {(r, k): [] for r in routes for k in calls}
    # process CPU time with one thread (steady on a shared machine), wall clock otherwise
    clock = time.process_time if torch.get_num_threads() == 1 else time.perf_counter
    with torch.no_grad():
        for rep in range(reps + 1):
            for r in routes:
                set_route(module, r)
                for k, f in calls.items():
                    t0 = clock()
                    f()
                    if rep:
                        times[r, k].append(clock() - t0)
    TB = B * T
    f_p, f_r = 2 * TB * G * H * H, 2 * TB * G * H * H
    f_w = f_p + f_r
    for r in routes:
        m = {k: sorted(v)[len(v) // 2] for (q, k), v in times.items() if q == r}
        step = m["forward"] + m["dW+db"]
        print(f"{cell} route {r}: forward {m['forward'] * 1e3:6.1f} ms "
              f"({(f_p + f_r) / m['forward'] / 1e9:5.1f} GF/s), sweep {m['sweep'] * 1e3:6.1f} ms "
              f"({f_r / m['sweep'] / 1e9:5.1f}), dW {(m['dW'] - m['sweep']) * 1e3:6.1f} ms "
              f"({f_w / max(m['dW'] - m['sweep'], 1e-9) / 1e9:5.1f}), "
              f"db {(m['dW+db'] - m['dW']) * 1e3:5.1f} ms, step {step * 1e3:6.1f} ms "
              f"({(f_p + 2 * f_r + f_w) / step / 1e9:5.1f})")


if __name__ == "__main__":
    main()
