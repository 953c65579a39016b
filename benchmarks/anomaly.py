"""Anomaly detection against real labels: rnnkit's default detector against the matrix profile
and the persistence residual, in the same run, over 5 seeds.

    PYTHONPATH=src .venv/bin/python benchmarks/anomaly.py [--seeds 0,1,2,3,4] [--table]

Labelled series that ship with aeon (offline):
- kdd135: KDD-TSAD 135 (UCR anomaly archive, InternalBleeding16): 7,501 points, the first
  1,200 anomaly-free (the forecaster trains on them), one labelled event (4187-4198).
- ecg-a, ecg-test: aeon's ecg-diff-count-3 (GutenTAG-generated ECG, 10,000 points, 3 events of
  100 points each): the forecaster trains on its anomaly-free series (TRAIN_NA) and checks
  TRAIN_A and TEST. ecg-test was held out: not looked at while the window rule was chosen
  (on kdd135 and ecg-a, seed 0).
(Daphnet_S06R02E0 ships too, but its labels are all 0: nothing to score; no other labelled
anomaly series ships offline.)

Held out, never looked at while the detector was chosen: anomalies injected into real series
from the forecasting registry (`inject_heldout`, seeded by the benchmark seed):
- co2-inj: statsmodels' weekly co2 (2,284 points, period 52), the first 40% clean for
  training;
- temps-inj: vega_datasets' hourly Seattle temperatures, the first 4,000 hours (period 24),
  the first 40% clean for training.
In the other 60%, three events at random places 6·P apart: a spike (one point ±6·d), a
level shift (P/2..P points + or - 4·d) and a distorted period (one period P played backwards),
d being the std of the training part's first differences and P the series' period. Every
injected point is labelled.

Per seed: `rnnkit train forecast` on the anomaly-free part (skipped when RUNS/NAME-sS has a
finished run), then `rnnkit detect-anomalies RUN --data CSV --labels label --no-evaluate`
(the default rule, or --method; the baselines come from the same command; for ecg-a also on
TRAIN_NA itself, whose flags are the false alarms on the training part). Each result is one
line of benchmarks/results/anomaly.jsonl; --table writes benchmarks/results/anomaly.md from the
default rule's latest lines.
Slow on a shared 2-core machine: minutes per run. Not a test.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from rnnkit.cli import app

ROOT = Path(__file__).resolve().parent
JSONL = ROOT / "results" / "anomaly.jsonl"
TABLE = ROOT / "results" / "anomaly.md"
RUNS = Path("runs") / "bench-anomaly"  # relative to the working directory; runs/ is ignored
# data set -> (training series, series checked); ecg-test is the held-out one
SETS = {"kdd135": ("kdd135-train", "kdd135"), "ecg-a": ("ecg-train", "ecg-a"),
        "ecg-test": ("ecg-train", "ecg-test"), "co2-inj": ("co2-train", "co2-inj"),
        "temps-inj": ("temps-train", "temps-inj")}  # fmt: skip
# held-out name -> (registry series, points used, period)
HELDOUT = {"co2-inj": ("co2", None, 52), "temps-inj": ("seattle-temps", 4000, 24)}
METHODS = ("window-discord", "window", "discord")  # the default first, then each part alone
TRAIN_SHARE = 0.4  # of a held-out series: the clean part the forecaster trains on


def inject_heldout(values: np.ndarray, period: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One spike, one level shift and one period played backwards at random, non-overlapping
    places after the training part of (N,) values -> (values, 0/1 labels), both (N,)."""
    rng = np.random.default_rng(seed)
    v = np.array(values, dtype=np.float64)
    n0, P = int(len(v) * TRAIN_SHARE), period
    d = float(np.std(np.diff(v[:n0])))
    # 6 periods apart: more than the 2 windows (the window is 2P here) under which rnnkit and
    # the matrix profile merge alarms, so one alarm cannot cover two events
    slots = np.arange(n0 + P, len(v) - 2 * P, 6 * P)
    at = rng.choice(slots, 3, replace=False)
    sign = rng.choice([-1.0, 1.0], 2)
    v[at[0]] += sign[0] * 6 * d
    width = int(rng.integers(P // 2, P + 1))
    v[at[1] : at[1] + width] += sign[1] * 4 * d
    v[at[2] : at[2] + P] = v[at[2] : at[2] + P][::-1].copy()
    labels = np.zeros(len(v), dtype=int)
    for a, n in zip(at, (1, width, P), strict=True):
        labels[a : a + n] = 1  # the whole reversed period: its middle moves little
    return v, labels


def write_csvs(seed: int) -> None:
    """RUNS/*.csv (t, value, label) from aeon's files, and the held-out series with `seed`'s
    injections."""
    import aeon
    from aeon.datasets import load_kdd_tsad_135

    RUNS.mkdir(parents=True, exist_ok=True)
    x, y = load_kdd_tsad_135()

    def write(name: str, v, lab) -> None:
        pd.DataFrame({"t": np.arange(len(v)), "value": np.asarray(v, float),
                      "label": np.asarray(lab).astype(int)}).to_csv(RUNS / f"{name}.csv",
                                                                    index=False)  # fmt: skip

    from rnnkit.data.series import load_series_source

    for name, (source, points, period) in HELDOUT.items():
        v = load_series_source(source, None, None, None).values[:points]
        n0 = int(len(v) * TRAIN_SHARE)
        write(SETS[name][0], v[:n0], np.zeros(n0))
        write(f"{name}-s{seed}", *inject_heldout(v, period, seed))
    write("kdd135", x, y)
    write("kdd135-train", x[:1200], y[:1200])
    ecg = Path(aeon.__file__).parent / "datasets" / "data" / "UnitTest"
    for name, f in (("ecg-train", "TRAIN_NA"), ("ecg-a", "TRAIN_A"), ("ecg-test", "TEST")):
        d = pd.read_csv(ecg / f"ecg-diff-count-3_{f}.csv")
        write(name, d["value-0"], d["is_anomaly"])


def invoke(args: list[str]) -> float:
    t0 = time.perf_counter()
    r = CliRunner().invoke(app, args)
    if r.exit_code != 0:
        raise SystemExit(f"rnnkit {' '.join(args)} failed ({r.exit_code}): {r.output[-2000:]}")
    return time.perf_counter() - t0


def train(name: str, seed: int) -> tuple[Path, list[str]]:
    """The forecast run of `name`'s training series, trained unless RUNS has it finished."""
    run_dir = RUNS / f"{SETS[name][0]}-s{seed}"
    train_args = ["train", "forecast", "--data", str(RUNS / f"{SETS[name][0]}.csv"),
                  "--target", "value", "--time", "t", "--threads", "1", "--no-auto-baselines",
                  "--seed", str(seed), "--out", str(run_dir), "--overwrite", "--quiet"]  # fmt: skip
    if not (run_dir / "results.json").exists():
        invoke(train_args)
    return run_dir, train_args


def run(name: str, seed: int, method: str | None) -> dict:
    run_dir, train_args = train(name, seed)
    checked = SETS[name][1]
    out = RUNS / f"{name}-s{seed}-{method or 'default'}-anomalies"
    if name in HELDOUT:
        checked = f"{checked}-s{seed}"  # each seed injects its own anomalies
    args = ["detect-anomalies", str(run_dir), "--data", str(RUNS / f"{checked}.csv"),
            "--target", "value", "--time", "t", "--labels", "label", "--no-evaluate",
            "--threads", "1", "--quiet", "--out", str(out),
            *(() if method is None else ("--method", method))]  # fmt: skip
    seconds = invoke(args)
    res = json.loads((out / "anomalies.json").read_text())
    n_train = len(pd.read_csv(RUNS / f"{SETS[name][0]}.csv"))
    if name.startswith("ecg"):  # other series than TRAIN_NA: check TRAIN_NA itself (once)
        train_flags = None
        if name == "ecg-a":
            own = RUNS / f"ecg-train-s{seed}-{method or 'default'}-anomalies"
            invoke(["detect-anomalies", str(run_dir), "--data", str(RUNS / "ecg-train.csv"),
                    "--target", "value", "--time", "t", "--no-evaluate", "--threads", "1",
                    "--quiet", "--out", str(own),
                    *(() if method is None else ("--method", method))])  # fmt: skip
            train_flags = len(json.loads((own / "anomalies.json").read_text())["flagged"])
    else:  # kdd135 and the held-out series begin with their training series
        train_flags = sum(f["index"] < n_train for f in res["flagged"])
    return {"data": name, "seed": seed, "train": "rnnkit " + " ".join(train_args),
            "command": "rnnkit " + " ".join(args), "seconds": round(seconds, 1),
            "date": time.strftime("%Y-%m-%d"), "threshold": res["threshold"],
            "method": res["method"], "train_points": n_train, "train_flags": train_flags,
            "labelled": res["labelled"]}  # fmt: skip


def table(rows: list[dict]) -> str:
    """Markdown: per data set and detector, over seeds: event F1 mean (worst), event P and
    R, alarm events, point P/R/F1, points flagged (means); for rnnkit, its flags on the
    training part when the series checked begins with it."""
    out = ["| data | detector | seeds | event F1 mean (worst) | event P | event R | alarm events "
           "| true events | point P | point R | point F1 | points flagged | flags on training "
           "part |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in SETS:
        got = [r for r in rows if r["data"] == name]
        if not got:
            continue
        for det in got[0]["labelled"]:
            ev = [r["labelled"][det]["events"] for r in got]
            pt = [r["labelled"][det]["points"] for r in got]
            f1 = [e["f1"] for e in ev]
            tf = "-"
            if det == "rnnkit" and all(r.get("train_flags") is not None for r in got):
                tf = f"{np.mean([r['train_flags'] for r in got]):.1f} of {got[0]['train_points']}"
            out.append(f"| {name} | {det.replace('m=', 'm = ')} | {len(got)} | "
                       f"{np.mean(f1):.2f} ({min(f1):.2f}) | "
                       f"{np.mean([e['precision'] for e in ev]):.2f} | "
                       f"{np.mean([e['recall'] for e in ev]):.2f} | "
                       f"{np.mean([e['alarm_events'] for e in ev]):.1f} | "
                       f"{ev[0]['true_events']} | {np.mean([p['precision'] for p in pt]):.2f} | "
                       f"{np.mean([p['recall'] for p in pt]):.2f} | "
                       f"{np.mean([p['f1'] for p in pt]):.2f} | "
                       f"{np.mean([p['flagged'] for p in pt]):.0f} | {tf} |")  # fmt: skip
    return "\n".join(out) + "\n"


def ablation(rows: list[dict]) -> str:
    """Markdown: rnnkit's flags per data set and --method, over seeds: event F1 mean (worst),
    alarm events and point F1 (means)."""
    out = ["| data | method | seeds | event F1 mean (worst) | alarm events | point F1 |",
           "|---|---|---|---|---|---|"]  # fmt: skip
    for name in SETS:
        for method in METHODS:
            got = [r["labelled"]["rnnkit"] for r in rows
                   if r["data"] == name and r.get("method") == method]  # fmt: skip
            if got:
                f1 = [g["events"]["f1"] for g in got]
                out.append(f"| {name} | {method} | {len(got)} | {np.mean(f1):.2f} "
                           f"({min(f1):.2f}) | "
                           f"{np.mean([g['events']['alarm_events'] for g in got]):.1f} | "
                           f"{np.mean([g['points']['f1'] for g in got]):.2f} |")  # fmt: skip
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--data", default=",".join(SETS))
    p.add_argument("--table", action="store_true", help="only write the table")
    p.add_argument("--method", help="detect-anomalies --method (default: its default)")
    p.add_argument("--train-only", action="store_true", help="only train the forecast runs")
    a = p.parse_args()
    if not a.table:
        for seed in (int(s) for s in a.seeds.split(",")):
            write_csvs(seed)
            for name in a.data.split(","):
                if a.train_only:
                    train(name, seed)
                    continue
                row = run(name, seed, a.method)
                JSONL.parent.mkdir(parents=True, exist_ok=True)
                with JSONL.open("a") as f:
                    f.write(json.dumps(row, sort_keys=True) + "\n")
                rk = row["labelled"]["rnnkit"]["events"]
                print(f"{name} seed {seed}: rnnkit event F1 {rk['f1']:.2f} "
                      f"({rk['alarm_events']} alarm events) in {row['seconds']} s", flush=True)
    rows = [json.loads(line) for line in JSONL.read_text().splitlines() if line.strip()]
    # the latest line per (data, seed, method) (rows without a method: session 4's)
    latest = {(r["data"], r["seed"], r.get("method")): r for r in rows}
    default = [r for r in latest.values() if r.get("method") == METHODS[0]]
    tmp = TABLE.with_suffix(".md.tmp")
    tmp.write_text(table(default) + "\nAblation, rnnkit's flags by --method:\n\n"
                   + ablation(list(latest.values())))
    tmp.replace(TABLE)
    print(TABLE.read_text())


if __name__ == "__main__":
    main()
