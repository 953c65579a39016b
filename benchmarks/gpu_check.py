"""rnnkit on a CUDA GPU: equivalence, dtypes, torch.compile, speed, and a training run.

    python benchmarks/gpu_check.py --out results/gpu_check.json     # on a machine with a GPU
    python benchmarks/gpu_check.py --device cpu --quick              # a smoke run of the checks

The native kernels run on the CPU only; on a GPU impl="auto" must pick a path that works and
say which (`impl_used`). Five parts, each a list of rows with a pass/fail where one applies:

1. equivalence: every cell family, 2 layers, bidirectional, variable lengths, on the GPU in
   float32 against the same weights on the CPU in float64 (impl "reference"): outputs, final
   states, and the gradients of every parameter and of the input, for every impl the layer
   can run there. TF32 is off for this part (torch.backends.*.allow_tf32 = False); part 1b
   repeats the torch.nn path with torch's default TF32 setting and reports the difference.
2. dtypes: bf16 and fp16 weights, and fp32 weights under autocast(bf16), with impl="auto":
   each must run forward and backward (no TypeError) and say which impl ran; its loss is
   compared with float32's.
3. torch.compile on the device: fullgraph for impls reference and scan, and with torch.nn's
   graph break for impl torch (Dynamo captures no torch.nn RNN, as the first row shows): the
   same outputs as eager at two lengths (the second not seen at the first call).
4. speed: one training step (forward, backward of a loss on every output), the median of
   `repeats` after warm-up, CUDA-synchronised: rnnkit (impl auto) against torch.nn's module
   with the same weights (cuDNN) for Elman, GRU, LSTM; and the parallel scan (minGRU, impl
   "scan") against its step loop and cuDNN's GRU over long sequences.
5. training: a character model trained 40 steps by the Trainer on the device, saved, loaded
   on the CPU (load_run), the CPU copy's outputs against the device model's; then the run
   resumed on the device for 20 more steps (--quick: 10 and 5, a smaller model).

Writes a JSON file of every row (--out) and prints a summary table. Exit code 1 when a check
fails.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
from torch import nn

from rnnkit import RNNConfig
from rnnkit.layers import Recurrent
from rnnkit.layers.state import leaves

CELLS = (
    ("elman-tanh", "elman", {"activation": "tanh"}),
    ("elman-relu", "elman", {"activation": "relu"}),
    ("jordan", "jordan", {}),
    ("gru", "gru", {}),
    ("lstm", "lstm", {}),
    ("lstm-proj", "lstm", {"proj_size": 6}),
    ("lstm-peep-ln", "lstm", {"peepholes": True, "layer_norm": True}),
    ("mingru", "mingru", {}),
    ("minlstm", "minlstm", {}),
    ("lru", "lru", {}),
)
IMPLS = ("auto", "torch", "scan", "reference")
TOL = 1e-4  # float32 against float64, relative to each tensor's largest magnitude


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@contextlib.contextmanager
def tf32(on: bool):
    was = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = was


def forward_backward(layer: Recurrent, x: torch.Tensor, lengths, weights) -> dict:
    """Outputs, final state and gradients of a fixed random projection of both."""
    x = x.detach().clone().requires_grad_(True)
    layer.zero_grad()
    out, state = layer(x, lengths=lengths)
    final = leaves(state)
    w_out, w_state = weights
    loss = (out * w_out.to(out)).sum()
    loss = loss + sum((s * w.to(s)).sum() for s, w in zip(final, w_state, strict=True))
    loss.backward()
    grads = {n: p.grad for n, p in layer.named_parameters()}
    return {"out": out, "state": final, "x": x.grad, "grads": grads, "impl": layer.impl_used}


# ---- 1. equivalence -----------------------------------------------------------------------


def equivalence(device: torch.device, quick: bool) -> list[dict]:
    rows = []
    B, T, D, H = 5, 23, 7, 16
    lengths = torch.tensor([23, 17, 1, 9, 23])
    for name, cell, options in CELLS[:4] if quick else CELLS:
        torch.manual_seed(0)
        ref = Recurrent.from_config(
            RNNConfig(cell, H, 2, bidirectional=True, impl="reference", options=options), D
        ).double()
        x = torch.randn(B, T, D, dtype=torch.float64)
        with torch.no_grad():
            out, state = ref(x, lengths=lengths)
        weights = (torch.randn_like(out), [torch.randn_like(s) for s in leaves(state)])
        want = forward_backward(ref, x, lengths, weights)
        for impl in IMPLS:
            layer = copy.deepcopy(ref).float().to(device)
            layer.impl = impl
            xd = x.float().to(device).requires_grad_(True)
            why = layer.impl_unsupported(impl, xd) if impl not in ("auto", "reference") else None
            if why:
                rows.append({"cell": name, "impl": impl, "skipped": why})
                continue
            with tf32(False):
                got = forward_backward(layer, xd, lengths, weights)
            diffs = {"out": rel_diff(got["out"], want["out"]),
                     "state": max(rel_diff(a, b) for a, b in zip(got["state"], want["state"],
                                                                 strict=True)),
                     "x_grad": rel_diff(got["x"], want["x"]),
                     "w_grad": max(rel_diff(got["grads"][k], want["grads"][k])
                                   for k in want["grads"])}  # fmt: skip
            worst = max(diffs.values())
            rows.append({"cell": name, "impl": impl, "impl_used": got["impl"], **diffs,
                         "worst": worst, "ok": worst < TOL})  # fmt: skip
            if impl == "torch" and device.type == "cuda":  # 1b: torch's default TF32 setting
                got = forward_backward(layer, xd, lengths, weights)
                worst = max(rel_diff(got["out"], want["out"]), rel_diff(got["x"], want["x"]))
                rows.append({"cell": name, "impl": "torch (default TF32)",
                             "impl_used": got["impl"], "worst": worst})  # fmt: skip
    return rows


# ---- 2. dtypes ----------------------------------------------------------------------------


def dtypes(device: torch.device, quick: bool) -> list[dict]:
    rows = []
    B, T, D, H = 8, 50, 16, 64
    for name, cell, options in CELLS[:5] if quick else CELLS:
        torch.manual_seed(0)
        base = Recurrent.from_config(RNNConfig(cell, H, 2, options=options), D).to(device)
        x = torch.randn(B, T, D, device=device)
        with torch.no_grad():
            want = float(base(x)[0].square().mean())
        cases = [("bf16 weights", torch.bfloat16, None), ("fp16 weights", torch.float16, None),
                 ("autocast bf16", torch.float32, torch.bfloat16)]  # fmt: skip
        for label, dtype, autocast in cases:
            layer = copy.deepcopy(base).to(dtype)
            row = {"cell": name, "case": label}
            try:
                ctx = (torch.autocast(device.type, dtype=autocast) if autocast is not None
                       else contextlib.nullcontext())  # fmt: skip
                with ctx:
                    out, _ = layer(x.to(dtype))
                    loss = out.float().square().mean()
                loss.backward()
                grads_finite = all(torch.isfinite(p.grad).all() for p in layer.parameters())
                rel = abs(float(loss.detach()) - want) / max(abs(want), 1e-12)
                row.update(impl_used=layer.impl_used, out_dtype=str(out.dtype), loss_rel=rel,
                           ok=bool(grads_finite and rel < 0.05))  # fmt: skip
            except Exception as err:  # noqa: BLE001 - the row records what failed
                row.update(ok=False, error=f"{type(err).__name__}: {err}"[:300])
            rows.append(row)
    return rows


# ---- 3. torch.compile ---------------------------------------------------------------------


def compiled(device: torch.device, quick: bool) -> list[dict]:
    """fullgraph for the impls of rnnkit's own ops; impl "torch" calls torch.nn's RNN op, which
    Dynamo does not capture (a graph break, as for nn.LSTM itself: checked in the first row)."""
    rows = []
    B, D, H = 4, 8, 32
    torch._dynamo.reset()
    try:
        torch.compile(nn.LSTM(D, H, batch_first=True).to(device), fullgraph=True)(
            torch.randn(B, 5, D, device=device))  # fmt: skip
        rows.append({"cell": "torch.nn.LSTM", "fullgraph": True})
    except Exception as err:  # noqa: BLE001 - what torch.nn itself allows is the row
        rows.append({"cell": "torch.nn.LSTM", "fullgraph": False,
                     "why": f"{type(err).__name__}: {err}".splitlines()[0][:200]})  # fmt: skip
    cases = [("lstm", "torch", False), ("gru", "auto", False), ("lstm", "reference", True),
             ("mingru", "scan", True)]  # fmt: skip
    for cell, impl, fullgraph in cases[:2] if quick else cases:
        torch._dynamo.reset()
        torch.manual_seed(0)
        layer = Recurrent.from_config(RNNConfig(cell, H, impl=impl), D).to(device)
        row = {"cell": cell, "impl": impl, "fullgraph": fullgraph}
        try:
            fn = torch.compile(layer, fullgraph=fullgraph, dynamic=True)
            worst, seconds = 0.0, []
            for T in (20, 37):
                x = torch.randn(B, T, D, device=device)
                start = time.perf_counter()
                got, _ = fn(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds.append(time.perf_counter() - start)
                with torch.no_grad():
                    want, _ = layer(x)
                worst = max(worst, rel_diff(got, want))
            row.update(impl_used=layer.impl_used, worst=worst, first_call_s=seconds[0],
                       second_length_s=seconds[1], ok=worst < 1e-5)  # fmt: skip
        except Exception as err:  # noqa: BLE001
            row.update(ok=False, error=f"{type(err).__name__}: {err}"[:300])
        rows.append(row)
    return rows


# ---- 4. speed -----------------------------------------------------------------------------


def timed(fn, repeats: int, device: torch.device) -> float:
    """Median seconds of fn() over `repeats` calls after two warm-ups."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def training_step(module: nn.Module, x: torch.Tensor):
    def step():
        module.zero_grad(set_to_none=True)
        out, _ = module(x)
        out.square().mean().backward()

    return step


