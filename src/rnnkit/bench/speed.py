"""Speed benchmark: rnnkit fused vs rnnkit reference vs torch.nn, in one run (issue 11 targets).

What is timed is what users run: each torch.nn module is converted with
``rnnkit.from_torch(module, impl=...)`` and the layer is called, for impl "fused" (rnnkit's
native kernels), "reference" (the cells in a Python time loop; autograd through it is BPTT)
and "torch" (the same weights through torch.nn's kernels, oneDNN for the LSTM). For inference,
onnxruntime runs the torch.nn module exported with ``torch.onnx.export`` when it is installed;
it is never required.

Grid: cells {Elman-tanh, GRU, LSTM} x (B, T, H) x {inference, training step} with D = H, plus
streaming latency of one step at B = 1 against torch's RNNCell/GRUCell/LSTMCell, through both
``Recurrent.step`` (the layer API) and ``kernels.KernelStreamer`` (prepared weights, state kept
in place: the fast streaming API).

How it measures: implementations take turns (interleaved) so a change in machine load hits all
of them alike; each number is a median, a sequence row's after WARMUP (3) untimed calls of
each; ratios are other / fused; GFLOP/s counts GEMM work only; the sgemm peak is the best
float32 n x n matmul, measured at the start and the end of the same run with the same threads,
by torch.mm and (where the CPU runs it) the kernels' own GEMM, whichever is faster (the run
records which).

Example:
    >>> result = run(SpeedConfig(sizes=((32, 100, 64),), stream_h=(64,)))
    >>> json_path, md_path = write(result, Path("benchmarks/results"))
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import kernels
from ..atomic import atomic_write_json, atomic_write_text
from ..layers import from_torch

SIZES = ((32, 100, 64), (32, 100, 256), (64, 100, 512))  # (B, T, H), D = H
STREAM_H = (64, 128, 256)
CELLS = ("elman", "gru", "lstm")
WARMUP = 3  # untimed calls of each implementation before a sequence row is timed
GATES = {"elman": 1, "gru": 3, "lstm": 4}
TORCH_SEQ = {"elman": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
TORCH_CELL = {"elman": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}
LAYER_IMPLS = ("fused", "torch", "reference")
GRAD_STEP_JOBS = ("torch_cell", "layer_auto")  # the streaming jobs timed with autograd
# Issue 11's "Must show": training over torch.nn by (B, T, H) and cell; the streamer and
# Recurrent.step over torch's cell by H; onnxruntime and the sgemm-peak fraction at one size.
TRAIN_TARGETS = {
    (32, 100, 64): {"elman": 3.3, "gru": 3.8, "lstm": 1.1},
    (32, 100, 256): {"elman": 1.5, "gru": 1.6, "lstm": 1.2},
}
STREAM_TARGETS = {64: 14.0, 128: 10.0}
STEP_TARGETS = {64: 3.0, 256: 2.0}
ORT_SIZE = PEAK_SIZE = (64, 100, 512)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}

Progress = Callable[[int, int, str], None]  # (done, total, line just measured)


@dataclass(frozen=True)
class SpeedConfig:
    """What to time.

    Args:
        sizes: (B, T, H) triples (D = H).
        stream_h: hidden sizes for the B = 1 streaming step.
        reps: timed repeats per measurement (H >= 512 training uses max(3, reps // 2)).
        stream_steps: steps per streaming repeat.
        threads: torch threads for the run (None: leave as is); restored afterwards.
        clock: "wall" (perf_counter) or "cpu" (process CPU time of all threads: with
            threads=1 it ignores time spent waiting for a core, so it is steady under load).
        onnx: add onnxruntime for inference when it is installed.
        reference: time the reference (Python time loop) implementation too.
        peak_n: matrix size of the sgemm peak measurement.
    """

    sizes: tuple[tuple[int, int, int], ...] = SIZES
    stream_h: tuple[int, ...] = STREAM_H
    reps: int = 7
    stream_steps: int = 200
    threads: int | None = None
    clock: str = "wall"
    onnx: bool = True
    reference: bool = True
    peak_n: int = 2048

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {self.clock!r}")
        if self.reps < 1 or self.stream_steps < 1:
            raise ValueError("reps and stream_steps must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        for size in self.sizes:
            if len(size) != 3 or min(size) < 1:
                raise ValueError(f"sizes must be positive (B, T, H) triples, got {size}")
        if any(h < 1 for h in self.stream_h):
            raise ValueError(f"stream_h must be positive, got {self.stream_h}")


def quick_config(**overrides: Any) -> SpeedConfig:
    """The first size and first streaming H, 3 repeats: a smoke run of a minute or two."""
    base = {"sizes": SIZES[:1], "stream_h": STREAM_H[:1], "reps": 3}
    return SpeedConfig(**{**base, **overrides})


# ------------------------------------------------------------------ timing


def interleaved(jobs: dict[str, Callable[[], Any]], reps: int, clock, warmup: int = 1):
    """Median seconds per job; the jobs take turns so load changes hit all of them."""
    for job in jobs.values():
        for _ in range(warmup):
            job()
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(reps):
        for k, job in jobs.items():
            t0 = clock()
            job()
            times[k].append(clock() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _own_gemm():
    """The kernels' own GEMM as f(a, b, c) (C = A B, contiguous float32), or None where the
    extension is missing, lacks the entry point, or the CPU cannot run it (no AVX-512F)."""
    try:
        module = kernels.sequence.lib()
    except RuntimeError:
        return None
    run = getattr(module, "own_gemm", None)
    if run is None:
        return None

    def gemm(a, b, c):
        assert a.dtype == b.dtype == c.dtype == torch.float32
        assert a.is_contiguous() and b.is_contiguous() and c.is_contiguous()
        assert a.shape[1] == b.shape[0] and c.shape == (a.shape[0], b.shape[1])
        run(a.data_ptr(), b.data_ptr(), c.data_ptr(), a.shape[0], b.shape[1], a.shape[1])

    try:
        gemm(torch.ones(1, 1), torch.ones(1, 1), torch.empty(1, 1))
    except RuntimeError:  # no AVX-512F
        return None
    return gemm


def sgemm_peaks(clock, n: int = 2048, reps: int = 5) -> dict[str, float]:
    """Best float32 GFLOP/s of an n x n matmul with the current torch threads, per GEMM:
    "torch.mm" (torch's BLAS) and, where it runs on this CPU, "own" (the kernels' own GEMM,
    which they use where MKL takes its slow path: on AMD, torch.mm alone understates the
    peak, and the training rows read over 100% of it)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    gemms = {"torch.mm": lambda: torch.mm(a, b, out=c)}
    own = _own_gemm()
    if own is not None:
        gemms["own"] = lambda: own(a, b, c)
    best = dict.fromkeys(gemms, 0.0)
    for g in gemms.values():
        g()
    for _ in range(reps):
        for name, g in gemms.items():  # taking turns, as the rows do
            t0 = clock()
            g()
            best[name] = max(best[name], 2 * n**3 / max(clock() - t0, 1e-9) / 1e9)
    return best


def sgemm_peak(clock, n: int = 2048, reps: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n matmul with the current torch threads: the best of
    torch.mm and the own GEMM (sgemm_peaks)."""
    return max(sgemm_peaks(clock, n, reps).values())


def gemm_flops(cell: str, B: int, T: int, H: int, D: int, mode: str) -> int:
    """GEMM flops: forward 2BTGH(D+H); backward adds dW_ih, dW_hh and dh (x needs no grad)."""
    G = GATES[cell]
    fwd = 2 * B * T * G * H * (D + H)
    return fwd if mode == "inference" else fwd + 2 * B * T * G * H * (D + 2 * H)


# ------------------------------------------------------------------ jobs


def layer_job(layer, x: torch.Tensor, mode: str) -> Callable[[], None]:
    """One inference call (no grad) or one training step (forward + backward of out.sum())."""
    params = list(layer.parameters())
    if mode == "inference":

        def job():
            with torch.no_grad():
                layer(x)

        return job

    def job():
        for p in params:
            p.grad = None
        out, _ = layer(x)
        out.sum().backward()

    return job


def onnx_status() -> str:
    """'available' or why onnxruntime cannot be used."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        return f"not installed ({err.name}); pip install onnxruntime onnx"
    return "available"


def onnx_job(module: nn.Module, x: torch.Tensor) -> tuple[Callable[[], None], float]:
    """An onnxruntime session of the exported module, and its max |difference| from torch."""
    import onnxruntime as ort

    buf = io.BytesIO()
    module = module.eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), buf, input_names=["x"], output_names=["y"], dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    # onnxruntime's threads spin after each run by default; interleaved with the other
    # implementations they would hold the cores and slow whichever runs next (measured:
    # fused inference 2x slower next to a spinning session)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    with torch.no_grad():
        want = module(x)[0].numpy()
    err = float(abs(sess.run(["y"], feed)[0] - want).max())
    return (lambda: sess.run(["y"], feed)), err


def seeded_pair(cell: str, H: int):
    """torch.nn's one-layer module (D = H, batch first) seeded 0, and its cell with the same
    weights."""
    torch.manual_seed(0)
    mod = TORCH_SEQ[cell](H, H, batch_first=True)
    tcell = TORCH_CELL[cell](H, H)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(tcell, name).copy_(getattr(mod, f"{name}_l0"))
    return mod, tcell


def streamer_for(layer, batch: int) -> kernels.KernelStreamer:
    """A kernels.KernelStreamer holding a unidirectional layer's current weights."""
    return layer.streamer(batch)


def stream_jobs(cell: str, H: int, steps: int, reference: bool, backward: bool = False):
    """Jobs of `steps` B = 1 steps each: torch's cell, Recurrent.step, kernels.KernelStreamer;
    `backward`: the torch cell and Recurrent.step jobs end with a backward of the last output
    (timed with grad enabled)."""
    mod, tcell = seeded_pair(cell, H)
    x = torch.randn(1, H)
    h0 = torch.zeros(1, H)
    state0 = (h0, h0.clone()) if cell == "lstm" else h0

    def torch_cell():
        s = state0
        for _ in range(steps):
            s = tcell(x, s)
        if backward:
            (s[0] if isinstance(s, tuple) else s).sum().backward()

    def layer_step(layer):
        def job():
            s = None
            for _ in range(steps):
                y, s = layer.step(x, s)
            if backward:
                y.sum().backward()

        return job

    fused = from_torch(mod, impl="fused").eval()
    streamer = streamer_for(fused, 1)

    def stream():
        streamer.reset()
        for _ in range(steps):
            streamer.step(x)

    stream.split_reason = streamer.split_reason  # the streamer's split choice, for the result

    jobs = {"torch_cell": torch_cell, "streamer": stream, "layer_fused": layer_step(fused),
            # impl "auto": the cells step when a gradient is wanted (impl="fused" refuses)
            "layer_auto": layer_step(from_torch(mod).eval())}  # fmt: skip
    if reference:
        jobs["layer_reference"] = layer_step(from_torch(mod, impl="reference").eval())
    return jobs


# ------------------------------------------------------------------ the run


def run(config: SpeedConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Time everything `config` asks for; return the result (meta, sequence, streaming, targets).

    Raises:
        RuntimeError: the native kernels are unavailable (the reason says why).
    """
    status = kernels.available()
    if not status:
        raise RuntimeError(f"native kernels unavailable: {status.reason}")
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _run(config, status, progress or (lambda done, total, line: None))
    finally:
        torch.set_num_threads(old_threads)


def _run(config: SpeedConfig, status, progress: Progress) -> dict[str, Any]:
    clock = CLOCKS[config.clock]
    ort = onnx_status() if config.onnx else "not requested"
    use_ort = ort == "available"
    total = len(config.sizes) * len(CELLS) * 2 + len(config.stream_h) * len(CELLS)
    done = 0
    load0 = os.getloadavg()
    peaks0 = sgemm_peaks(clock, config.peak_n)
    impls = LAYER_IMPLS if config.reference else LAYER_IMPLS[:2]

    rows = []
    for B, T, H in config.sizes:
        D = H
        for cell in CELLS:
            torch.manual_seed(0)
            mod = TORCH_SEQ[cell](D, H, batch_first=True)
            x = torch.randn(B, T, D)
            layers = {impl: from_torch(mod, impl=impl) for impl in impls}
            for mode in ("inference", "training"):
                reps = config.reps if (H < 512 or mode == "inference") else max(3, config.reps // 2)
                jobs = {impl: layer_job(layer, x, mode) for impl, layer in layers.items()}
                row: dict[str, Any] = {
                    "cell": cell,
                    "B": B,
                    "T": T,
                    "H": H,
                    "D": D,
                    "mode": mode,
                    "reps": reps,
                }
                if mode == "inference" and use_ort:
                    jobs["onnxruntime"], row["onnxruntime_max_abs_diff"] = onnx_job(mod, x)
                # 3 untimed calls each first: the steady state is what a training run sees (the
                # fused GRU's first training steps at (64,100,512) ran ~25% slower than its later
                # ones; with one warm-up the median of 3 timed steps caught two of them)
                med = interleaved(jobs, reps, clock, warmup=WARMUP)
                for impl, layer in layers.items():  # what ran is part of the result
                    if layer.impl_used != impl:
                        raise RuntimeError(f"asked for impl={impl!r}, {layer.impl_used!r} ran")
                flops = gemm_flops(cell, B, T, H, D, mode)
                row["ms"] = {k: v * 1e3 for k, v in med.items()}
                row["gflops"] = {k: flops / v / 1e9 for k, v in med.items()}
                row["speedup"] = {k: v / med["fused"] for k, v in med.items() if k != "fused"}
                rows.append(row)
                done += 1
                progress(done, total, _row_line(row))
    stream = []
    for H in config.stream_h:
        for cell in CELLS:
            jobs = stream_jobs(cell, H, config.stream_steps, config.reference)
            with torch.no_grad():
                no_grad = {k: j for k, j in jobs.items() if k not in GRAD_STEP_JOBS[1:]}
                med = interleaved(no_grad, max(5, config.reps), clock)
            # with autograd: weights requiring grad, the graph built (backward not timed)
            with torch.enable_grad():
                med_grad = interleaved(
                    {k: jobs[k] for k in GRAD_STEP_JOBS}, max(5, config.reps), clock
                )
            us = {k: v / config.stream_steps * 1e6 for k, v in med.items()}
            us_grad = {k: v / config.stream_steps * 1e6 for k, v in med_grad.items()}
            item = {
                "cell": cell,
                "H": H,
                "B": 1,
                "us": us,
                "speedup_vs_torch_cell": {
                    k: us["torch_cell"] / v for k, v in us.items() if k != "torch_cell"
                },
                "us_grad": us_grad,
                "speedup_grad": us_grad["torch_cell"] / us_grad["layer_auto"],
                # one thread or split over the threads, and why (KernelStreamer.split_reason)
                "streamer_split": getattr(jobs["streamer"], "split_reason", None),
            }
            stream.append(item)
            done += 1
            progress(done, total, _stream_line(item))
    peaks1 = sgemm_peaks(clock, config.peak_n)
    peak0, peak1 = max(peaks0.values()), max(peaks1.values())
    peak = max(peak0, peak1)
    by = {name: max(peaks0[name], peaks1[name]) for name in peaks0}
    peak_source = max(by, key=by.get)
    for row in rows:  # one peak for the whole run: the best of its two measurements
        row["fused_peak_fraction"] = row["gflops"]["fused"] / peak
    meta = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": _cpu_name(),
        "python": platform.python_version(),
        "clock": config.clock,
        "sgemm_peak_gflops": peak,
        "sgemm_peak_start_end": [peak0, peak1],
        # which GEMM gave the peak ("torch.mm" or "own"), and each one's best of the run
        "sgemm_peak_source": peak_source,
        "sgemm_peak_by_gemm": by,
        "loadavg_start": list(load0),
        "loadavg_end": list(os.getloadavg()),
        "kernels": status.reason,
        "onnxruntime": _ort_version() if use_ort else ort,
        "config": asdict(config),
    }
    return {
        "meta": meta,
        "sequence": rows,
        "streaming": stream,
        "targets": targets(rows, stream, peak_source),
    }


def write(result: dict[str, Any], out_dir: Path, name: str = "speed") -> tuple[Path, Path]:
    """Write NAME.json and NAME.md into out_dir (atomically); return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    atomic_write_json(json_path, result)
    atomic_write_text(md_path, markdown(result))
    return json_path, md_path


_PEAK_NAMES = {"own": "own GEMM", "torch.mm": "torch.mm"}


def targets(
    rows: list[dict], stream: list[dict], peak_source: str | None = None
) -> list[dict[str, Any]]:
    """Issue 11's "Must show" speed targets that this run measured, each with the measured
    value and whether it was met (a size or H not in the run adds no row). peak_source: which
    GEMM gave the sgemm peak (sgemm_peaks' key), named in the peak rows."""
    out = []
    peak_of = f" ({_PEAK_NAMES.get(peak_source, peak_source)})" if peak_source else ""

    def add(target, value, need):
        out.append({"target": target, "value": value, "met": value >= need})

    for r in rows:
        size = (r["B"], r["T"], r["H"])
        need = TRAIN_TARGETS.get(size, {}).get(r["cell"])
        if r["mode"] == "training" and need:
            add(f"{r['cell']} training vs torch.nn at {size} >= {need:g}x", r["speedup"]["torch"],
                need)  # fmt: skip
        if r["mode"] == "inference" and r["cell"] == "lstm":
            add(f"lstm inference vs torch.nn (oneDNN) at {size} >= 1x", r["speedup"]["torch"], 1.0)
        if r["mode"] == "inference" and size == ORT_SIZE and "onnxruntime" in r["speedup"]:
            add(f"{r['cell']} inference vs onnxruntime at {size} >= 1x",
                r["speedup"]["onnxruntime"], 1.0)  # fmt: skip
        if r["mode"] == "training" and size == PEAK_SIZE:
            add(f"{r['cell']} training at {size} >= 75% of sgemm peak{peak_of}",
                r["fused_peak_fraction"], 0.75)  # fmt: skip
    for s in stream:
        need = STREAM_TARGETS.get(s["H"])
        if need:
            add(f"streaming {s['cell']} B=1 H={s['H']} (kernels.KernelStreamer) >= {need:g}x "
                "torch cell", s["speedup_vs_torch_cell"]["streamer"], need)  # fmt: skip
        need = STEP_TARGETS.get(s["H"])
        if need:  # the layer API, state in and out, in both modes
            for mode, x in (("no_grad", s["speedup_vs_torch_cell"]["layer_fused"]),
                            ("autograd", s["speedup_grad"])):  # fmt: skip
                add(f"Recurrent.step {s['cell']} B=1 H={s['H']} {mode} >= {need:g}x torch cell",
                    x, need)  # fmt: skip
    return out


# ------------------------------------------------------------------ report


def _row_line(row) -> str:
    ms, x = row["ms"], row["speedup"]
    s = (
        f"{row['cell']:5s} B={row['B']} T={row['T']} H={row['H']} {row['mode']:9s} "
        f"fused {ms['fused']:.2f} ms, torch {ms['torch']:.2f} ms (x{x['torch']:.2f})"
    )
    for k in ("reference", "onnxruntime"):
        if k in ms:
            s += f", {k} {ms[k]:.2f} ms (x{x[k]:.2f})"
    return s


def _stream_line(item) -> str:
    us, x = item["us"], item["speedup_vs_torch_cell"]
    return (
        f"stream {item['cell']:5s} H={item['H']}: torch cell {us['torch_cell']:.2f} us, "
        f"Streamer {us['streamer']:.2f} us (x{x['streamer']:.1f}), Recurrent.step "
        f"{us['layer_fused']:.2f} us (x{x['layer_fused']:.1f}); with autograd torch cell "
        f"{item['us_grad']['torch_cell']:.2f} us, Recurrent.step "
        f"{item['us_grad']['layer_auto']:.2f} us (x{item['speedup_grad']:.1f})"
    )


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ort_version() -> str:
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__}"


def _fmt(d: dict, key: str, spec: str = ".2f") -> str:
    return format(d[key], spec) if key in d else "–"


def _peak_note(meta: dict) -> str:
    """ ", own GEMM (torch.mm 131)": which GEMM gave the peak, and the others' best (results
    written before the peak took the own GEMM have neither)."""
    by, src = meta.get("sgemm_peak_by_gemm"), meta.get("sgemm_peak_source")
    if not by or not src:
        return ""
    others = ", ".join(f"{_PEAK_NAMES.get(k, k)} {v:.0f}" for k, v in by.items() if k != src)
    return f", {_PEAK_NAMES.get(src, src)}" + (f" ({others})" if others else "")


def markdown(result: dict[str, Any]) -> str:
    """The result as markdown tables (sequence, streaming, targets)."""
    m = result["meta"]
    lines = [
        "# Speed: rnnkit fused vs rnnkit reference vs torch.nn",
        "",
        f"{m['date']} · torch {m['torch']} · {m['threads']} thread(s) · clock: {m['clock']} · "
        f"{m['cpu']} · sgemm peak {m['sgemm_peak_gflops']:.0f} GFLOP/s{_peak_note(m)} (start/end "
        f"{m['sgemm_peak_start_end'][0]:.0f}/{m['sgemm_peak_start_end'][1]:.0f}) · load average "
        f"{m['loadavg_start'][0]:.1f} → {m['loadavg_end'][0]:.1f} · {m['onnxruntime']}",
        "",
        f"Medians of interleaved runs after {WARMUP} untimed calls each, D = H, through the "
        "layers users run "
        "(`rnnkit.from_torch(module, impl=...)`). Training step = forward + backward of "
        "out.sum(), x without grad. × columns are that implementation's time over fused "
        "(> 1: fused is faster). GFLOP/s counts GEMM work only; % peak is fused GFLOP/s over "
        "the sgemm peak of the same run (the faster of torch.mm and the own GEMM, named above).",
        "",
        "| cell | B | T | H | mode | fused ms | torch.nn ms | reference ms | onnxruntime ms "
        "| × torch.nn | × reference | × onnxruntime | fused GFLOP/s | % peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["sequence"]:
        ms, x = r["ms"], r["speedup"]
        lines.append(
            f"| {r['cell']} | {r['B']} | {r['T']} | {r['H']} | {r['mode']} | {ms['fused']:.2f} "
            f"| {ms['torch']:.2f} | {_fmt(ms, 'reference')} | {_fmt(ms, 'onnxruntime')} "
            f"| {x['torch']:.2f} | {_fmt(x, 'reference')} | {_fmt(x, 'onnxruntime')} "
            f"| {r['gflops']['fused']:.1f} | {100 * r['fused_peak_fraction']:.0f}% |"
        )
    lines += [
        "",
        "Streaming, one step at B = 1 (D = H), µs per step. `kernels.KernelStreamer` holds "
        "prepared weights and its state in place (one native call per step); `Recurrent.step` "
        "is the layer API (state in, state out). × columns are torch cell time over that API's. "
        "The autograd columns time the same loop with grad enabled and the weights requiring "
        "grad (the graph built, backward not timed), torch's cell likewise; `Recurrent.step` "
        "(impl auto) then runs the native single-step operators with their autograd.",
        "",
        "| cell | H | torch cell µs | Streamer µs | Recurrent.step fused µs "
        "| Recurrent.step reference µs | × Streamer | × Recurrent.step "
        "| autograd: torch cell µs | autograd: Recurrent.step µs | autograd × |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result["streaming"]:
        us, x, g = s["us"], s["speedup_vs_torch_cell"], s["us_grad"]
        lines.append(
            f"| {s['cell']} | {s['H']} | {us['torch_cell']:.2f} | {us['streamer']:.2f} "
            f"| {us['layer_fused']:.2f} | {_fmt(us, 'layer_reference')} "
            f"| {x['streamer']:.1f} | {x['layer_fused']:.1f} "
            f"| {g['torch_cell']:.2f} | {g['layer_auto']:.2f} | {s['speedup_grad']:.1f} |"
        )
    splits = [f"{s['cell']} H={s['H']}: {s['streamer_split']}"
              for s in result["streaming"] if s.get("streamer_split")]  # fmt: skip
    if splits:
        lines += ["", "Streamer split over the threads (chosen when built): " + "; ".join(splits)]
    lines += ["", "Targets (issue 11):", "", "| target | measured | met |", "|---|---|---|"]
    for t in result["targets"]:
        v = f"{100 * t['value']:.0f}%" if "peak" in t["target"] else f"{t['value']:.2f}x"
        lines.append(f"| {t['target']} | {v} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines) + "\n"
