"""Speed of rnnkit's fused kernels against torch.nn and a plain Python time loop.

Cells {Elman-tanh, GRU, LSTM} x (B, T, H) in {(32, 100, 64), (32, 100, 256), (64, 100, 512)}
(D = H) x {inference, training step}, plus streaming latency of one step at B = 1 for
H in {64, 128, 256}. Implementations are timed interleaved (one run of each in turn, repeated)
so a busy machine slows all of them alike; we report medians, ratios, GFLOP/s and the fraction
of the sgemm peak measured in the same run (best of a large float32 matmul).

    .venv/bin/python benchmarks/speed.py            # full table, ~2-4 min on 2 cores
    .venv/bin/python benchmarks/speed.py --quick    # first size and fewer repeats

Writes benchmarks/results/speed.json and benchmarks/results/speed.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from rnnkit import kernels

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = [(32, 100, 64), (32, 100, 256), (64, 100, 512)]
STREAM_H = [64, 128, 256]
GATES = {"elman": 1, "gru": 3, "lstm": 4}
TORCH_SEQ = {"elman": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}
TORCH_CELL = {"elman": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}


# ------------------------------------------------------------------ implementations


def _weights(mod):
    return mod.weight_ih_l0, mod.weight_hh_l0, mod.bias_ih_l0, mod.bias_hh_l0


def fused_forward(cell, mod, x):
    w = _weights(mod)
    if cell == "elman":
        return kernels.elman_sequence(x, None, *w, activation="tanh")[0]
    if cell == "gru":
        return kernels.gru_sequence(x, None, *w)[0]
    return kernels.lstm_sequence(x, None, None, *w)[0]


def torch_forward(cell, mod, x):
    return mod(x)[0]


def loop_forward(cell, mod, x):
    """The plain reference: torch ops in a Python loop over time; autograd through it is BPTT."""
    w_ih, w_hh, b_ih, b_hh = _weights(mod)
    B, T, _ = x.shape
    H = w_hh.shape[1]
    h = x.new_zeros(B, H)
    c = x.new_zeros(B, H)
    xp = torch.addmm(b_ih, x.reshape(B * T, -1), w_ih.t()).view(B, T, -1)  # (B, T, G*H)
    outs = []
    for t in range(T):
        gh = torch.addmm(b_hh, h, w_hh.t())
        gx = xp[:, t]
        if cell == "elman":
            h = torch.tanh(gx + gh)
        elif cell == "gru":
            xr, xz, xn = gx.chunk(3, 1)
            hr, hz, hn = gh.chunk(3, 1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = n + z * (h - n)
        else:
            i, f, g, o = (gx + gh).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, 1)


IMPLS = {"fused": fused_forward, "torch": torch_forward, "loop": loop_forward}


def make_job(impl, cell, mod, x, mode):
    fwd = IMPLS[impl]
    params = list(mod.parameters())

    if mode == "inference":
        def job():
            with torch.no_grad():
                fwd(cell, mod, x)
    else:
        def job():
            for p in params:
                p.grad = None
            fwd(cell, mod, x).sum().backward()
    return job


# ------------------------------------------------------------------ timing


CLOCK = time.perf_counter


def interleaved(jobs: dict, reps: int, warmup: int = 1) -> dict:
    """Median seconds per job; the jobs take turns so load changes hit all of them."""
    for job in jobs.values():
        for _ in range(warmup):
            job()
    times = {k: [] for k in jobs}
    for _ in range(reps):
        for k, job in jobs.items():
            t0 = CLOCK()
            job()
            times[k].append(CLOCK() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def sgemm_peak(n: int = 2048, reps: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n matmul with the current torch threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    torch.mm(a, b, out=c)
    best = 0.0
    for _ in range(reps):
        t0 = CLOCK()
        torch.mm(a, b, out=c)
        best = max(best, 2 * n**3 / (CLOCK() - t0) / 1e9)
    return best


def flops(cell, B, T, H, D, mode):
    """GEMM flops: forward 2BTGH(D+H); backward adds dW_ih, dW_hh and dh (x needs no grad)."""
    G = GATES[cell]
    fwd = 2 * B * T * G * H * (D + H)
    return fwd if mode == "inference" else fwd + 2 * B * T * G * H * (D + 2 * H)


def stream_latency(cell, H, steps, reps):
    """Microseconds per step at B = 1: fused step kernel vs torch's cell, interleaved."""
    torch.manual_seed(0)
    mod = TORCH_CELL[cell](H, H)
    w = (mod.weight_ih, mod.weight_hh, mod.bias_ih, mod.bias_hh)
    x = torch.randn(1, H)
    h = torch.zeros(1, H)
    st = (h, h.clone())

    def fused():
        s = st if cell == "lstm" else h
        for _ in range(steps):
            if cell == "elman":
                _, s = kernels.elman_step(x, s, *w)
            elif cell == "gru":
                _, s = kernels.gru_step(x, s, *w)
            else:
                _, s = kernels.lstm_step(x, s, *w)

    def reference():
        s = st if cell == "lstm" else h
        for _ in range(steps):
            s = mod(x, s)

    with torch.no_grad():
        med = interleaved({"fused": fused, "torch": reference}, reps)
    return {k: v / steps * 1e6 for k, v in med.items()}


