"""Long-range benchmarks: the adding problem (batch BPTT) and the copy-task curriculum (online).

    .venv/bin/python benchmarks/long_range.py            # full budget, ≈ 9 min on 2 cores
    .venv/bin/python benchmarks/long_range.py --quick    # smoke run, ≈ 1 min

Part A — adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015) at T = 100 and 200
for Elman-tanh, IRNN (ReLU, identity init), GRU and LSTM, H = 64: test MSE after a fixed
budget of updates, against the 0.167 of always predicting 1.

Part B — copy-task curriculum learned online (Mujika et al. 2018; Menick et al. 2021): one
never-reset stream per batch row, the weights updated at every step, L grows when the loss
falls below 0.15 bits. A GRU (H = 32) trained by exact RTRL, SnAp-1, UORO and truncated BPTT
whose window is chosen so its saved activations take about as much memory as SnAp-1's
influence matrix. Each method
gets the same wall-clock budget; the curriculum length L reached is also read at the same
number of steps for all.

Threads are set to 1: the models are small and the machine is shared.
Writes benchmarks/results/long_range.json and long_range.md.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

from rnnkit.algorithms.online import OnlineLearner, make_algorithm
from rnnkit.cells import ElmanCell, GRUCell, LSTMCell
from rnnkit.data.synthetic import ADDING_BASELINE_MSE, CopyCurriculum, adding_problem
from rnnkit.layers import Recurrent

RESULTS = Path(__file__).resolve().parent / "results"

FULL = dict(updates=1200, batch=32, hidden=64, lr=1e-2, test=1000, copy_seconds=60.0)
QUICK = dict(updates=40, batch=16, hidden=32, lr=1e-3, test=200, copy_seconds=6.0)
COPY = dict(cell="GRU", hidden=32, batch=16, lr=3e-3, clip=1.0)

MODELS = {
    "Elman-tanh": lambda H: ElmanCell(2, H, activation="tanh"),
    "IRNN": lambda H: ElmanCell(2, H, activation="relu", init="identity"),
    "GRU": lambda H: GRUCell(2, H),
    "LSTM": lambda H: LSTMCell(2, H),
}


# ---- part A: the adding problem -----------------------------------------------------------


def adding_run(name: str, T: int, cfg: dict, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    H = cfg["hidden"]
    layer, head = Recurrent(MODELS[name](H)), nn.Linear(H, 1)
    params = list(layer.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=cfg["lr"])
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    train_curve = []
    for step in range(cfg["updates"]):
        x, y = adding_problem(cfg["batch"], T, gen)
        out, _ = layer(x)
        loss = ((head(out[:, -1]) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)  # IRNN explodes without it
        opt.step()
        if (step + 1) % max(1, cfg["updates"] // 10) == 0:
            train_curve.append(round(float(loss), 4))
    seconds = time.perf_counter() - start
    x, y = adding_problem(cfg["test"], T, torch.Generator().manual_seed(10_000 + seed))
    with torch.no_grad():
        out, _ = layer(x)
        mse = float(((head(out[:, -1]) - y) ** 2).mean())
    return {
        "model": name,
        "T": T,
        "test_mse": mse,
        "vs_baseline": mse / ADDING_BASELINE_MSE,
        "solved": mse < 0.1 * ADDING_BASELINE_MSE,
        "train_mse_curve": train_curve,
        "seconds": seconds,
        "impl": layer.impl_used,
    }


# ---- part B: the copy-task curriculum, online -------------------------------------------


def saved_bytes_per_step(cell: nn.Module, batch: int) -> float:
    """Bytes autograd keeps per step of the cell for backward (activations, not parameters)."""
    params = {p.data_ptr() for p in cell.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        if t.data_ptr() not in params:
            seen[t.data_ptr()] = t.numel() * t.element_size()
        return t

    h = cell.init_state(batch)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        for _ in range(8):
            _, h = cell(torch.randn(batch, cell.input_size), h)
    return sum(seen.values()) / 8


def copy_run(method: str, seconds: float, k: int, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    H, B = COPY["hidden"], COPY["batch"]
    cell = GRUCell(3, H)
    extra = {"generator": torch.Generator().manual_seed(seed)} if method == "uoro" else {}
    alg = make_algorithm(method, cell, **extra)
    ce = nn.CrossEntropyLoss(reduction="none", ignore_index=-1)
    learner = OnlineLearner(
        alg,
        nn.Linear(H, 2),
        lambda p, y: ce(p, y) / math.log(2),  # bits
        lr=COPY["lr"],
        update_every=k if method == "tbptt" else 1,
        clip=COPY["clip"],
    )
    learner.reset(B)
    cur = CopyCurriculum(start=1, threshold=0.15)
    gen = torch.Generator().manual_seed(seed)
    start, steps, trace = time.perf_counter(), 0, []
    carried = 0
    while time.perf_counter() - start < seconds:
        x, y = cur.episode(B, gen)
        total, n = 0.0, 0
        for t in range(x.shape[1]):
            target = y[:, t] if bool((y[:, t] >= 0).any()) else None
            value = learner.step(x[:, t], target)
            if value is not None:
                total, n = total + value, n + 1
            steps += 1
        carried = max(carried, alg.carried_bytes())
        if cur.observe(total / n):
            trace.append((steps, round(time.perf_counter() - start, 2), cur.length))
    elapsed = time.perf_counter() - start
    return {
        "method": method,
        "L_reached": cur.length,
        "steps": steps,
        "seconds": elapsed,
        "ms_per_step": 1e3 * elapsed / steps,
        "carried_bytes_per_stream": carried / B,
        "trace": trace,  # (step, seconds, new L)
    }


def length_at(trace: list, steps: int) -> int:
    return max([1] + [L for s, _, L in trace if s <= steps])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tiny budget (smoke test)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    torch.set_num_threads(1)
    t0 = time.perf_counter()

    adding = []
    for T in (100, 200):
        for name in MODELS:
            r = adding_run(name, T, cfg)
            adding.append(r)
            print(f"adding T={T} {name:10s} mse={r['test_mse']:.4f} ({r['seconds']:.0f}s)")

    # TBPTT's window: as many steps as fit in SnAp-1's influence memory.
    H, B = COPY["hidden"], COPY["batch"]
    cell = GRUCell(3, H)
    snap = make_algorithm("snap1", cell)
    snap.reset(B)
    snap_bytes = snap.influence.numel() * snap.influence.element_size() / B
    per_step = saved_bytes_per_step(cell, B) / B
    k = max(2, round(snap_bytes / per_step))
    copy = []
    for method in ("rtrl", "snap1", "uoro", "tbptt"):
        r = copy_run(method, cfg["copy_seconds"], k)
        r["tbptt_window"] = k if method == "tbptt" else None
        copy.append(r)
        print(
            f"copy {method:6s} L={r['L_reached']} steps={r['steps']} "
            f"({r['ms_per_step']:.2f} ms/step)"
        )
    common = min(r["steps"] for r in copy)
    for r in copy:
        r["L_at_common_steps"] = length_at(r["trace"], common)

    meta = {
        "command": "python benchmarks/long_range.py" + (" --quick" if args.quick else ""),
        "budget": cfg,
        "copy": {
            **COPY,
            "tbptt_window": k,
            "snap1_influence_bytes_per_stream": snap_bytes,
            "tbptt_saved_bytes_per_step_per_stream": per_step,
            "common_steps": common,
        },
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "total_seconds": time.perf_counter() - t0,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "adding": adding, "copy_curriculum": copy}
    (args.out / "long_range.json").write_text(json.dumps(data, indent=2) + "\n")
    (args.out / "long_range.md").write_text(markdown(data) + "\n")
    print(markdown(data))
    return 0


def markdown(data: dict) -> str:
    meta, cfg = data["meta"], data["meta"]["budget"]
    lines = [
        "## Adding problem",
        "",
        f"`{meta['command']}` — H = {cfg['hidden']}, Adam lr {cfg['lr']}, batch {cfg['batch']}, "
        f"{cfg['updates']} updates (clip 1.0), test MSE on {cfg['test']} fresh sequences. "
        f"Baseline (always predict 1): {ADDING_BASELINE_MSE:.3f}.",
        "",
        "| model | T | test MSE | ÷ baseline | solved (< 0.1 × baseline) | train s |",
        "|---|---:|---:|---:|:---:|---:|",
    ]
    for r in data["adding"]:
        if not math.isfinite(r["test_mse"]):
            lines.append(
                f"| {r['model']} | {r['T']} | diverged (NaN) | – | no | {r['seconds']:.0f} |"
            )
            continue
        lines.append(
            f"| {r['model']} | {r['T']} | {r['test_mse']:.4f} | {r['vs_baseline']:.2f} | "
            f"{'yes' if r['solved'] else 'no'} | {r['seconds']:.0f} |"
        )
    c = meta["copy"]
    lines += [
        "",
        "## Copy-task curriculum, online",
        "",
        f"{c['cell']} H = {c['hidden']}, {c['batch']} streams, Adam lr {c['lr']}, update every "
        f"step (TBPTT: every {c['tbptt_window']} steps, backprop through those steps), "
        f"{cfg['copy_seconds']:.0f} s of wall clock per method; L starts at 1 and grows when "
        "the mean loss of 20 episodes is < 0.15 bits. TBPTT's window is set so its saved "
        f"activations ({c['tbptt_saved_bytes_per_step_per_stream']:.0f} B/step/stream) match "
        f"SnAp-1's influence ({c['snap1_influence_bytes_per_stream']:.0f} B/stream).",
        "",
        f"| method | L reached ({cfg['copy_seconds']:.0f} s) | L at {c['common_steps']} steps | "
        "steps | ms/step | memory carried per stream |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in data["copy_curriculum"]:
        mem = r["carried_bytes_per_stream"]
        if r["method"] == "tbptt":
            mem_s = (
                f"{c['tbptt_window'] * c['tbptt_saved_bytes_per_step_per_stream']:.0f} B (window)"
            )
        else:
            mem_s = f"{mem:.0f} B"
        lines.append(
            f"| {r['method']} | {r['L_reached']} | {r['L_at_common_steps']} | {r['steps']} | "
            f"{r['ms_per_step']:.2f} | {mem_s} |"
        )
    lines += [
        "",
        f"Total time: {meta['total_seconds']:.0f} s (torch {meta['torch']}, "
        f"{meta['threads']} thread).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
