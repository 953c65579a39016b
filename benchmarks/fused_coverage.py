"""The configurations the fused kernels do not run (issue 11 point 6), timed against the plain
fused LSTM at one size: which path `impl="auto"` takes for each, and what that costs.

A training step (forward + backward of out.sum()) and an inference call (no_grad) at
(B, T, H) = (32, 100, 64), D = H; the layers take turns (interleaved) and each figure is a
median in ms. The ratio is the configuration's time over the plain fused LSTM's.

    PYTHONPATH=src python benchmarks/fused_coverage.py --threads 1 [--reps 7] [--clock cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import rnnkit

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def layers(H: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "LSTM (plain)": rnnkit.LSTM(H, H),
        "LSTM peepholes": rnnkit.LSTM(H, H, peepholes=True),
        "LSTM layer norm": rnnkit.LSTM(H, H, layer_norm=True),
        "LSTM projection (H/2)": rnnkit.LSTM(H, H, proj_size=H // 2),
        "Jordan (output H)": rnnkit.Recurrent(rnnkit.JordanCell(H, H, output_size=H)),
        "LSTM recurrent dropout 0.1": rnnkit.LSTM(H, H, recurrent_dropout=0.1),
        "GRU recurrent dropout 0.1": rnnkit.GRU(H, H, recurrent_dropout=0.1),
        "GRU (plain)": rnnkit.GRU(H, H),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=3, default=[32, 100, 64], metavar=("B", "T", "H"))
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]
    B, T, H = args.size
    x = torch.randn(B, T, H)
    mods = layers(H)

    def train(m):
        m.train()
        m(x)[0].sum().backward()

    def infer(m):
        m.eval()
        with torch.no_grad():
            m(x)

    print(f"(B, T, H) = ({B}, {T}, {H}), {args.threads} thread(s), clock {args.clock}, "
          f"median of {args.reps}, ms")  # fmt: skip
    print("| configuration | training impl | training ms | × plain fused LSTM "
          "| inference impl | inference ms | × plain fused LSTM |")
    print("|---|---|---|---|---|---|---|")
    res: dict[str, dict[str, tuple[str, float]]] = {k: {} for k in mods}
    for mode, job in (("training", train), ("inference", infer)):
        times: dict[str, list[float]] = {k: [] for k in mods}
        for m in mods.values():
            job(m)  # warm-up (kernels loaded, allocator warm)
        for _ in range(args.reps):
            for k, m in mods.items():
                t0 = clock()
                job(m)
                times[k].append(clock() - t0)
        for k, m in mods.items():
            job(m)
            res[k][mode] = (m.impl_used, statistics.median(times[k]) * 1e3)
    base = res["LSTM (plain)"]
    for k, r in res.items():
        (ti, tm), (ii, im) = r["training"], r["inference"]
        print(f"| {k} | {ti} | {tm:.1f} | {tm / base['training'][1]:.2f} "
              f"| {ii} | {im:.1f} | {im / base['inference'][1]:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
