"""The issue-15 forecasting table from benchmarks/results/apps_series.json: per series, the
rnnkit 5-seed mean and worst against every baseline of the same runs (MASE at lead 1 and the
mean over lead times, sMAPE mean, 90% interval coverage at lead 1).

    .venv/bin/python benchmarks/apps_series.py fc-sunspots@0 ... fc-sunspots@4   # the runs
    .venv/bin/python benchmarks/forecast_table.py [fc-sunspots fc-co2 ...]      # the table
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "apps_series.json"


def table(base: str, data: dict) -> str:
    runs = [v["result"] for k, v in sorted(data.items()) if k.partition("@")[0] == base]
    if not runs:
        return f"{base}: no runs\n"
    H = len(runs[0]["metrics"]["rnnkit"])
    period = runs[0]["split"].get("period")
    lines = [f"{base} ({len(runs)} seeds, horizon {H}, period {period})", "",
             "| method | MASE h=1 mean (worst) | MASE mean over h (worst) | sMAPE mean over h |",
             "|---|---|---|---|"]  # fmt: skip
    for method in runs[0]["metrics"]:
        h1 = [r["metrics"][method][0]["mase"] for r in runs if method in r["metrics"]]
        over = [r["mean_over_leads"][method]["mase"] for r in runs if method in r["metrics"]]
        sm = [r["mean_over_leads"][method]["smape"] for r in runs if method in r["metrics"]]
        if None in h1 + over:
            lines.append(f"| {method} | failed | failed | |")
            continue
        lines.append(f"| {method} | {np.mean(h1):.3f} ({max(h1):.3f}) | "
                     f"{np.mean(over):.3f} ({max(over):.3f}) | {np.mean(sm):.2f} |")  # fmt: skip
    lines.append("")
    for what, get in (("h=1", lambda r, m: r["metrics"][m][0]["mase"]),
                      ("over h", lambda r, m: r["mean_over_leads"][m]["mase"])):
        # the target's baselines: seasonal naive, AR, AutoARIMA, AutoETS (not persistence)
        base_scores = {m: get(runs[0], m) for m in runs[0]["metrics"]
                       if m not in ("rnnkit", "persistence") and get(runs[0], m) is not None}
        best = min(base_scores, key=base_scores.get)
        ours = float(np.mean([get(r, "rnnkit") for r in runs]))
        verdict = "met" if ours < base_scores[best] else "missed"
        lines.append(f"{what}: rnnkit mean {ours:.4f} against the best baseline {best} "
                     f"{base_scores[best]:.4f}: {verdict}  ")  # fmt: skip
    cov = [r["interval"]["per_horizon"][0]["coverage"] for r in runs]
    lines.append(f"\n90% interval coverage at h=1: {' / '.join(f'{c:.2f}' for c in cov)}")
    per_seed = [(r["metrics"]["rnnkit"][0]["mase"], r["mean_over_leads"]["rnnkit"]["mase"],
                 r["split"].get("model") or {}) for r in runs]  # fmt: skip
    kept = [f"{a:.3f} / {b:.3f} {m.get('chosen', 'network')}"
            + (f" on {m['classical']}" if m.get("chosen") == "hybrid" else "")
            + (f" w={m['weight']:g}" if m.get("chosen") == "hybrid" and "weight" in m
               and not isinstance(m["weight"], list) else "")
            + (f" +ARIMA mean at {sum(m['arima_mean']['leads'])} leads"
               if m.get("chosen") == "hybrid" and isinstance(m.get("arima_mean"), dict) else "")
            for a, b, m in per_seed]  # fmt: skip
    lines.append(f"per seed, rnnkit MASE h=1 / over h, and the model kept: {'; '.join(kept)}\n")
    return "\n".join(lines)


def main(bases: list[str]) -> None:
    data = json.loads(RESULTS.read_text())
    prefixes = ("fc-", "ens-", "auto-", "cv-", "cb-", "lw-", "am-")
    bases = bases or sorted({k.partition("@")[0] for k in data if k.startswith(prefixes)})
    for base in bases:
        print(table(base, data))


if __name__ == "__main__":
    main(sys.argv[1:])
