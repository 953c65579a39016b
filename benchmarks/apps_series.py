"""Quality figures for the series applications: run the CLI commands, collect the results.

    .venv/bin/python benchmarks/apps_series.py [NAME ...]      # default: all
    NAME: a key of ENTRIES below (jv, bm, sunspots, co2, anomalies, ...)

Each entry runs one `rnnkit ...` command (the real typer commands, in-process) and merges its
results.json into benchmarks/results/apps_series.json with the command, the date and the
wall-clock time. Slow on a shared 2-core machine: minutes per entry. Not a test.
"""

from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from rnnkit.cli import app

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "apps_series.json"
RUNS = Path("runs") / "bench-series"  # relative to the working directory; runs/ is ignored

# the classification entries are the default commands (seeds via NAME@SEED, e.g. bm@3)
ENTRIES: dict[str, list[str]] = {
    "jv": ["train", "sequence-classify", "--data", "JapaneseVowels"],
    "bm": ["train", "sequence-classify", "--data", "BasicMotions"],
    "gunpoint": ["train", "sequence-classify", "--data", "GunPoint"],
    "italy": ["train", "sequence-classify", "--data", "ItalyPowerDemand"],
    "sunspots": ["train", "forecast", "--data", "sunspots"],
    "sunspots-s1": ["train", "forecast", "--data", "sunspots", "--seed", "1"],
    "sunspots-s2": ["train", "forecast", "--data", "sunspots", "--seed", "2"],
    "sunspots-h5": [
        "train",
        "forecast",
        "--data",
        "sunspots",
        "--horizon",
        "5",
        "--strategy",
        "direct",
    ],
    "co2": ["train", "forecast", "--data", "co2", "--horizon", "52", "--steps", "800"],
    "co2-h1": ["train", "forecast", "--data", "co2", "--steps", "800"],
    # issue 15: the default recipe (period detected, AutoARIMA/AutoETS in the same run),
    # seeds via NAME@SEED; nile was never looked at while choosing anything
    # (--members 1 --no-refit: one model, the recipe before the ensemble became the default)
    "fc-sunspots": ["train", "forecast", "--data", "sunspots", "--horizon", "5", "--threads", "1",
                    "--members", "1", "--no-refit"],
    "fc-co2": ["train", "forecast", "--data", "co2", "--horizon", "13", "--threads", "1",
               "--members", "1", "--no-refit"],
    "fc-temps": ["train", "forecast", "--data", "seattle-temps", "--horizon", "24",
                 "--threads", "1", "--members", "1", "--no-refit"],
    "fc-msft": ["train", "forecast", "--data", "stocks", "--series", "MSFT", "--horizon", "3",
                "--threads", "1", "--members", "1", "--no-refit"],
    "fc-nile": ["train", "forecast", "--data", "nile", "--horizon", "3", "--threads", "1",
                "--members", "1", "--no-refit"],
    # the default: 5 members averaged, sharing the 1500-step budget
    "ens-sunspots": ["train", "forecast", "--data", "sunspots", "--horizon", "5",
                     "--threads", "1"],
    "ens-nile": ["train", "forecast", "--data", "nile", "--horizon", "3", "--threads", "1"],
    "ens-co2": ["train", "forecast", "--data", "co2", "--horizon", "13", "--threads", "1"],
    "ens-temps": ["train", "forecast", "--data", "seattle-temps", "--horizon", "24",
                  "--threads", "1"],
    # a real labelled anomaly that ships with aeon: KDD-TSAD 135 (UCR anomaly archive,
    # InternalBleeding16; 7,501 points, anomaly-free first 1,200, one labelled event at
    # 4187-4198); the model trains on the anomaly-free part, then checks the whole series
    # (no AutoETS: the detected period, 183, makes its state-space fit take many minutes)
    "kdd135": ["train", "forecast", "--data", str(RUNS / "kdd135-train.csv"), "--target",
               "value", "--time", "t", "--threads", "1", "--no-auto-baselines"],
    "anomalies-kdd135": ["detect-anomalies", str(RUNS / "kdd135"), "--data",
                         str(RUNS / "kdd135.csv"), "--target", "value", "--time", "t",
                         "--labels", "label", "--false-alarm-rate", "0.001", "--no-evaluate"],
    "anomalies-co2": ["detect-anomalies", str(RUNS / "co2-h1")],
    "anomalies": ["detect-anomalies", str(RUNS / "sunspots")],
}

