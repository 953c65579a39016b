"""The 12 x 5 table of a candidate that changes only some (data set, seed) runs of the default.

    PYTHONPATH=src .venv/bin/python benchmarks/sequence_classify_compose.py \
        --base results/sequence_classify.k5.jsonl \
        --candidate results/sequence_classify.dilate_k5.jsonl --set choose_dilate=2 \
        --out results/sequence_classify.choose_dilate.jsonl
    PYTHONPATH=src .venv/bin/python benchmarks/sequence_classify.py --table \
        --results results/sequence_classify.choose_dilate.jsonl \
        --previous results/sequence_classify.k5.jsonl

(session 13) `--choose-dilate N` trains the default's models exactly where its choice, made on
the training split alone, is dilation 1 (test_choose_dilate_that_keeps_dilation_1_trains_the_
defaults_models), so only the (set, seed) whose choice is N need a run of their own. The
candidate file holds, from `benchmarks/sequence_classify_screen.py --set choose_dilate=N`,
one `--choose-only` row for every (set, seed) (the choice, no member trained) and a full row
for each whose choice is N. The composed file has, for each (set, seed) of the base file:
the candidate's row where it chose N, else the base row (marked "same_as_default"); a
(set, seed) whose choice is N but has no run yet is left out and counted as missing. Then the
pairs (base against candidate, each on its own machine) are printed. `--assume-level` puts
the base row in for a run not made (marked "assumed_level"), and the runs not made are bounded:
what they could add at most, each at 100% test accuracy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=Path, required=True)
    p.add_argument("--candidate", type=Path, required=True)
    p.add_argument("--set", required=True, help="the candidate's option=value")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--assume-level", action="store_true", help="take the base row (marked "
                   "assumed_level) where the candidate chose N but was not run")  # fmt: skip
    args = p.parse_args()
    key, value = args.set.split("=", 1)
    extra = {key: json.loads(value)}
    base = {(r["data"], r["seed"]): r for r in read(ROOT / args.base)}
    cand = read(ROOT / args.candidate)
    choice = {(r["data"], r["seed"]): r["auto"]["dilate"] for r in cand if r.get("choose_only")
              and r["set"] == extra}  # fmt: skip
    runs = {(r["data"], r["seed"]): r for r in cand if not r.get("choose_only")
            and r["set"] == extra}  # fmt: skip
    out, missing, pairs = [], [], []
    for (name, seed), b in base.items():
        c = choice.get((name, seed))
        if c is None:
            missing.append(f"{name} {seed} (no choice made)")
            continue
        if c == 1:
            out.append({**b, "same_as_default": True})
            continue
        r = runs.get((name, seed))
        if r is None:
            missing.append(f"{name} {seed} (chose {c}, not run)")
            if args.assume_level:
                out.append({**b, "assumed_level": True})
            continue
        assert r["auto"]["dilate"] == c, f"{name} {seed}: the run chose otherwise"
        out.append({**{k: v for k, v in r.items() if k != "set"}, "candidate": extra,
                    "baselines": {}, **({"summary": b["summary"]} if b.get("summary") else {})})
        pairs.append((name, seed, b, r))
    path = ROOT / args.out
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in out))
    tmp.replace(path)
    print(f"{len(out)} rows ({len(pairs)} the candidate's own runs), missing: "
          f"{', '.join(missing) or 'none'}")
    ceiling = [100 * (1 - base[(n, s)]["test_accuracy"]) for n, s in
               ((m.split()[0], int(m.split()[1])) for m in missing if "not run" in m)]
    if ceiling:  # what the runs not made could add at most: each at 100% test accuracy
        print(f"the {len(ceiling)} runs not made could add at most {sum(ceiling):.1f} points "
              f"over the pairs, {sum(ceiling) / len(base):.2f} to the mean over all runs")
    print("\n| data set, seed | default (members), machine | candidate (members), machine | "
          "change | first 3 members: default / candidate |")
    print("|---|---|---|---|---|")
    changes, first3 = [], []
    for name, seed, b, r in sorted(pairs):
        d = 100 * (r["test_accuracy"] - b["test_accuracy"])
        changes.append(d)
        first3.append(100 * (r["first_k_accuracies"][2] - b["first_k_accuracies"][2]))
        print(f"| {name}, {seed} | {b['test_accuracy']:.3f} ({members(b)}), {b.get('machine')} "
              f"| {r['test_accuracy']:.3f} ({members(r)}), {r.get('machine')} | {d:+.1f} | "
              f"{b['first_k_accuracies'][2]:.3f} / {r['first_k_accuracies'][2]:.3f} |")
    if changes:
        print(f"\nMean change over {len(changes)} pairs: {sum(changes) / len(changes):+.2f} "
              f"points ({sum(c > 0 for c in changes)} better, {sum(c == 0 for c in changes)} "
              f"level, {sum(c < 0 for c in changes)} worse); their first 3 members: "
              f"{sum(first3) / len(first3):+.2f}; over all {len(base)} runs: "
              f"{sum(changes) / len(base):+.2f}")


def members(row: dict) -> str:
    return ", ".join(f"{a:.3f}" for a in row["member_accuracies"])

if __name__ == "__main__":
    main()
