"""Memory per step of online gradient algorithms does not grow with the sequence length.

    .venv/bin/python benchmarks/rtrl_memory.py            # ≈ 1 min on 2 cores
    .venv/bin/python benchmarks/rtrl_memory.py --quick

An Elman-tanh cell (D = 3, H = 32, B = 4 streams) reads a stream of length T ∈ {100, 1000,
5000} and gets a loss and a gradient at every step. For each algorithm we measure

- carried: bytes the algorithm keeps from one step to the next (state + influence / estimate),
- graph: the most bytes autograd holds for backward at any step (saved activations, not
  parameters), counted with torch.autograd.graph.saved_tensors_hooks,
- ms/step.

UORO, SnAp-1 and exact RTRL are online: both numbers are flat in T (RTRL's is flat but
S times larger). Truncated BPTT's graph is bounded by its window. Full BPTT over the whole
sequence is the contrast: its graph grows linearly with T.
Writes benchmarks/results/rtrl_memory.json and rtrl_memory.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from rnnkit.algorithms.online import make_algorithm
from rnnkit.cells import ElmanCell

RESULTS = Path(__file__).resolve().parent / "results"
D, H, B = 3, 32, 4
WINDOW = 32


class GraphMeter:
    """Counts bytes of tensors autograd saves for backward (parameters excluded)."""

    def __init__(self, params):
        self.params = {p.data_ptr() for p in params}
        self.live: dict[int, int] = {}
        self.peak = 0

    def pack(self, t):
        if t.data_ptr() not in self.params:
            self.live[t.data_ptr()] = t.numel() * t.element_size()
            self.peak = max(self.peak, sum(self.live.values()))
        return t

    def release(self):
        """A backward pass ran: what it held is freed."""
        self.live.clear()


def online_run(method: str, T: int) -> dict:
    torch.manual_seed(0)
    cell = ElmanCell(D, H)
    alg = make_algorithm(method, cell)
    alg.reset(B)
    meter = GraphMeter(cell.parameters())
    xs, cs = torch.randn(T, B, D), torch.randn(T, B, H)
    carried = 0
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(meter.pack, lambda t: t):
        for t in range(T):
            y = alg.step(xs[t])
            alg.backward((y * cs[t]).sum())
            if method != "tbptt" or (t + 1) % WINDOW == 0:
                alg.flush()
                meter.release()
            carried = max(carried, alg.carried_bytes())
    seconds = time.perf_counter() - start
    return {
        "method": method,
        "T": T,
        "carried_bytes": carried,
        "graph_peak_bytes": meter.peak,
        "ms_per_step": 1e3 * seconds / T,
    }


def bptt_run(T: int) -> dict:
    torch.manual_seed(0)
    cell = ElmanCell(D, H)
    meter = GraphMeter(cell.parameters())
    xs, cs = torch.randn(T, B, D), torch.randn(T, B, H)
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(meter.pack, lambda t: t):
        h, loss = cell.init_state(B), 0.0
        for t in range(T):
            y, h = cell(xs[t], h)
            loss = loss + (y * cs[t]).sum()
    loss.backward()
    seconds = time.perf_counter() - start
    return {
        "method": "bptt (whole sequence)",
        "T": T,
        "carried_bytes": h.numel() * h.element_size(),
        "graph_peak_bytes": meter.peak,
        "ms_per_step": 1e3 * seconds / T,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter streams (smoke test)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    lengths = (50, 200) if args.quick else (100, 1000, 5000)
    t0 = time.perf_counter()
    rows = []
    for T in lengths:
        for method in ("uoro", "snap1", "rtrl", "tbptt"):
            if method == "rtrl" and T > 1000:
                continue  # flat by T = 1000 already; 5000 steps of O(H^4) is not worth the time
            rows.append(online_run(method, T))
            print(rows[-1])
        rows.append(bptt_run(T))
        print(rows[-1])
    meta = {
        "command": "python benchmarks/rtrl_memory.py" + (" --quick" if args.quick else ""),
        "cell": f"ElmanCell(D={D}, H={H}, tanh), B={B}, tbptt window {WINDOW}",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "total_seconds": time.perf_counter() - t0,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "rows": rows}
    (args.out / "rtrl_memory.json").write_text(json.dumps(data, indent=2) + "\n")
    (args.out / "rtrl_memory.md").write_text(markdown(data) + "\n")
    print(markdown(data))
    return 0


def markdown(data: dict) -> str:
    meta = data["meta"]
    lines = [
        "## Memory per step of online algorithms",
        "",
        f"`{meta['command']}` — {meta['cell']}; a loss and a gradient at every step.",
        "",
        "| method | T | carried between steps (B) | autograd graph peak (B) | ms/step |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['method']} | {r['T']} | {r['carried_bytes']:,} | "
            f"{r['graph_peak_bytes']:,} | {r['ms_per_step']:.2f} |"
        )
    lines += ["", f"Total time: {meta['total_seconds']:.0f} s (torch {meta['torch']}, 1 thread)."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