# the default after session 4, the ens-* commands re-run under new names (the session-3
# results stay): the network alone or the hybrid, whichever does better on validation
ENTRIES.update({"auto-" + k[4:]: v for k, v in list(ENTRIES.items()) if k.startswith("ens-")})
# session 5: the hybrid's classical part chosen by cross-validation, its correction weight on
# validation; the same commands again, and elnino (monthly Pacific sea surface temperatures
# 1950-2010, statsmodels), held out: nothing was chosen looking at it
ENTRIES.update({"cv-" + k[4:]: v for k, v in list(ENTRIES.items()) if k.startswith("ens-")})
ENTRIES["cv-elnino"] = ["train", "forecast", "--data", str(RUNS / "elnino.csv"), "--target",
                        "temperature", "--time", "month", "--horizon", "12", "--threads", "1"]
# session 6: the mean and median of the fitted candidates as two more candidates of the
# cross-validation; the same commands again
ENTRIES.update({"cb-" + k[3:]: v for k, v in list(ENTRIES.items()) if k.startswith("cv-")})
# session 7: a lead time can take its own classical candidate when it beats the best one over
# all leads there on every fold (--hybrid-per-lead; the pl-temps runs of 2026-12-01 were made
# while it was the default, without the flag); the same commands with it
ENTRIES.update({"pl-" + k[3:]: [*v, "--hybrid-per-lead"] for k, v in list(ENTRIES.items())
                if k.startswith("cb-")})
# session 8: the correction's share per lead time, the least-squares slope on validation
# (--hybrid-weight lead); the same commands with it
ENTRIES.update({"lw-" + k[3:]: [*v, "--hybrid-weight", "lead"] for k, v in list(ENTRIES.items())
                if k.startswith("cb-")})

# session 8 (second helper): per lead, the hybrid or its mean with AutoARIMA, on validation
# (--hybrid-arima-mean; found on seattle-temps' test part, so the other series are the test)
ENTRIES.update({"am-" + k[3:]: [*v, "--hybrid-arima-mean"] for k, v in list(ENTRIES.items())
                if k.startswith("cb-")})
# --hybrid-arima-mean became the default at session 8's merge: every earlier forecast
# entry keeps the command it measured (the rule off)
for _k, _v in list(ENTRIES.items()):
    if _v[:2] == ["train", "forecast"] and not _k.startswith("am-"):
        ENTRIES[_k] = [*_v, "--no-hybrid-arima-mean"]

# session 16: the default (am-*) on hourly temperatures nothing was chosen on: San Francisco's
# 2010 (vega_datasets' sf-temps), and Seattle's first 5,956 hours, which end where the
# validation tail of session 8's seattle-temps runs began (write_temps_early): the rule
# --hybrid-arima-mean was found on seattle-temps' test part, and neither part is in this one
TEMPS_EARLY = 5956  # = 8,759 - 1,752 test points - 1,051 validation points (val_fraction 0.15)
ENTRIES["am-sftemps"] = ["train", "forecast", "--data", "sf-temps", "--horizon", "24",
                         "--threads", "1", "--hybrid-arima-mean"]
ENTRIES["am-temps-early"] = ["train", "forecast", "--data", str(RUNS / "seattle-temps-early.csv"),
                             "--target", "temp", "--time", "date", "--horizon", "24",
                             "--threads", "1", "--hybrid-arima-mean"]


def entry_args(name: str) -> list[str]:
    """ENTRIES[name], or ENTRIES[base] + --seed N for a name written base@N."""
    base, _, seed = name.partition("@")
    if base not in ENTRIES or (seed and not seed.isdigit()):
        raise SystemExit(f"unknown entry {name!r}; known: {', '.join(ENTRIES)} (or NAME@SEED)")
    return list(ENTRIES[base]) + (["--seed", seed] if seed else [])


def write_kdd135() -> None:
    """RUNS/kdd135.csv (t, value, label) and its anomaly-free first 1,200 points."""
    from aeon.datasets import load_kdd_tsad_135

    x, y = load_kdd_tsad_135()
    RUNS.mkdir(parents=True, exist_ok=True)
    rows = [f"{t},{float(v)!r},{int(a)}" for t, (v, a) in enumerate(zip(x, y, strict=True))]
    (RUNS / "kdd135.csv").write_text("t,value,label\n" + "\n".join(rows) + "\n")
    train = [r.rsplit(",", 1)[0] for r in rows[:1200]]
    (RUNS / "kdd135-train.csv").write_text("t,value\n" + "\n".join(train) + "\n")


def write_temps_early() -> None:
    """RUNS/seattle-temps-early.csv: the first TEMPS_EARLY hours of seattle-temps, the
    lines of vega_datasets' file as they are."""
    import importlib.resources

    path = importlib.resources.files("vega_datasets") / "_data" / "seattle-temps.csv"
    lines = path.read_text().splitlines()
    assert len(lines) == 8760 and lines[0] == "date,temp", len(lines)  # TEMPS_EARLY's split
    RUNS.mkdir(parents=True, exist_ok=True)
    (RUNS / "seattle-temps-early.csv").write_text("\n".join(lines[: TEMPS_EARLY + 1]) + "\n")


