"""The report blocks several applications draw the same way, on a rnnkit.training.report.Report:

    training_section   how training went: the Trainer's status, train/validation loss curves
    accuracy_section   a classifier against its baselines: table, bars, confusion, val curve
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..training.report import Report, bar_plot, line_plot


def training_section(r: Report, run: Any, fit: Mapping[str, Any]) -> None:
    """How training went: the Trainer's status and the train/validation loss curves."""
    r.heading("Training")
    if fit:
        best = "" if fit.get("best") is None else (
            f"; best validation {fit.get('monitor', 'loss')} {fit['best']:.4g} at step "
            f"{fit['best_step']}")  # fmt: skip
        r.paragraph(f"{fit['status']}: {fit['message']}; {fit['steps']} steps in "
                    f"{fit['seconds']:.0f} s{best}.")  # fmt: skip
    train = [x for x in run.metrics if x.get("split") == "train" and "loss" in x]
    val = [x for x in run.evals("val") if "loss" in x]
    r.figure(line_plot({"train loss": ([x["step"] for x in train], [x["loss"] for x in train]),
                        "val loss": ([x["step"] for x in val], [x["loss"] for x in val])},
                       xlabel="step", ylabel="loss"), "loss")  # fmt: skip


def accuracy_section(
    r: Report, heading: str, header: Sequence[str], rows: Sequence[Sequence[Any]],
    labels: Sequence[str], confusion: Sequence[Sequence[int]], val: Sequence[Mapping] = (),
    baseline: float | None = None,
) -> None:
    """A classifier against its baselines: the table (rows: name, accuracy, ...), their test
    accuracies as bars, the model's confusion matrix, and the validation accuracy during
    training (with the first baseline's test accuracy as a line) when it was measured."""
    r.heading(heading)
    r.table(rows, header=header)
    r.figure(bar_plot({str(row[0]).strip(): row[1] for row in rows}, "test accuracy"),
             "test accuracy, model vs baselines (same split)")  # fmt: skip
    r.heading("Confusion matrix (rows: true class, columns: predicted)")
    r.table([[lab, *row] for lab, row in zip(labels, confusion, strict=True)], header=("", *labels))
    val = [x for x in val if "accuracy" in x]
    if val:
        steps = [x["step"] for x in val]
        curves = {"val accuracy": (steps, [x["accuracy"] for x in val])}
        if baseline is not None:
            curves["baseline (test)"] = (steps, [baseline] * len(val))
        r.figure(line_plot(curves, xlabel="step", ylabel="accuracy", markers=True),
                 "validation accuracy during training")  # fmt: skip
