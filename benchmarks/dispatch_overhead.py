"""Per-call cost of the kernels' entry points and the training speed-ups, for one source tree,
or two trees A/B, interleaved.

One tree: with that tree's src first on PYTHONPATH, prints one JSON line of medians (CPU time
of this process, microseconds). Two trees: `--vs OTHER_SRC` runs this tree's src (B) and
OTHER_SRC (A) in alternating subprocesses, `--rounds` times each, and prints medians, B/A and
each tree's speed-up over torch.nn. Used for benchmarks/README.md "Kernels as PyTorch
operators" and "Per-call overhead of the sequence kernels".

    PYTHONPATH=src python benchmarks/dispatch_overhead.py --threads 1
    python benchmarks/dispatch_overhead.py --vs /work/main/src --rounds 4
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
CELLS = ("RNN", "GRU", "LSTM")


def _median_us(fn, n, repeat=5):
    fn()
    times = []
    for _ in range(repeat):
        t = time.process_time()
        for _ in range(n):
            fn()
        times.append((time.process_time() - t) / n * 1e6)
    return sorted(times)[len(times) // 2]


def measure(threads: int) -> dict:
    import torch

    import rnnkit
    from rnnkit import kernels

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    res = {}
    with torch.no_grad():
        cell = torch.nn.GRUCell(64, 64)
        x, h = torch.randn(1, 64), torch.zeros(1, 64)
        args = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        res["gru_step_us_H64"] = _median_us(lambda: kernels.gru_step(x, h, *args), 2000)
        res["torch_grucell_us_H64"] = _median_us(lambda: cell(x, h), 2000)
        s = rnnkit.GRU(64, 64).eval().streamer()
        res["streamer_us_H64"] = _median_us(lambda: s.step(x), 4000)
        xs = torch.randn(1, 1, 8)
        small = [torch.randn(24, 8), torch.randn(24, 8), None, None]
        res["gru_sequence_fwd_us_B1T1H8"] = _median_us(
            lambda: kernels.gru_sequence(xs, None, *small), 2000
        )

    def train_step(m, x):
        for p in m.parameters():
            p.grad = None
        m(x)[0].sum().backward()

    xs = torch.randn(1, 1, 8)  # the per-call cost of a whole training step
    for name in CELLS:
        m = getattr(rnnkit, name)(8, 8, impl="fused")
        res[f"train_{name}_B1T1H8_fused_us"] = _median_us(partial(train_step, m, xs), 300)
    for H, n in ((64, 10), (256, 2)):
        x = torch.randn(32, 100, H)
        for name in CELLS:
            ours = getattr(rnnkit, name)(H, H, impl="fused")
            ref = getattr(torch.nn, name)(H, H, batch_first=True)
            for who, m in (("fused", ours), ("torch", ref)):
                res[f"train_{name}_H{H}_{who}_us"] = _median_us(partial(train_step, m, x), n)
    res["kernels"] = kernels.available().reason
    return res


def compare(other: Path, rounds: int, threads: int) -> None:
    trees = {"A": other, "B": SRC}
    runs = {k: [] for k in trees}
    for r in range(rounds):
        for k in ("A", "B") if r % 2 == 0 else ("B", "A"):
            env = dict(os.environ, PYTHONPATH=str(trees[k]), OMP_NUM_THREADS=str(threads))
            cmd = [sys.executable, __file__, "--threads", str(threads)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            runs[k].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"A = {other}, B = {SRC}; {rounds} interleaved runs each, {threads} thread(s), CPU us")
    print(f"{'metric':34s} {'A':>10s} {'B':>10s} {'B/A':>6s}")
    for key, value in runs["A"][0].items():
        if isinstance(value, str):
            continue
        a = statistics.median(d[key] for d in runs["A"])
        b = statistics.median(d[key] for d in runs["B"])
        print(f"{key:34s} {a:10.1f} {b:10.1f} {b / a:6.3f}")
    for H in (64, 256):
        for name in CELLS:
            line = []
            for k in ("A", "B"):
                r = [d[f"train_{name}_H{H}_torch_us"] / d[f"train_{name}_H{H}_fused_us"]
                     for d in runs[k]]  # fmt: skip
                line.append(f"{k} {statistics.median(r):.2f}x {[round(v, 2) for v in r]}")
            print(f"training vs torch.nn {name} (32,100,{H}): " + "; ".join(line))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vs", type=Path, help="the other tree's src directory (A)")
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    if args.vs is not None:
        compare(args.vs, args.rounds, args.threads)
    else:
        print(json.dumps(measure(args.threads)))


if __name__ == "__main__":
    main()
