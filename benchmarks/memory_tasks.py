"""Long-range memory with each model's published recipe (issue 15, point 5): the adding problem
at T = 200 and 400, and copy memory (Arjovsky et al. 2016) at T = 100.

    .venv/bin/python benchmarks/memory_tasks.py             # the recorded budget
    .venv/bin/python benchmarks/memory_tasks.py --quick     # smoke run, ≈ 1 min
    .venv/bin/python benchmarks/memory_tasks.py --only adding:LSTM-chrono:200

Models (H = 64, one layer, batch 32, gradient-norm clip 1, one thread):
- LSTM-chrono: chrono initialisation (Tallec & Ollivier 2018) with T_max = the sequence length,
  Adam 1e-3.
- IRNN: ReLU, identity recurrent matrix, zero biases (Le et al. 2015), Adam 1e-4 (their
  "small learning rate"), clip 1.
- GRU: PyTorch's initialisation, Adam 1e-3.

A fixed budget per run: at most `updates` Adam updates; every 100 updates the MSE (or
cross-entropy) on 256 held-out sequences is read, and a run stops early once it is below a
twentieth of the baseline (twice as strict as the target). The figure is then measured on
1,000 fresh test sequences. Baselines: 0.167 for adding (always predict 1); 10·log 8 / (T+20)
nats per step for copy memory (blanks, then a uniform guess over the 8 symbols).
Each finished run is appended to benchmarks/results/memory_tasks.jsonl (so `--only` runs may go
in parallel); memory_tasks.{json,md} then hold the latest run of each.
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

from rnnkit.cells import ElmanCell, GRUCell, LSTMCell
from rnnkit.data.synthetic import (
    ADDING_BASELINE_MSE,
    COPY_DELIMITER,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)
from rnnkit.layers import Recurrent

RESULTS = Path(__file__).resolve().parent / "results"
FULL = dict(updates=3000, batch=32, hidden=64, check=256, test=1000)
QUICK = dict(updates=100, batch=16, hidden=32, check=64, test=200)
# name -> (cell factory (input size, hidden, T_max), Adam learning rate)
MODELS = {
    "LSTM-chrono": (lambda D, H, T: LSTMCell(D, H, chrono=T), 1e-3),
    "IRNN": (lambda D, H, T: ElmanCell(D, H, activation="relu", init="identity"), 1e-4),
    "GRU": (lambda D, H, T: GRUCell(D, H), 1e-3),
}
RUNS = [("adding", m, T) for T in (200, 400) for m in MODELS] + [
    ("copy", m, 100) for m in MODELS
]


class Task:
    """One task at one length: batches, the loss and the baseline."""

    def __init__(self, kind: str, T: int):
        self.kind, self.T = kind, T
        self.inputs = 2 if kind == "adding" else COPY_DELIMITER + 1
        self.outputs = 1 if kind == "adding" else COPY_DELIMITER + 1
        self.baseline = ADDING_BASELINE_MSE if kind == "adding" else copy_memory_baseline(T)
        self.length = T if kind == "adding" else T + 20  # what the state must span

    def batch(self, B: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "adding":
            return adding_problem(B, self.T, gen)
        x, y = copy_memory(B, self.T, generator=gen)
        return nn.functional.one_hot(x, self.inputs).float(), y

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """out: (B, T, O) head outputs; adding reads the last step only."""
        if self.kind == "adding":
            return ((out[:, -1] - y) ** 2).mean()
        return nn.functional.cross_entropy(out.flatten(0, 1), y.flatten())


def run(kind: str, name: str, T: int, cfg: dict, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    task = Task(kind, T)
    factory, lr = MODELS[name]
    H = cfg["hidden"]
    layer, head = Recurrent(factory(task.inputs, H, task.length)), nn.Linear(H, task.outputs)
    params = list(layer.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    check = task.batch(cfg["check"], torch.Generator().manual_seed(20_000 + seed))
    test = task.batch(cfg["test"], torch.Generator().manual_seed(10_000 + seed))

    def measure(x, y) -> float:
        with torch.no_grad():
            return float(task.loss(head(layer(x)[0]), y))

    start, curve, updates = time.perf_counter(), [], 0
    while updates < cfg["updates"]:
        x, y = task.batch(cfg["batch"], gen)
        loss = task.loss(head(layer(x)[0]), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        updates += 1
        if updates % 100 == 0:
            value = measure(*check)
            curve.append((updates, round(value, 5)))
            if not math.isfinite(value) or value < task.baseline / 20:
                break
    seconds = time.perf_counter() - start
    value = measure(*test)
    return {
        "task": kind, "model": name, "T": T, "lr": lr, "updates": updates,
        "test": value, "baseline": task.baseline, "vs_baseline": value / task.baseline,
        "solved": value < 0.1 * task.baseline, "seconds": seconds, "curve": curve,
        "impl": layer.impl_used,
    }  # fmt: skip


def markdown(data: dict) -> str:
    cfg = data["meta"]["budget"]
    lines = [
        f"`{data['meta']['command']}`: H = {cfg['hidden']}, batch {cfg['batch']}, at most "
        f"{cfg['updates']} updates (stopping early below baseline / 20 on {cfg['check']} "
        f"held-out sequences), test on {cfg['test']} fresh sequences.",
        "",
        "| task | T | model | lr | updates | test | baseline | ÷ baseline | solved (< 0.1×) | s |",
        "|---|---:|---|---:|---:|---:|---:|---:|:---:|---:|",
    ]
    for r in data["runs"]:
        test = f"{r['test']:.4f}" if math.isfinite(r["test"]) else "diverged"
        ratio = f"{r['vs_baseline']:.3f}" if math.isfinite(r["test"]) else "–"
        lines.append(
            f"| {r['task']} | {r['T']} | {r['model']} | {r['lr']:g} | {r['updates']} | {test} | "
            f"{r['baseline']:.4f} | {ratio} | {'yes' if r['solved'] else 'no'} | "
            f"{r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tiny budget (smoke test)")
    ap.add_argument("--only", nargs="*", default=None, help="runs as TASK:MODEL:T")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    torch.set_num_threads(1)
    runs = RUNS
    if args.only:
        runs = [(k, m, int(t)) for k, m, t in (s.split(":") for s in args.only)]
    name = "memory_tasks" + ("_quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    done = args.out / f"{name}.jsonl"  # one line per finished run, so runs may go in parallel
    for kind, model, T in runs:
        r = run(kind, model, T, cfg)
        r["command"] = "python benchmarks/memory_tasks.py" + (" --quick" if args.quick else "")
        with done.open("a") as f:
            f.write(json.dumps(r) + "\n")
        print(f"{kind} T={T} {model}: {r['test']:.4f} ({r['vs_baseline']:.3f} of baseline) "
              f"in {r['updates']} updates, {r['seconds']:.0f} s", flush=True)
    latest = {}
    for line in done.read_text().splitlines():  # the last run of each (task, model, T)
        r = json.loads(line)
        latest[(r["task"], r["model"], r["T"])] = r
    order = {key: i for i, key in enumerate(RUNS)}
    results = sorted(latest.values(), key=lambda r: order.get((r["task"], r["model"], r["T"]), 99))
    meta = {"command": "python benchmarks/memory_tasks.py" + (" --quick" if args.quick else ""),
            "budget": cfg, "torch": torch.__version__, "python": platform.python_version(),
            "threads": 1}  # fmt: skip
    data = {"meta": meta, "runs": results}
    tmp = args.out / f".{name}.json.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(args.out / f"{name}.json")
    (args.out / f"{name}.md").write_text(markdown(data) + "\n")
    print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