def write_elnino() -> None:
    """RUNS/elnino.csv (month as a decimal year, temperature): statsmodels' year-by-month
    table of El Nino sea surface temperatures as one monthly series."""
    from statsmodels.datasets import elnino

    table = elnino.load_pandas().data
    rows = [f"{year + m / 12:.4f},{float(row.iloc[m + 1])!r}"
            for year, (_, row) in zip(table["YEAR"].astype(int), table.iterrows(), strict=True)
            for m in range(12)]  # fmt: skip
    RUNS.mkdir(parents=True, exist_ok=True)
    (RUNS / "elnino.csv").write_text("month,temperature\n" + "\n".join(rows) + "\n")


# what a forecast entry keeps of its results.json: the tables' figures, not every forecast
KEPT = ("target", "split", "gaps_filled", "metrics", "mean_over_leads", "interval", "notes",
        "fit", "data")


def run(name: str) -> dict:
    args = entry_args(name)
    if "kdd135" in name:
        write_kdd135()
    if "elnino" in name:
        write_elnino()
    if "temps-early" in name:
        write_temps_early()
    out = RUNS / name.replace("@", "-s")
    if not name.startswith("anomalies"):
        args += ["--out", str(out), "--overwrite", "--quiet"]
    t0 = time.perf_counter()
    r = CliRunner().invoke(app, args)
    seconds = time.perf_counter() - t0
    if r.exit_code != 0:
        raise SystemExit(f"{name} failed ({r.exit_code}): {r.output[-2000:]}")
    if name.startswith("anomalies"):
        path = Path(args[1]) / "anomalies" / "anomalies.json"
    else:
        path = out / "results.json"
    result = json.loads(path.read_text())
    result.pop("flagged", None)
    if "one_step" in result:  # a forecast: its per-origin forecasts are in the run directory
        result = {k: v for k, v in result.items() if k in KEPT}
    return {
        "command": "rnnkit " + shlex.join(args),
        "date": time.strftime("%Y-%m-%d"),
        "seconds": round(seconds, 1),
        "machine": f"{platform.machine()}, shared 2-core CPU",
        "result": result,
    }


def memoise_classical_fits() -> None:
    """The forecast task's classical fits (the hybrid's choice and the baselines) depend on
    the series and the split alone, not on --seed: each is computed once per set of arguments
    in this process, and the hybrid's choice and the baselines' forecasts are kept in
    RUNS/fit-cache/ too (pickled, keyed by the arguments and the source of the classical
    code, so an edit there refits; kB to a few MB each: the fitted state-space models, 0.1-0.4
    GB each on seattle-temps, are not kept), so the seeds of one series after the first, in
    this process or a later one, cost their training only (and the hybrid's
    AutoARIMA/AutoETS refitted on the training part is the baseline's)."""
    import hashlib
    import pickle

    import numpy as np

    from rnnkit.models import classical
    from rnnkit.tasks.forecast import hybrid, task

    code = hashlib.sha1(b"".join(Path(m.__file__).read_bytes() for m in (classical, hybrid)))

    def key(v):
        return hashlib.sha1(v.tobytes()).hexdigest() if isinstance(v, np.ndarray) else repr(v)

    cache, on_disk = RUNS / "fit-cache", ("choose", "baseline_forecasts")
    for module, name in ((task, "choose"), (task, "baseline_forecasts"),
                         (classical, "auto_arima"), (classical, "auto_ets")):  # fmt: skip
        fn, done = getattr(module, name), {}

        def memo(*args, _fn=fn, _done=done, _name=name):
            k = tuple(key(a) for a in args)
            if k not in _done:
                digest = hashlib.sha1(repr((code.hexdigest(), k)).encode()).hexdigest()[:20]
                path = cache / f"{_name}-{digest}.pkl"
                if _name in on_disk and path.exists():
                    _done[k] = pickle.loads(path.read_bytes())
                else:
                    _done[k] = _fn(*args)
                if _name in on_disk and not path.exists():
                    cache.mkdir(parents=True, exist_ok=True)
                    try:
                        path.write_bytes(pickle.dumps(_done[k]))
                    except (pickle.PicklingError, TypeError, AttributeError):
                        pass  # kept in this process only
            return _done[k]

        setattr(module, name, memo)


def main(names: list[str]) -> None:
    names = names or list(ENTRIES)
    for name in names:
        entry_args(name)
    memoise_classical_fits()
    for name in names:
        print(f"== {name}: rnnkit {' '.join(entry_args(name))}", flush=True)
        entry = run(name)
        # re-read just before writing: several runners may share the file
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        data[name] = entry
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        tmp = RESULTS.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(RESULTS)
        print(f"done {name} in {entry['seconds']} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
