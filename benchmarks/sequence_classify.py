"""Sequence classification on the UCR/UEA problems shipped inside aeon: the default command
against 1-NN Euclidean, 1-NN DTW and MiniRocket, all computed in the same run.

    PYTHONPATH=src .venv/bin/python benchmarks/sequence_classify.py [--seeds 5] [--jobs 2]
        [NAME ...]       # default: DATASETS below

Each (data set, seed) is one `rnnkit.tasks.sequence_classify.train` with the default options
and --seed S, --threads 1, in its own process (`--jobs` at a time); its results.json lands
in benchmarks/results/sequence_classify.jsonl (one line per run, with the wall time; a run
already there is skipped, so an interrupted sweep resumes). Then the table of
benchmarks/README.md ("Sequence classification that generalises") is printed from the file.
Not a test: minutes per run on a shared 2-core machine.

    ... --results results/sequence_classify.k5.jsonl --previous results/sequence_classify.jsonl \
        --adopt results/sequence_classify.screen.jsonl \
        results/sequence_classify.session11_k5_seed1.jsonl ...

(session 12) the table of another default in its own file: --results; --previous, the
default it replaced (the "previous default" column, and where the seed-0 baselines are
looked up first); --adopt, earlier runs of the same default to take in before anything is
run: rows with 5 members (session 11's), and the screen's `--set ensemble=N` rows (N >= 5),
whose first 5 members are the 5-member run of the same seed (member k is seeded from --seed
and k alone; tests/tasks/test_sequence_classify.py). Each row keeps its "machine".

The baselines do not depend on rnnkit's options: 1-NN ED and DTW are deterministic and
MiniRocket runs with seed 0, so a data set whose seed-0 baselines are already in a
PREVIOUS file (session 4's runs of the same splits, same code) takes them from there, and
its runs compute only 1-NN Euclidean (as a check that the split is the same); the others
compute all three in their seed-0 run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "sequence_classify.jsonl"
PREVIOUS = ROOT / "results" / "sequence_classify.session4.jsonl"  # the last default's runs
RUNS = Path("runs") / "bench-sequence-classify"  # relative to the working directory
BASELINE_FILES = [PREVIOUS]  # where seed-0 baselines are looked up after the results file

# short/long, few/many classes, univariate/multivariate, equal/unequal length: every labelled
# problem aeon ships but UnitTest; HELD_OUT were not looked at while the defaults were chosen
# (session 4's); NEW: the one shipped problem no session had trained on (session 5)
NEW = ["UnitTest"]
HELD_OUT = ["PickupGestureWiimoteZ", "ACSF1", "Covid3Month_disc", "JapaneseVowels_eq",
            "PickupGestureWiimoteZ_eq", *NEW]  # fmt: skip
DATASETS = ["ItalyPowerDemand", "GunPoint", "ArrowHead", "BasicMotions", "JapaneseVowels",
            "OSULeaf", *HELD_OUT]  # fmt: skip


def run_one(job: tuple[str, int, bool]) -> dict:
    """Train the default command on (data set, seed) -> the results.json essentials; `full`:
    compute all three baselines, else only 1-NN ED."""
    import torch

    from rnnkit.bench.speed import _cpu_name
    from rnnkit.tasks import sequence_classify as sc

    torch.set_num_threads(1)
    name, seed, full = job
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    options = sc.Options(data=name, seed=seed, threads=1,
                         baselines="all" if full else "euclidean")  # fmt: skip
    run = sc.train(options, RUNS / f"{name}-{seed}", overwrite=True, progress=False)
    r = run.results
    return {"data": name, "seed": seed, "test_accuracy": r["test_accuracy"],
            "member_accuracies": r["member_accuracies"],
            "first_k_accuracies": r["first_k_accuracies"], "baselines": r["baselines"],
            "auto": r["auto"], "seconds": r["seconds"], "summary": r["data"],
            "wall_s": round(time.perf_counter() - start, 1),
            "date": time.strftime("%Y-%m-%d %H:%M"), "machine": _cpu_name(),
            "load": f"{load_before:.2f}/{os.getloadavg()[0]:.2f}"}  # fmt: skip


def done(path: Path | None = None) -> dict[tuple[str, int], dict]:
    path = path or RESULTS
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["data"], r["seed"]): r for r in rows}


def baselines(name: str, rows: dict[tuple[str, int], dict]) -> dict | None:
    """The seed-0 baselines of `name`: this file's, else those of the first of
    BASELINE_FILES that has MiniRocket's (whose 1-NN ED must match this file's: the same
    split)."""
    here = rows.get((name, 0))
    if here and "minirocket" in here.get("baselines", {}):  # screen rows: none
        return here["baselines"]
    for path in BASELINE_FILES:
        before = done(path).get((name, 0))
        if before is None or "minirocket" not in before.get("baselines", {}):  # screen rows
            continue
        ed = before["baselines"]["1nn_euclidean"]
        mine = (here or {}).get("baselines", {}).get("1nn_euclidean")
        assert mine is None or abs(mine - ed) < 1e-9, name
        return before["baselines"]
    return None


def adopt(paths: list[Path], k: int = 5) -> list[dict]:
    """Earlier runs of the k-member default as result rows: rows of k members as they are,
    and the screen's `--set ensemble=N` rows (N >= k) cut to their first k members."""
    rows = []
    for path in paths:
        for r in [json.loads(line) for line in path.read_text().splitlines() if line.strip()]:
            n = (r.get("set") or {}).get("ensemble")
            if "set" in r and (set(r["set"]) != {"ensemble"} or n < k):
                continue  # a screen row of another option, or of fewer members
            if "set" not in r and len(r["member_accuracies"]) != k:
                continue
            first = r["first_k_accuracies"][:k]
            machine = r.get("machine") or ("AMD EPYC (Zen 4), 2 cores" if "set" in r else None)
            row = {**r, "machine": machine, "test_accuracy": first[-1], "first_k_accuracies": first,
                   "member_accuracies": r["member_accuracies"][:k], "adopted_from": path.name}
            if "member_seconds" in r:  # training: the first k members' own clocks
                row["seconds"] = {"selection": r["seconds"]["selection"],
                                  "training": round(sum(r["member_seconds"][:k]), 2)}
            row.setdefault("baselines", {})
            rows.append(row)
    return rows