# ------------------------------------------------------------------ report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="first size only, fewer repeats")
    ap.add_argument("--reps", type=int, default=None, help="timed repeats per measurement")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for speed.json/.md")
    ap.add_argument("--no-loop", action="store_true", help="skip the Python-loop reference")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads first")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: perf_counter; cpu: process CPU time (use with --threads 1 on a "
                    "busy machine: it does not count time spent waiting for a core)")
    ap.add_argument("--name", default="speed", help="output file stem (NAME.json, NAME.md)")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)

    status = kernels.available()
    if not status:
        print(f"native kernels unavailable: {status.reason}", file=sys.stderr)
        return 2
    sizes = SIZES[:1] if args.quick else SIZES
    stream_h = STREAM_H[:1] if args.quick else STREAM_H
    reps = args.reps or (3 if args.quick else 7)
    impls = ["fused", "torch"] + ([] if args.no_loop else ["loop"])
    load0 = os.getloadavg()
    peak = sgemm_peak()

    rows = []
    for B, T, H in sizes:
        D = H
        for cell in GATES:
            torch.manual_seed(0)
            mod = TORCH_SEQ[cell](D, H, batch_first=True)
            x = torch.randn(B, T, D)
            for mode in ("inference", "training"):
                r = reps if (H < 512 or mode == "inference") else max(3, reps // 2)
                jobs = {i: make_job(i, cell, mod, x, mode) for i in impls}
                med = interleaved(jobs, r)
                fl = flops(cell, B, T, H, D, mode)
                row = {
                    "cell": cell, "B": B, "T": T, "H": H, "D": D, "mode": mode, "reps": r,
                    "ms": {k: v * 1e3 for k, v in med.items()},
                    "speedup_vs_torch": med["torch"] / med["fused"],
                    "fused_gflops": fl / med["fused"] / 1e9,
                }
                row["fused_peak_fraction"] = row["fused_gflops"] / peak
                if "loop" in med:
                    row["speedup_vs_loop"] = med["loop"] / med["fused"]
                rows.append(row)
                print(_row_line(row), flush=True)
    stream = []
    for H in stream_h:
        for cell in GATES:
            lat = stream_latency(cell, H, steps=200, reps=max(5, reps))
            item = {"cell": cell, "H": H, "B": 1, "us": lat,
                    "speedup_vs_torch": lat["torch"] / lat["fused"]}
            stream.append(item)
            print(f"stream {cell:5s} H={H:3d}: fused {lat['fused']:6.2f} us, torch "
                  f"{lat['torch']:6.2f} us, x{item['speedup_vs_torch']:.1f}", flush=True)
    peak_end = sgemm_peak()
    meta = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": _cpu_name(), "python": platform.python_version(),
        "sgemm_peak_gflops": max(peak, peak_end), "sgemm_peak_start_end": [peak, peak_end],
        "loadavg_start": load0, "loadavg_end": os.getloadavg(),
        "kernels": status.reason, "quick": args.quick, "clock": args.clock, "onnxruntime": _ort(),
    }
    for row in rows:  # one peak for the whole run: the best of its two measurements
        row["fused_peak_fraction"] = row["fused_gflops"] / meta["sgemm_peak_gflops"]
    result = {"meta": meta, "sequence": rows, "streaming": stream, "targets": targets(rows, stream)}
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out / f"{args.name}.json", args.out / f"{args.name}.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    md_path.write_text(markdown(result))
    print(f"wrote {json_path} and {md_path}")
    return 0


