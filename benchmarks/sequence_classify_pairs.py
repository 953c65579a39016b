"""The default and `--choose-dilate 2` side by side, from the screen's rows (session 9).

    PYTHONPATH=src .venv/bin/python benchmarks/sequence_classify_pairs.py

Reads results/sequence_classify.screen.jsonl (benchmarks/sequence_classify_screen.py):
the choice of each (data set, seed) from its --choose-only row, the candidate's run (a
`--set choose_dilate=2` row, else session 7's `--set dilate=2` row: the same members), the
default re-run on the same machine (a row with no --set). Prints the same-machine table, the
mean change over the pairs run, what is still not run, and the 12-set figures of the
5-seed table (results/sequence_classify.jsonl, another machine) IF the candidate were the
default, two ways: (a) the table's accuracy moved by the same-machine change of each pair,
(b) the table's accuracy replaced by the candidate's as measured here. A (set, seed) whose
choice is dilation 1 (or that has no choice: <= 29 frames) keeps the table's accuracy either
way (the candidate trains the default's models exactly there:
tests/tasks/test_sequence_classify.py); one whose choice is 2 but not run keeps it too, and
is counted as not run. Reads no test split: the accuracies are those the runs recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

from sequence_classify import DATASETS, HELD_OUT, baselines, done

ROOT = Path(__file__).resolve().parent
SCREEN = ROOT / "results" / "sequence_classify.screen.jsonl"
SEEDS = range(5)
NO_CHOICE = {"ItalyPowerDemand", "JapaneseVowels", "JapaneseVowels_eq", "UnitTest"}  # <= 29


def screen_rows() -> list[dict]:
    return [json.loads(line) for line in SCREEN.read_text().splitlines() if line.strip()]


def latest(rows: list[dict], want) -> dict[tuple[str, int], dict]:
    """(data, seed) -> the last row for which want(row) holds."""
    return {(r["data"], r["seed"]): r for r in rows if want(r)}


def cell(acc: float, members: list[float]) -> str:
    return f"{acc:.3f} ({', '.join(f'{a:.3f}' for a in members)})"


# rows from before the screen recorded the load: the range their README sections give
EARLIER_LOAD = {"2026-12-01": "4.5-6.5", ("ArrowHead", 1): "3.5-5.3", ("OSULeaf", 1): "4.8-5.3",
                ("PickupGestureWiimoteZ", 0): "3.5-4.7", ("PickupGestureWiimoteZ", 1): "3.7-4.7"}


def load_text(r: dict) -> str:
    """The 1-minute load average before, after the run (or the range its section gives)."""
    if "load" in r:
        return " / ".join(f"{x:.1f}" for x in r["load"])
    day = r["date"].split()[0]
    return EARLIER_LOAD.get(day) or EARLIER_LOAD.get((r["data"], r["seed"]), "-")


def main() -> None:
    rows = screen_rows()
    chosen = latest(rows, lambda r: r.get("choose_only") and r["set"] == {"choose_dilate": 2})
    cand = latest(rows, lambda r: not r.get("choose_only") and r["set"] == {"dilate": 2})
    cand.update(latest(rows, lambda r: not r.get("choose_only")
                       and r["set"] == {"choose_dilate": 2}))  # fmt: skip
    here = latest(rows, lambda r: not r.get("choose_only") and r["set"] == {})
    table = done()
    out = ["| data set, seed | validation acc. undilated / dilated (cases) | chosen | default, "
           "this machine (members) | `--choose-dilate 2` (members) | change | default, "
           "table (other machine) | seconds sel. + train / wall: default; candidate | load "
           "before / after: default; candidate |",
           "|" + "---|" * 9]  # fmt: skip
    deltas, missing, unchosen = {}, [], []
    for name in DATASETS:
        for s in SEEDS:
            if name in NO_CHOICE:
                continue
            c = chosen.get((name, s))
            if c is None:
                unchosen.append((name, s))
                continue
            if c["auto"]["dilate"] != 2:
                continue
            d, k = here.get((name, s)), cand.get((name, s))
            if d is None or k is None:
                missing.append((name, s))
                continue
            deltas[(name, s)] = (d, k)
            v = c["auto"]["dilate_scores"]
            v1, v2 = v["dilation 1"], next(x for key, x in v.items() if key != "dilation 1")
            val = f"{v1['val_accuracy']:.3f} / {v2['val_accuracy']:.3f} ({v1['cases']})"
            if v1["val_accuracy"] == v2["val_accuracy"]:
                val += f" loss {v1['val_loss']:.3f} / {v2['val_loss']:.3f}"

            def secs(r):
                t = r["seconds"]
                return f"{t['selection']:.0f} + {t['training']:.0f} / {r['wall_s']:.0f}"

            src = "" if k["set"] == {"choose_dilate": 2} else ", session 7's `--dilate 2` row"
            mark = " (held out)" if name in HELD_OUT else ""
            out.append(
                f"| {name}{mark}, {s} | {val} | 2 | "
                f"{cell(d['test_accuracy'], d['member_accuracies'])} | "
                f"{cell(k['test_accuracy'], k['member_accuracies'])}{src} | "
                f"{100 * (k['test_accuracy'] - d['test_accuracy']):+.1f} | "
                f"{table[(name, s)]['test_accuracy']:.3f} | {secs(d)}; {secs(k)} ({k['date']}) | "
                f"{load_text(d)}; {load_text(k)} |"
            )  # fmt: skip
    print("\n".join(out))
    if deltas:
        ch = [k["test_accuracy"] - d["test_accuracy"] for d, k in deltas.values()]
        m0 = [d["member_accuracies"][0] - table[key]["member_accuracies"][0]
              for key, (d, _) in deltas.items()]  # fmt: skip
        print(f"\nMean change (candidate minus default, same machine) over {len(ch)} pairs: "
              f"{100 * sum(ch) / len(ch):+.2f} points (better {sum(c > 0 for c in ch)}, level "
              f"{sum(c == 0 for c in ch)}, worse {sum(c < 0 for c in ch)}); min "
              f"{100 * min(ch):+.1f}, max {100 * max(ch):+.1f}")  # fmt: skip
        print(f"Member 0 (the same model on both sides of the machine move), this machine "
              f"minus the table's: mean {100 * sum(m0) / len(m0):+.2f}, range "
              f"{100 * min(m0):+.1f} .. {100 * max(m0):+.1f} points")  # fmt: skip
    by_choice = {1: [], 2: []}
    for key, c in chosen.items():
        if key[0] in DATASETS and key[0] not in NO_CHOICE and key[1] in SEEDS:
            by_choice.setdefault(c["auto"]["dilate"], []).append(key)
    print(f"\nChoices made: dilation 2 on {len(by_choice[2])}, dilation 1 on "
          f"{len(by_choice[1])} of the {(len(DATASETS) - len(NO_CHOICE)) * len(SEEDS)} (set, "
          f"seed) with a choice; not yet chosen: "
          f"{', '.join(f'{n} {s}' for n, s in unchosen) or 'none'}")  # fmt: skip
    print("\n| data set | choice, seeds 0-4 (t: a validation-accuracy tie, settled by the loss) "
          "| selection s (front end + dilation), mean |\n|---|---|---|")
    for name in DATASETS:
        if name in NO_CHOICE:
            continue
        cs = [chosen.get((name, s)) for s in SEEDS]
        marks = []
        for c in cs:
            if c is None:
                marks.append("-")
                continue
            v = [x["val_accuracy"] for x in c["auto"]["dilate_scores"].values()]
            marks.append(f"{c['auto']['dilate']}{'t' if v[0] == v[1] else ''}")
        secs = [c["auto"]["seconds"] for c in cs if c is not None]
        print(f"| {name} | {' '.join(marks)} | {sum(secs) / max(1, len(secs)):.0f} |")
    ties = {d: sum(len({x["val_accuracy"] for x in c["auto"]["dilate_scores"].values()}) == 1
                   for key, c in chosen.items() if key in set(by_choice[d]))
            for d in (1, 2)}  # fmt: skip
    print(f"Accuracy ties settled by the validation loss: {ties[2]} of the {len(by_choice[2])} "
          f"choices of 2, {ties[1]} of the {len(by_choice[1])} choices of 1")
    print(f"Chosen 2 but the pair not run: {', '.join(f'{n} {s}' for n, s in missing) or 'none'}")
    for label, how in (("(a) table + same-machine change", "delta"),
                       ("(b) the candidate as measured here", "replace"),
                       ("the table as it is (the default)", None)):  # fmt: skip
        gaps, below = [], []
        for name in DATASETS:
            b = baselines(name, table)
            accs = []
            for s in SEEDS:
                a = table[(name, s)]["test_accuracy"]
                if how and (name, s) in deltas:
                    d, k = deltas[(name, s)]
                    a = a + k["test_accuracy"] - d["test_accuracy"] if how == "delta" else (
                        k["test_accuracy"])  # fmt: skip
                accs.append(a)
                if a < b["1nn_dtw"] - 1e-9:
                    below.append(f"{name} {s} ({a:.3f} < {b['1nn_dtw']:.3f})")
            gaps.append(b["minirocket"] - sum(accs) / len(accs))
        print(f"\n{label}: MiniRocket minus rnnkit over the 12 sets "
              f"{100 * sum(gaps) / len(gaps):.2f} points; runs below 1-NN DTW: "
              f"{'; '.join(below) or 'none'}")  # fmt: skip


if __name__ == "__main__":
    main()
