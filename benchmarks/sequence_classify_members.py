"""The ensemble-size curve of `rnnkit train sequence-classify`, from the screen's rows (session 10).

    PYTHONPATH=src .venv/bin/python benchmarks/sequence_classify_members.py

Reads the `--set ensemble=N` rows (N >= 4) of results/sequence_classify.screen.jsonl
(benchmarks/sequence_classify_screen.py). Member k of a run is seeded from --seed and k
alone, so the ensemble of a run's first k members IS the --ensemble k run of the same seed
on the same machine (tests/tasks/test_sequence_classify.py): one N-member run gives every
k <= N. Prints, per (data set, seed): the first-k accuracies k = 1..N, the 5-seed table's
default (3 members, results/sequence_classify.jsonl, another machine) and this machine's
default re-run if the screen has one (a row with no --set), each member's training seconds,
the selection seconds and the load; then the 12-set gap to MiniRocket for each k two ways:
(a) the table's mean accuracy of each set moved by the mean change k members minus 3
members over the seeds measured here (a set not measured: no change); (b) the plain mean
over what was measured (the first-k accuracy of the (set, seed)s run, averaged per set, then
over the sets run), beside the same for k = 3; and the table's 1-NN DTW misses that were
measured. MiniRocket and 1-NN DTW as the table (`sequence_classify.baselines`). Reads no
test split: the accuracies are those the runs recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

from sequence_classify import DATASETS, baselines, done

ROOT = Path(__file__).resolve().parent
SCREEN = ROOT / "results" / "sequence_classify.screen.jsonl"
DEFAULT_K = 3


def screen_rows() -> list[dict]:
    return [json.loads(line) for line in SCREEN.read_text().splitlines() if line.strip()]


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def main() -> None:
    rows = screen_rows()
    runs = {(r["data"], r["seed"]): r for r in rows
            if list(r["set"]) == ["ensemble"] and r["set"]["ensemble"] > DEFAULT_K
            and "first_k_accuracies" in r}  # fmt: skip
    here = {(r["data"], r["seed"]): r for r in rows
            if not r.get("choose_only") and r["set"] == {}}  # fmt: skip
    table = done()
    ks = range(1, max((len(r["first_k_accuracies"]) for r in runs.values()), default=0) + 1)
    out = ["| data set, seed | " + " | ".join(f"k={k}" for k in ks) + " | default, table "
           "(other machine) | default, this machine | member s (train) | selection s | wall s "
           "| load before / after | date |", "|" + "---|" * (len(ks) + 8)]  # fmt: skip
    measured = [(n, s) for n in DATASETS for s in range(5) if (n, s) in runs]
    for n, s in measured:
        r = runs[(n, s)]
        fk = [f"{a:.3f}" for a in r["first_k_accuracies"]]
        fk += ["-"] * (len(ks) - len(fk))
        fk[DEFAULT_K - 1] = f"**{fk[DEFAULT_K - 1]}**"
        t, h = table.get((n, s)), here.get((n, s))
        t = "-" if t is None else f"{t['test_accuracy']:.3f}"
        h = "-" if h is None else f"{h['test_accuracy']:.3f}"
        out.append(
            f"| {n}, {s} | " + " | ".join(fk) + f" | {t} | {h} | "
            f"{', '.join(f'{x:.0f}' for x in r['member_seconds'])} | "
            f"{r['seconds']['selection']:.0f} | {r['wall_s']:.0f} | "
            f"{' / '.join(f'{x:.1f}' for x in r['load'])} | {r['date']} |"
        )  # fmt: skip
    print("\n".join(out))
    if not measured:
        return
    # (a) the table moved by the k-member change on the seeds measured; (b) plain means
    sets = [n for n in DATASETS if baselines(n, table)]
    by_set = {n: [runs[m] for m in measured if m[0] == n] for n in sets}
    print(f"\nMeasured: {len(measured)} (set, seed) runs on {sum(bool(v) for v in by_set.values())}"
          f" of {len(sets)} sets.")  # fmt: skip
    print("\n| k | (a) 12-set gap: table + (k minus 3 members) | (b) gap over the sets run, k | "
          "(b) same runs, k = 3 | mean change k minus 3 over the runs (points) | runs better / "
          "level / worse than k = 3 |\n|---|---|---|---|---|---|")  # fmt: skip
    for k in ks:
        if k < DEFAULT_K:
            continue
        gap_a, gap_b, gap_b3, changes = [], [], [], []
        for n in sets:
            mr = baselines(n, table)["minirocket"]
            tab = mean([table[(n, s)]["test_accuracy"] for s in range(5) if (n, s) in table])
            rs = [r for r in by_set[n] if len(r["first_k_accuracies"]) >= k]
            d = [r["first_k_accuracies"][k - 1] - r["first_k_accuracies"][DEFAULT_K - 1]
                 for r in rs]  # fmt: skip
            changes += d
            gap_a.append(mr - tab - (mean(d) if d else 0.0))
            if rs:
                gap_b.append(mr - mean([r["first_k_accuracies"][k - 1] for r in rs]))
                gap_b3.append(mr - mean([r["first_k_accuracies"][DEFAULT_K - 1] for r in rs]))
        better = sum(c > 1e-9 for c in changes)
        worse = sum(c < -1e-9 for c in changes)
        print(f"| {k} | {100 * mean(gap_a):.2f} | {100 * mean(gap_b):.2f} ({len(gap_b)} sets) | "
              f"{100 * mean(gap_b3):.2f} | {100 * mean(changes):+.2f} ({len(changes)} runs) | "
              f"{better} / {len(changes) - better - worse} / {worse} |")  # fmt: skip
    same = [(n, s) for n, s in measured if (n, s) in here]
    equal = [m for m in same if runs[m]["member_accuracies"][:DEFAULT_K]
             == here[m]["member_accuracies"]]  # fmt: skip
    differ = ", ".join(f"{n} {s}" for n, s in same if (n, s) not in equal)
    print(f"\nThe first {DEFAULT_K} members against this machine's default run of the same seed "
          f"(the screen's row with no --set): {len(equal)} of {len(same)} runs have the same "
          f"member accuracies{f' (differ: {differ})' if differ else ''}.")  # fmt: skip
    print("\n1-NN DTW (the table's) against each k, the runs measured:")
    for n, s in measured:
        dtw = baselines(n, table)["1nn_dtw"]
        fk = runs[(n, s)]["first_k_accuracies"]
        t = table.get((n, s), {}).get("test_accuracy")
        below = [k for k, a in enumerate(fk, 1) if a < dtw - 1e-9]
        if below or (t is not None and t < dtw - 1e-9):
            print(f"- {n}, seed {s}: DTW {dtw:.3f}; table default {t:.3f}; below DTW at k = "
                  f"{', '.join(map(str, below)) or 'none'} "
                  f"({', '.join(f'{a:.3f}' for a in fk)})")  # fmt: skip
    print("\nSeconds per set (this machine, one thread, under the load above): a member's "
          "training (mean and range over members and runs), the selection, the rest of the run "
          "(data, evaluation, report), k members at that pace (selection + rest + k members); "
          "the table's 3-member training seconds / 3 (5 seeds, other machine, loaded or not):")
    for n in sets:
        if not by_set[n]:
            continue
        ms = [x for r in by_set[n] for x in r["member_seconds"]]
        sel = mean([r["seconds"]["selection"] for r in by_set[n]])
        other = mean([r["wall_s"] - r["seconds"]["selection"] - r["seconds"]["training"]
                      for r in by_set[n]])  # fmt: skip
        quiet = [table[(n, s)]["seconds"]["training"] / DEFAULT_K for s in range(5)
                 if (n, s) in table]  # fmt: skip
        at = ", ".join(f"k={k} {sel + other + k * mean(ms):.0f}" for k in ks if k >= DEFAULT_K)
        print(f"- {n}: {mean(ms):.0f} s a member ({min(ms):.0f}-{max(ms):.0f}); selection "
              f"{sel:.0f} s, the rest {other:.0f} s; {at} s; table "
              f"{min(quiet):.0f}-{max(quiet):.0f} s a member")  # fmt: skip

if __name__ == "__main__":
    main()
