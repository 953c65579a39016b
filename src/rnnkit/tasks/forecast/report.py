"""The forecast report (from the run directory's files alone) and the plots."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...training.report import finish_series, line_plot, series_axes


def metrics_rows(table: dict[str, list[dict[str, float]]], h: int) -> list[list[Any]]:
    return [[k, v[h - 1]["mae"], v[h - 1]["rmse"], v[h - 1]["mse"], v[h - 1]["mase"],
             v[h - 1].get("smape")] for k, v in table.items()]  # fmt: skip


def write_sections(r, run, results: dict[str, Any]) -> None:
    """The report's sections: split, test metrics per lead time, intervals, plots."""
    series = run.read_json("series")
    r.paragraph(f"{series['name']}, column {series['target']}.")
    r.table({**results["split"], "gaps filled (interpolated)": results["gaps_filled"]})
    H, table = len(results["metrics"]["rnnkit"]), results["metrics"]
    for h in sorted({1, H}):
        r.heading(f"Test metrics, {h} step{'s' if h > 1 else ''} ahead")
        r.table(metrics_rows(table, h), header=("method", "MAE", "RMSE", "MSE", "MASE", "sMAPE"))
    if H > 1:
        r.heading(f"Test metrics, mean over lead times 1-{H}")
        r.table([[k, v["mae"], v["rmse"], v["mase"], v["smape"]]
                 for k, v in results["mean_over_leads"].items()],
                header=("method", "MAE", "RMSE", "MASE", "sMAPE"))  # fmt: skip
    r.paragraph(
        "All methods forecast from the same origins in the test part using only data up to "
        "the origin; baselines are fitted on the training part only. MASE divides by the "
        "in-sample MAE of the one-step naive forecast on the training part.",
        muted=True,
    )
    if results.get("notes"):
        r.paragraph(results["notes"], muted=True)
    level = results["interval"]["level"]
    r.heading(f"{level:.0%} prediction intervals of rnnkit")
    r.table([[c["h"], c["coverage"], c["width"]] for c in results["interval"]["per_horizon"]],
            header=("h", "coverage", "mean width"))  # fmt: skip
    r.figure(test_part_plot(series, results["one_step"], level),
             "test part: one-step forecasts and intervals")  # fmt: skip
    train = [m for m in run.metrics if m.get("split") == "train"]
    val = [m for m in run.evals("val") if "mse" in m]
    curves = {"train mse (scaled)": ([m["step"] for m in train],
                                     [m.get("mse", m["loss"]) for m in train])}  # fmt: skip
    if val:
        curves["val mse (scaled)"] = ([m["step"] for m in val], [m["mse"] for m in val])
    r.figure(line_plot(curves, "step", "mse", logy=True), "training mse")


def test_part_plot(series: dict[str, Any], one_step: dict[str, list], level: float):
    """The observed series around the test part, the one-step forecasts and the interval."""
    fig, ax = series_axes((8, 3.8))
    n_train, n_end = int(series["n_train"]), int(series["n_end"])
    start = max(0, n_train - 2 * (n_end - n_train))
    idx, v = np.asarray(series["index"], float), np.asarray(series["values"], float)
    ax.plot(idx[start:n_end], v[start:n_end], color="k", lw=1, label="observed")
    t1 = np.asarray(one_step["index"], float)
    lo, hi = (np.asarray(one_step[k], float) for k in ("lower", "upper"))
    ax.fill_between(t1, lo, hi, color="C0", alpha=0.25, label=f"{level:.0%} interval")
    ax.plot(t1, one_step["rnnkit"], color="C0", lw=1.5, label="rnnkit")
    methods = [k for k in one_step if k not in ("index", "lower", "upper", "rnnkit")]
    for i, k in enumerate(methods):
        if k.startswith("AR(") or k == "persistence":
            ax.plot(t1, np.asarray(one_step[k], float), lw=0.9, ls="--", color=f"C{i + 1}",
                    label=k)  # fmt: skip
    ax.axvline(idx[n_train], color="grey", lw=0.8)
    return finish_series(fig, ax, series.get("index_label", "step"), series["target"], ncol=3)


def plot_future(f, context: int = 200):
    """A FutureForecast: the last `context` observed values, the forecast and its interval."""
    fig, ax = series_axes((8, 3.6))
    ax.plot(f.history_index[-context:], f.history[-context:], color="k", lw=1, label="observed")
    ax.fill_between(f.index, f.lower, f.upper, color="C0", alpha=0.25,
                    label=f"{f.level:.0%} interval")  # fmt: skip
    ax.plot(f.index, f.mean, color="C0", marker="o", ms=2, label="forecast")
    return finish_series(fig, ax, f.index_label, f.target)