def fresh(name: str) -> bool:
    """A problem given as a file (benchmarks/fresh_data.py's .npz): neither aeon's shipped
    problems that the defaults were chosen on, nor the ones held out from them."""
    return name.endswith(".npz")


def shown(name: str) -> str:
    """How the tables name a problem: a fresh one by its file's stem."""
    return Path(name).stem if fresh(name) else name


def table(names: list[str], seeds: int) -> str:
    """The README table from the results file: mean and worst of `seeds` seeds."""
    rows = done()
    head = ("| data set | train/test, classes, channels, length | rnnkit mean | worst | "
            "one member | previous default (same seeds) | 1-NN ED | 1-NN DTW | MiniRocket | "
            "chosen (seeds) | rnnkit s | DTW s | MiniRocket s | seeds |")  # fmt: skip
    out = [head, "|" + "---|" * 14]
    previous = done(PREVIOUS)
    gaps = []
    for name in names:
        rs = [rows[(name, s)] for s in range(seeds) if (name, s) in rows]
        if not rs:
            continue
        acc = [r["test_accuracy"] for r in rs]
        one = [a for r in rs for a in r["member_accuracies"]]
        before = [previous[(name, r["seed"])]["test_accuracy"] for r in rs
                  if (name, r["seed"]) in previous]  # fmt: skip
        was = f"{sum(before) / len(before):.3f}" if len(before) == len(rs) else "-"
        b = baselines(name, rows)
        if b is None:
            continue
        mr = b["minirocket"]
        mean = sum(acc) / len(acc)
        gaps.append((name, mr - mean, min(acc) >= b["1nn_dtw"], mean >= b["1nn_dtw"]))
        d = next((r["summary"] for r in rs if r.get("summary")), None) or next(
            r["summary"] for path in (PREVIOUS, *BASELINE_FILES) for r in done(path).values()
            if r["data"] == name and r.get("summary"))  # fmt: skip
        chosen: dict[str, int] = {}
        for r in rs:
            a = r["auto"]
            key = f"{a['frontend']}/{a['normalise']}/p{a['patch']}/pool{a.get('pool', 1)}"
            chosen[key] = chosen.get(key, 0) + 1
        secs = [r["seconds"]["selection"] + r["seconds"]["training"] for r in rs]
        mark = " (new)" if name in NEW else " (held out)" if name in HELD_OUT else ""
        label = f"{shown(name)} (fresh)" if fresh(name) else name + mark
        out.append(
            f"| {label} | {d['train']}/{d['test']}, {d['classes']}, {d['channels']}, "
            f"{d['length']} | **{sum(acc) / len(acc):.3f}** | {min(acc):.3f} | "
            f"{sum(one) / len(one):.3f} | {was} | "
            f"{b['1nn_euclidean']:.3f} | {b['1nn_dtw']:.3f} | {mr:.3f} | "
            f"{', '.join(f'{k} ({v})' for k, v in chosen.items())} | "
            f"{sum(secs) / len(secs):.0f} | {b['seconds']['1nn_dtw']:.1f} | "
            f"{b['seconds']['minirocket']:.1f} | {len(rs)} |"
        )
    for label, keep in (("", lambda n: True),
                        (" not held out", lambda n: n not in HELD_OUT and not fresh(n)),
                        (" held out", lambda n: n in HELD_OUT)):  # fmt: skip
        part = [g for g in gaps if keep(g[0])]
        if part and (label == "" or len(part) < len(gaps)):
            worst = [shown(n) for n, _, ok, _ in part if not ok]
            mean = [shown(n) for n, _, _, ok in part if not ok]
            out.append(f"\nMiniRocket minus rnnkit, mean over the {len(part)}{label} data "
                       f"sets: {100 * sum(g[1] for g in part) / len(part):.1f} points; worst "
                       f"seed below 1-NN DTW on: {', '.join(worst) or 'none'}; mean below "
                       f"it on: {', '.join(mean) or 'none'}")  # fmt: skip
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=DATASETS)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--table", action="store_true", help="only print the table")
    parser.add_argument("--results", type=Path, help="this default's file (under benchmarks/)")
    parser.add_argument("--previous", type=Path, help="the default it replaced (its file)")
    parser.add_argument("--adopt", type=Path, nargs="*", default=[],
                        help="earlier runs of this default to take in first")
    args = parser.parse_args()
    global RESULTS, PREVIOUS, BASELINE_FILES
    if args.results:
        RESULTS = ROOT / args.results
    if args.previous:
        BASELINE_FILES = [ROOT / args.previous, ROOT / "results" / "sequence_classify.jsonl",
                          PREVIOUS]  # fmt: skip
        PREVIOUS = ROOT / args.previous
    if args.adopt:
        have = done()
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with open(RESULTS, "a") as f:
            for row in adopt([ROOT / p for p in args.adopt]):
                if (row["data"], row["seed"]) not in have and row["data"] in args.names:
                    have[(row["data"], row["seed"])] = row
                    f.write(json.dumps(row) + "\n")
    if not args.table:
        have = done()
        jobs = [(n, s, s == 0 and baselines(n, have) is None)
                for s in range(args.seeds) for n in args.names if (n, s) not in have]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with mp.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
            for row in pool.imap_unordered(run_one, jobs):
                with open(RESULTS, "a") as f:  # one line per finished run: resumable
                    f.write(json.dumps(row) + "\n")
                base = {k: round(v, 3) for k, v in row["baselines"].items()
                        if isinstance(v, float)}  # fmt: skip
                print(f"{row['data']} seed {row['seed']}: {row['test_accuracy']:.3f} {base} "
                      f"{row['wall_s']} s", flush=True)  # fmt: skip
    print(table(args.names, args.seeds))


if __name__ == "__main__":
    main()
