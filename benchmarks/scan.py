"""Recurrences that train in parallel over time: minGRU by scan against rnnkit's fused GRU.

    .venv/bin/python benchmarks/scan.py                 # both parts, ≈ 12 min on 2 shared cores
    .venv/bin/python benchmarks/scan.py --quick         # smoke run, ≈ 1 min
    .venv/bin/python benchmarks/scan.py --part speed    # or --part adding

Part A — speed: one training step (forward, backward of a loss on every output) of one layer,
B = 32, D = H = 256, float32, T ∈ {256, 1024, 4096, 16384}: minGRU by its log-space parallel
scan (impl "scan") against the same cell's step loop (impl "reference") and rnnkit's fused
GRU kernels (impl "fused"), the same hidden size; a size that took over 10 s runs once.
Memory: the bytes autograd saves for backward in one step (activations, not parameters),
counted by a saved-tensors hook, and the peak resident memory (getrusage's ru_maxrss) of a
fresh process per (model, T), with its growth over the step. A size whose estimated memory
(the last size's growth, scaled by T) exceeds half the machine's available memory is skipped,
and said so.

Part B — quality at equal wall-clock time: the adding problem (Le et al. 2015) at T = 1000,
two layers of H = 64, Adam (lr 3e-3, clip 1), batch 32, each model trained for the same
number of seconds; test MSE on 500 sequences against the 0.167 of always predicting 1.

Threads are set to 1 (the machine is shared). Writes benchmarks/results/scan.json and scan.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from rnnkit import RNNConfig
from rnnkit.data.synthetic import ADDING_BASELINE_MSE, adding_problem
from rnnkit.layers import Recurrent

RESULTS = Path(__file__).resolve().parent / "results"

SPEED = dict(batch=32, hidden=256, lengths=(256, 1024, 4096, 16384), repeats=2)
SPEED_QUICK = dict(batch=8, hidden=64, lengths=(256, 1024), repeats=1)
ADDING = dict(T=1000, hidden=64, layers=2, batch=32, lr=3e-3, seconds=90.0, test=500)
ADDING_QUICK = dict(T=200, hidden=32, layers=2, batch=16, lr=3e-3, seconds=6.0, test=100)
LONG_LRU = {"r_min": 0.9, "r_max": 0.999, "max_phase": math.pi / 10}  # the paper's long-range init
SPEED_MODELS = (("minGRU (scan)", "mingru", "scan"), ("minGRU (step loop)", "mingru", "reference"),
                ("GRU (fused)", "gru", "fused"))  # fmt: skip
ADDING_MODELS = (("minGRU", "mingru", {}), ("minLSTM", "minlstm", {}), ("LRU", "lru", LONG_LRU),
                 ("GRU", "gru", {}), ("LSTM", "lstm", {}))  # fmt: skip


# ---- part A: speed and memory -------------------------------------------------------------


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (0 where there is none: then nothing is skipped)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def train_step(layer: Recurrent, x: torch.Tensor) -> int:
    """One forward and backward; returns the bytes autograd saved for backward."""
    params = {p.untyped_storage().data_ptr() for p in layer.parameters()}
    seen: dict[int, int] = {}  # by storage: views of one tensor count once

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, _ = layer(x)
        loss = out.square().mean()
    loss.backward()
    return sum(seen.values())


def one_size(cell: str, impl: str, B: int, H: int, T: int, repeats: int) -> dict:
    """Time one model at one size, in this process (a fresh one per size: see `speed`)."""
    torch.manual_seed(0)
    layer = Recurrent.from_config(RNNConfig(cell, H, impl=impl), H)
    x = torch.randn(B, T, H)
    before = resident_bytes()
    times, nbytes = [], 0
    for _ in range(repeats):
        if times and times[-1] > 10:
            break
        layer.zero_grad()
        start = time.perf_counter()
        nbytes = train_step(layer, x)
        times.append(time.perf_counter() - start)
    assert layer.impl_used == impl, (layer.impl_used, impl)
    # ru_maxrss is KiB on Linux: the process's high-water mark, torch and the inputs included
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": min(times), "saved_bytes": nbytes, "impl": layer.impl_used,
            "peak_rss": peak, "step_rss": peak - before}  # fmt: skip


def resident_bytes() -> int:
    """The process's resident memory now (0 where /proc has no statm)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def speed(cfg: dict) -> list[dict]:
    """Each (model, T) in its own process, so that its peak resident memory (getrusage's
    ru_maxrss, which never goes down) is that size's alone."""
    B, H, rows = cfg["batch"], cfg["hidden"], []
    saved: dict[str, tuple[int, int]] = {}  # model -> (T, step's RSS growth) of its last size
    for T in cfg["lengths"]:
        for name, cell, impl in SPEED_MODELS:
            if name in saved:  # a step's memory grows linearly in T
                estimate = saved[name][1] * T / saved[name][0]
                if available_bytes() and estimate > available_bytes() / 2:
                    rows.append({"model": name, "T": T, "skipped": f"needs ≈ {estimate / 2**30:.1f}"
                                 " GiB, more than half the available memory"})  # fmt: skip
                    print(rows[-1], flush=True)
                    continue
            args = [cell, impl, B, H, T, cfg["repeats"]]
            run = subprocess.run([sys.executable, __file__, "--one", *map(str, args)],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            row = json.loads(run.stdout.splitlines()[-1])
            saved[name] = (T, row["step_rss"])
            rows.append({"model": name, "T": T, **row})
            print(rows[-1], flush=True)
    return rows


# ---- part B: the adding problem at equal wall-clock time -----------------------------------


def adding_run(name: str, cell: str, options: dict, cfg: dict, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    H, T = cfg["hidden"], cfg["T"]
    layer = Recurrent.from_config(RNNConfig(cell, H, cfg["layers"], options=options), 2)
    head = nn.Linear(H, 1)
    params = list(layer.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=cfg["lr"])
    gen = torch.Generator().manual_seed(seed)
    x_test, y_test = adding_problem(cfg["test"], T, torch.Generator().manual_seed(10_000 + seed))

    def test_mse() -> float:
        with torch.no_grad():
            return float(((head(layer(x_test)[0][:, -1]) - y_test) ** 2).mean())

    start, steps, curve, clock = time.perf_counter(), 0, [], 0.0
    checkpoints = [cfg["seconds"] * k / 6 for k in range(1, 7)]
    while clock < cfg["seconds"]:
        x, y = adding_problem(cfg["batch"], T, gen)
        loss = ((head(layer(x)[0][:, -1]) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        steps += 1
        clock = time.perf_counter() - start
        if checkpoints and clock >= checkpoints[0]:
            checkpoints.pop(0)
            curve.append([round(clock, 1), steps, round(test_mse(), 4)])
            start = time.perf_counter() - clock  # evaluation is not training time
    mse = test_mse()
    return {"model": name, "T": T, "seconds": cfg["seconds"], "updates": steps,
            "seconds_per_update": cfg["seconds"] / steps, "test_mse": mse,
            "vs_baseline": mse / ADDING_BASELINE_MSE, "curve": curve,
            "impl": layer.impl_used}  # fmt: skip


# ---- the report ------------------------------------------------------------------------------


def markdown(results: dict) -> str:
    lines = [f"Machine: {results['machine']}; torch {results['torch']}, 1 thread.", ""]
    if results.get("speed"):
        cfg = results["speed_config"]
        lines += [f"Training step, B = {cfg['batch']}, D = H = {cfg['hidden']} "
                  "(seconds, min of repeats; MiB saved for backward; peak resident MiB of "
                  "the step's process, and its growth during the step):", "",
                  "| T | " + " | ".join(m for m, _, _ in SPEED_MODELS)
                  + " | scan time / fused GRU time |",
                  "|---" * (len(SPEED_MODELS) + 2) + "|"]  # fmt: skip
        for T in cfg["lengths"]:
            row = {r["model"]: r for r in results["speed"] if r["T"] == T}
            cells = []
            for m, _, _ in SPEED_MODELS:
                r = row.get(m, {})
                cells.append(
                    "skipped"
                    if "skipped" in r or not r
                    else f"{r['seconds']:.3f} s, {r['saved_bytes'] / 2**20:.0f} MiB, "
                    f"peak {r['peak_rss'] / 2**20:.0f} (+{r['step_rss'] / 2**20:.0f})"
                )
            fused, scan = row.get("GRU (fused)", {}), row.get("minGRU (scan)", {})
            ratio = (f"{scan['seconds'] / fused['seconds']:.1f}×"
                     if "seconds" in fused and "seconds" in scan else "—")  # fmt: skip
            lines.append(f"| {T} | " + " | ".join(cells) + f" | {ratio} |")
        lines.append("")
    if results.get("adding"):
        cfg = results["adding_config"]
        lines += [f"Adding problem, T = {cfg['T']}, {cfg['layers']} × H = {cfg['hidden']}, "
                  f"{cfg['seconds']:.0f} s of training each (baseline MSE 0.167):", "",
                  "| model | updates | s / update | test MSE | / baseline "
                  "| curve (s, updates, MSE) |", "|---|---|---|---|---|---|"]  # fmt: skip
        for r in results["adding"]:
            curve = "; ".join(f"{c[0]:.0f}, {c[1]}, {c[2]:.3f}" for c in r["curve"])
            lines.append(f"| {r['model']} | {r['updates']} | {r['seconds_per_update']:.3f} | "
                         f"{r['test_mse']:.4f} | {r['vs_baseline']:.3f} | {curve} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds each")
    parser.add_argument("--part", choices=("speed", "adding", "both"), default="both")
    parser.add_argument("--seconds", type=float, help="training seconds per adding model")
    parser.add_argument(
        "--one", nargs=6, metavar=("CELL", "IMPL", "B", "H", "T", "REPEATS"), help=argparse.SUPPRESS
    )  # one size of part A, run by `speed`
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.one:
        cell, impl, *sizes = args.one
        print(json.dumps(one_size(cell, impl, *map(int, sizes))))
        return
    speed_cfg = SPEED_QUICK if args.quick else SPEED
    adding_cfg = dict(ADDING_QUICK if args.quick else ADDING)
    if args.seconds:
        adding_cfg["seconds"] = args.seconds
    out = RESULTS / ("scan_quick" if args.quick else "scan")
    machine = f"{platform.processor() or platform.machine()}, shared with other jobs"
    results = {"machine": machine, "torch": torch.__version__}
    if out.with_suffix(".json").exists():  # one part rerun keeps the other's results
        results.update(json.loads(out.with_suffix(".json").read_text()))
    if args.part in ("speed", "both"):
        results["speed_config"], results["speed"] = speed_cfg, speed(speed_cfg)
    if args.part in ("adding", "both"):
        results["adding_config"] = adding_cfg
        results["adding"] = []
        for name, cell, options in ADDING_MODELS:
            results["adding"].append(adding_run(name, cell, options, adding_cfg))
            print(results["adding"][-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    out.with_suffix(".md").write_text(markdown(results))
    sys.stdout.write(markdown(results))


if __name__ == "__main__":
    main()
