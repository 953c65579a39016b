"""The sections of a text run's report.html, from the run directory's files alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...record import run_record
from ...training.report import Report, line_plot

PROFILE_LAGS = (0, 10, 50, 100)  # the gradient-profile lags the table shows
MIN_LR_RATIO = 0.1  # the cosine's floor, a fraction of --lr


def sections(r: Report, run: Any, analysis: dict[str, Any]) -> None:
    """Result, configuration, data, loss, throughput, samples, gradient through time, files."""
    run_dir = Path(run.path)
    record = run_record(run.extra)
    options, data = record.get("options", {}), record.get("data", {})
    unit = data.get("unit", "char")
    ev = analysis.get("evaluation", {})
    fit = analysis.get("fit", {})
    train_logs = run.evals("train")
    val_logs = run.evals("val")

    r.heading("Result")
    speed = [m.get("tokens_per_s", 0.0) for m in train_logs if m.get("tokens_per_s")]
    mean_speed = sum(speed) / len(speed) if speed else float("nan")
    r.table(
        {
            f"validation loss (nats/{unit})": ev.get(f"nats_per_{unit}", float("nan")),
            f"validation bits/{unit}": ev.get(f"bits_per_{unit}", float("nan")),
            "validation perplexity": ev.get("perplexity", float("nan")),
            "validation tokens": ev.get("tokens", 0),
            "steps": fit.get("steps", run.step or 0),
            "training time (s)": round(fit.get("seconds", 0.0), 1),
            f"mean throughput ({unit}s/s)": round(mean_speed) if speed else "",
            "how training ended": fit.get("message", ""),
        }
    )
    r.paragraph(
        "Validation loss: the whole validation split read statefully in up to 16 contiguous "
        "streams (each token predicted from all the text before it in its stream), with the "
        "weights that did best at the periodic validation checks.",
        muted=True,
    )

    r.heading("Configuration")
    model_cfg = run.model_config
    r.table(
        {
            **{k: "" if v is None else v for k, v in options.items()},
            "data": options.get("data") or "shakespeare (the default)",
            "learning-rate schedule": schedule_text(options),
            "model": f"{type(run.model).__name__}: embedding {model_cfg.input.embedding_dim} -> "
            f"{model_cfg.rnn.num_layers} x {model_cfg.rnn.cell} {model_cfg.rnn.hidden_size} -> "
            f"softmax {model_cfg.head.output_size}",
            "parameters": sum(p.numel() for p in run.model.parameters()),
            "gradient algorithm": str(run.algorithm),
        }
    )

    r.heading("Data")
    r.table({k: v for k, v in data.items() if k != "sha256"})

    r.heading("Loss")
    seq_len = options.get("seq_len", 128)
    window = min(max(seq_len, 4 * seq_len), 512)
    if train_logs:
        series = {"train": ([m["step"] for m in train_logs], [m["loss"] for m in train_logs])}
        if val_logs:
            series["validation"] = ([m["step"] for m in val_logs], [m["loss"] for m in val_logs])
        r.figure(
            line_plot(series, xlabel="step", ylabel=f"loss (nats/{unit})"),
            "Training loss (mean over each logging window) and validation loss "
            f"(windows of {window} {unit}s from a zero state) by step",
        )
        times = {
            "train": ([m["time"] for m in train_logs], [m["loss"] for m in train_logs]),
        }
        if val_logs:
            times["validation"] = ([m["time"] for m in val_logs], [m["loss"] for m in val_logs])
        r.figure(
            line_plot(times, xlabel="seconds", ylabel=f"loss (nats/{unit})"),
            "The same against wall-clock time",
        )
    else:
        r.paragraph("No training steps were logged.")

    r.heading("Throughput")
    if speed:
        steps = [m["step"] for m in train_logs if m.get("tokens_per_s")]
        r.figure(
            line_plot({"throughput": (steps, speed)}, xlabel="step", ylabel=f"{unit}s / s"),
            f"Training throughput; mean {mean_speed:,.0f} {unit}s/s (forward, backward and "
            "update; machine shared with other work, so it varies)",
        )

    mach = analysis.get("machine")
    if mach:
        r.table(
            {
                "CPUs": mach.get("cpus"),
                "torch threads": mach.get("torch_threads"),
                "recurrent implementation (training)": mach.get("recurrent_impl", ""),
                "load average at start (other work)": mach.get("load_average_at_start"),
                "load average at end": mach.get("load_average_at_end"),
                "torch": mach.get("torch"),
            }
        )

    r.heading("Samples")
    samples = analysis.get("samples", {})
    for temp, text in samples.items():
        label = "greedy (temperature 0)" if float(temp) == 0 else f"temperature {temp}"
        r.pre(text, caption=f"{label}, from an empty prompt")

    r.heading("Gradient through time")
    prof = analysis.get("gradient_profile")
    if prof:
        T = prof["steps"]
        series = {
            f"layer {k + 1}": (list(range(T)), layer["norms"])
            for k, layer in enumerate(prof["layers"])
        }
        r.figure(
            line_plot(series, xlabel="steps back from the predicted character (k)",
                      ylabel="||dL_T / dh_(T-1-k)||", logy=True),
            f"Gradient of the last step's loss reaching each earlier hidden state, mean over "
            f"{prof['batch']} validation windows of {T} {unit}s",
        )  # fmt: skip
        rows = []
        for k, layer in enumerate(prof["layers"]):
            rows.append(
                [f"layer {k + 1}", *(layer["relative"].get(str(lag), "") for lag in PROFILE_LAGS)]
            )
        r.table(rows, header=["", *(f"{lag} back" for lag in PROFILE_LAGS)])
        r.paragraph(
            "Relative to the gradient at the last step: how much of the loss gradient reaches "
            "10, 50 and 100 steps back. A fast fall is the vanishing gradient; truncated BPTT "
            f"backpropagated {options.get('seq_len', '?')} steps at most during training.",
            muted=True,
        )

    r.heading("Files")
    r.table(
        sorted(
            [[p.name, p.stat().st_size if p.is_file() else "dir"] for p in run_dir.iterdir()
             if not p.name.startswith(".")]
        ),
        header=["file", "bytes"],
    )  # fmt: skip


def schedule_text(options: dict) -> str:
    """The learning-rate schedule in words (runs from before --schedule used the cosine)."""
    kind = options.get("schedule", "cosine")
    if kind == "constant":
        return "constant"
    over = (
        f"{options.get('steps')} steps"
        if options.get("steps")
        else f"the {options.get('minutes')}-minute budget"
    )
    if kind == "wsd":
        return f"constant, then linear to {MIN_LR_RATIO:g} x lr over the last fifth of {over}"
    return f"cosine over {over} to {MIN_LR_RATIO:g} x lr"

