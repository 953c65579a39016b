"""Per-call cost of the kernels' entry points and the training speed-ups, for one source tree.

Run it once per tree (e.g. before/after a change) in alternation, with that tree's src first on
PYTHONPATH; each run prints one JSON line of medians. Used for benchmarks/README.md
"Kernels as PyTorch operators".

    PYTHONPATH=src python benchmarks/dispatch_overhead.py
"""

import json
import time

import torch

import rnnkit
from rnnkit import kernels


def _median_us(fn, n, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t) / n * 1e6)
    return sorted(times)[len(times) // 2]


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    res = {}
    with torch.no_grad():
        cell = torch.nn.GRUCell(64, 64)
        x, h = torch.randn(1, 64), torch.zeros(1, 64)
        args = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        kernels.gru_step(x, h, *args)
        res["gru_step_us_H64"] = _median_us(lambda: kernels.gru_step(x, h, *args), 2000)
        res["torch_grucell_us_H64"] = _median_us(lambda: cell(x, h), 2000)
        layer = rnnkit.GRU(64, 64).eval()
        s = layer.streamer()
        res["streamer_us_H64"] = _median_us(lambda: s.step(x), 4000)
        xs = torch.randn(1, 1, 8)
        small = [torch.randn(24, 8), torch.randn(24, 8), None, None]
        res["gru_sequence_fwd_us_B1T1H8"] = _median_us(
            lambda: kernels.gru_sequence(xs, None, *small), 2000
        )
    for H in (64,):
        x = torch.randn(32, 100, H)
        for name in ("RNN", "GRU", "LSTM"):
            ours = getattr(rnnkit, name)(H, H, impl="fused")
            ref = getattr(torch.nn, name)(H, H, batch_first=True)

            def step(m, x=x):
                out = m(x)[0]
                out.sum().backward()

            res[f"train_{name}_H{H}_fused_ms"] = _median_us(lambda m=ours: step(m), 5) / 1e3
            res[f"train_{name}_H{H}_torch_ms"] = _median_us(lambda m=ref: step(m), 5) / 1e3
    print(json.dumps({"kernels": kernels.available().reason, **res}))


if __name__ == "__main__":
    main()