def torch_twin(layer: Recurrent) -> nn.Module:
    """torch.nn's module with the layer's weights (rnnkit's interop), batch-first."""
    return layer.to_torch()


def speed(device: torch.device, quick: bool) -> list[dict]:
    rows = []
    repeats = 5 if quick else 20
    sizes = [(32, 100, 64)] if quick else [(32, 100, 64), (32, 100, 256), (64, 100, 512),
                                           (64, 1000, 512)]  # fmt: skip
    for cell in ("elman", "gru", "lstm"):
        for B, T, H in sizes:
            torch.manual_seed(0)
            layer = Recurrent.from_config(RNNConfig(cell, H), H).to(device)
            peer = torch_twin(layer).to(device)
            x = torch.randn(B, T, H, device=device)
            ours = timed(training_step(layer, x), repeats, device)
            theirs = timed(training_step(peer, x), repeats, device)
            row = {"part": "vs torch.nn", "cell": cell, "B": B, "T": T, "H": H,
                   "impl_used": layer.impl_used, "rnnkit_ms": ours * 1e3,
                   "torch_nn_ms": theirs * 1e3, "ratio": theirs / ours}  # fmt: skip
            if T <= 100:  # the step loop, for scale
                loop = copy.deepcopy(layer)
                loop.impl = "reference"
                row["reference_ms"] = timed(training_step(loop, x), repeats, device) * 1e3
            rows.append(row)
    B, H = (8, 64) if quick else (32, 256)
    for T in (256, 1024) if quick else (256, 1024, 4096, 16384):
        x = torch.randn(B, T, H, device=device)
        row = {"part": "scan", "B": B, "T": T, "H": H}
        for label, cell, impl in (("mingru_scan", "mingru", "scan"),
                                  ("mingru_loop", "mingru", "reference"),
                                  ("gru_auto", "gru", "auto")):  # fmt: skip
            if label == "mingru_loop" and T > 4096:
                continue
            torch.manual_seed(0)
            layer = Recurrent.from_config(RNNConfig(cell, H, impl=impl), H).to(device)
            n = repeats if T <= 1024 else 3
            row[label + "_ms"] = timed(training_step(layer, x), n, device) * 1e3
            row[label + "_impl"] = layer.impl_used
        rows.append(row)
    return rows