def _row_line(row):
    ms = row["ms"]
    s = (f"{row['cell']:5s} B={row['B']:2d} T={row['T']} H={row['H']:3d} {row['mode']:9s} "
         f"fused {ms['fused']:8.2f} ms  torch {ms['torch']:8.2f} ms  "
         f"x{row['speedup_vs_torch']:5.2f}")
    if "loop" in ms:
        s += f"  loop {ms['loop']:8.2f} ms  x{row['speedup_vs_loop']:5.2f}"
    return s + f"  {row['fused_gflops']:6.1f} GFLOP/s"


def _cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ort():
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "not installed (inference comparison skipped)"
    return "installed but not compared yet"


def targets(rows, stream):
    """The issue's targets, each with the measured value and whether it was met."""
    out = []

    def find(cell, H, mode):
        return [r for r in rows if r["cell"] == cell and r["H"] == H and r["mode"] == mode]

    for cell in ("gru", "elman"):
        for H, need in ((64, 3.0), (256, 1.5)):
            for r in find(cell, H, "training"):
                out.append({"target": f"{cell} training vs torch.nn at H={H} >= {need}x",
                            "value": r["speedup_vs_torch"], "met": r["speedup_vs_torch"] >= need})
    for r in [r for r in rows if r["cell"] == "lstm" and r["mode"] == "training"]:
        out.append({"target": f"lstm training vs torch.nn (oneDNN) at H={r['H']} >= 1x",
                    "value": r["speedup_vs_torch"], "met": r["speedup_vs_torch"] >= 1.0})
    for s in stream:
        out.append({"target": f"streaming {s['cell']} step B=1 H={s['H']} >= 10x torch cell",
                    "value": s["speedup_vs_torch"], "met": s["speedup_vs_torch"] >= 10})
    for r in [r for r in rows if r["H"] == 512]:
        out.append({"target": f"{r['cell']} {r['mode']} at (64, 100, 512) >= 75% of sgemm peak",
                    "value": r["fused_peak_fraction"], "met": r["fused_peak_fraction"] >= 0.75})
    return out


def markdown(result):
    m = result["meta"]
    lines = [
        "# Speed: rnnkit fused kernels vs torch.nn and a Python loop",
        "",
        f"{m['date']} · torch {m['torch']} · {m['threads']} threads · {m['cpu']} · "
        f"sgemm peak {m['sgemm_peak_gflops']:.0f} GFLOP/s (start/end "
        f"{m['sgemm_peak_start_end'][0]:.0f}/{m['sgemm_peak_start_end'][1]:.0f}) · load average "
        f"{m['loadavg_start'][0]:.1f} → {m['loadavg_end'][0]:.1f} · clock: {m['clock']} · "
        f"onnxruntime: {m['onnxruntime']}",
        "",
        "Medians of interleaved runs, D = H. Training step = forward + backward of out.sum() "
        "with x not requiring grad. Ratios > 1 mean fused is faster. GFLOP/s counts the GEMM "
        "work only.",
        "",
        "| cell | B | T | H | mode | fused ms | torch.nn ms | loop ms | × torch | × loop "
        "| fused GFLOP/s | % peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["sequence"]:
        ms = r["ms"]
        loop = f"{ms['loop']:.2f}" if "loop" in ms else "–"
        xl = f"{r['speedup_vs_loop']:.2f}" if "speedup_vs_loop" in r else "–"
        lines.append(
            f"| {r['cell']} | {r['B']} | {r['T']} | {r['H']} | {r['mode']} | {ms['fused']:.2f} "
            f"| {ms['torch']:.2f} | {loop} | {r['speedup_vs_torch']:.2f} | {xl} "
            f"| {r['fused_gflops']:.1f} | {100 * r['fused_peak_fraction']:.0f}% |"
        )
    lines += ["", "Streaming, one step at B = 1 (D = H), µs per step:", "",
              "| cell | H | fused µs | torch cell µs | × torch |", "|---|---|---|---|---|"]
    for s in result["streaming"]:
        lines.append(f"| {s['cell']} | {s['H']} | {s['us']['fused']:.2f} | {s['us']['torch']:.2f} "
                     f"| {s['speedup_vs_torch']:.1f} |")
    lines += ["", "Targets (issue 6):", "", "| target | measured | met |", "|---|---|---|"]
    for t in result["targets"]:
        v = f"{100 * t['value']:.0f}%" if "peak" in t["target"] else f"{t['value']:.2f}x"
        lines.append(f"| {t['target']} | {v} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