# ---- 5. training by the Trainer --------------------------------------------------------


def training(device: torch.device, quick: bool) -> list[dict]:
    from rnnkit.algorithms import TBPTT
    from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, TrainConfig
    from rnnkit.models import build_model
    from rnnkit.training import Trainer, load_run, resume, stream_batches

    torch.manual_seed(0)
    V = 40
    text = torch.tensor([(i * 7 + i // 13) % V for i in range(40_000)])  # a learnable stream
    hidden, steps = (32, 10) if quick else (128, 40)
    config = ManyToManyConfig(InputConfig("tokens", V, 32), HeadConfig("softmax", V),
                              RNNConfig("lstm", hidden, 2))  # fmt: skip
    model = build_model(config)
    train = stream_batches(text[:36_000], batch_size=32, seq_len=64)
    val = stream_batches(text[36_000:], batch_size=8, seq_len=64)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cfg = TrainConfig(steps=steps, lr=3e-3, eval_every=steps // 2,
                          checkpoint_every=steps // 2, progress=False)  # fmt: skip
        start = time.perf_counter()
        result = Trainer(model, TBPTT(k1=32, k2=64), cfg, run_dir=run_dir,
                         device=device).fit(train, val)  # fmt: skip
        seconds = time.perf_counter() - start
        trained = next(model.parameters()).device
        run = load_run(run_dir)  # on the CPU
        ids = text[:200].view(4, 50)
        model.eval()
        with torch.no_grad():
            on_device, _ = model(ids.to(device))
            on_cpu, _ = run.model(ids)
        diff = rel_diff(on_cpu, on_device)
        rows.append({"case": "train on device, load on CPU", "status": result.status,
                     "trained_on": str(trained), "seconds": seconds,
                     "best_val": result.best, "step": result.step,
                     "cpu_vs_device": diff,
                     "ok": result.status == "completed" and diff < 1e-4})  # fmt: skip
        try:
            again = resume(run_dir, train, val, steps=steps + steps // 2, device=device)
            rows.append({"case": "resume on device", "status": again.status,
                         "ok": again.status == "completed"})
        except Exception as err:  # noqa: BLE001
            rows.append({"case": "resume on device", "ok": False,
                         "error": f"{type(err).__name__}: {err}"[:300]})
    return rows


# ---- the run ------------------------------------------------------------------------------

PARTS = {"equivalence": equivalence, "dtypes": dtypes, "compile": compiled, "speed": speed,
         "training": training}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="fewer cells and sizes")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--out", type=Path, default=None, help="write every row as JSON here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    info = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else
            platform.processor() or platform.machine(), "torch": torch.__version__,
            "python": platform.python_version()}  # fmt: skip
    print(json.dumps(info), flush=True)
    results, failed = {"info": info}, []
    for name in args.parts.split(","):
        start = time.perf_counter()
        try:
            rows = PARTS[name](device, args.quick)
        except Exception:  # noqa: BLE001 - one broken part must not hide the others
            rows = [{"ok": False, "error": traceback.format_exc()[-1500:]}]
        results[name] = rows
        print(f"\n== {name} ({time.perf_counter() - start:.1f} s)", flush=True)
        for row in rows:
            print("  " + json.dumps(row, default=str), flush=True)
            if row.get("ok") is False:
                failed.append((name, row))
        if args.out:  # after every part: a run cut short keeps what it measured
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\n{len(failed)} failed check(s)" + "".join(f"\n  {n}: {r}" for n, r in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
