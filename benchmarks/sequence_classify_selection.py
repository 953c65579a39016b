"""How stable is the automatic choice of `rnnkit train sequence-classify` (the normalisation)
across seeds, scored on one --val-fraction split of train (--select-folds 1, the default)
against K-fold cross-validation on train (--select-folds K)? Only the selection runs (the
training split alone; no member is trained and no test case is read).

    PYTHONPATH=src .venv/bin/python benchmarks/sequence_classify_selection.py \\
        [--seeds 5] [--folds 1 5] [NAME ...]     # default: BasicMotions JapaneseVowels

One line per (data set, folds, seed) in benchmarks/results/sequence_classify.selection.jsonl
(a line already there is skipped); then, per data set and K, how often each candidate was
chosen, the mean margin between the best two pooled validation accuracies, and the seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "sequence_classify.selection.jsonl"


def main() -> None:
    import torch

    from rnnkit.tasks.sequence_classify import SequenceClassifyOptions
    from rnnkit.tasks.sequence_classify.task import choose, load_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["BasicMotions", "JapaneseVowels"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 5])
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [json.loads(x) for x in RESULTS.read_text().splitlines()] if RESULTS.exists() else []
    have = {(r["data"], r["folds"], r["seed"]) for r in rows}
    for name in args.names:
        for k in args.folds:
            for seed in range(args.seeds):
                if (name, k, seed) in have:
                    continue
                options = SequenceClassifyOptions(data=name, seed=seed, threads=1,
                                                  select_folds=k)  # fmt: skip
                start = time.perf_counter()
                c = choose(load_data(options), options)
                scores = {key: [v["val_accuracy"], v["val_loss"]] for key, v in c.scores.items()}
                row = {"data": name, "folds": k, "seed": seed,
                       "chosen": f"{c.frontend}/{c.normalise}", "scores": scores,
                       "cases": max(v["cases"] for v in c.scores.values()),
                       "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
                with open(RESULTS, "a") as f:  # one line per finished selection: resumable
                    f.write(json.dumps(row) + "\n")
                rows.append(row)
                print(row, flush=True)
    print("| data set | folds | validated cases | chosen (seeds) | mean margin | seconds |")
    print("|---|---|---|---|---|---|")
    for name in args.names:
        for k in args.folds:
            rs = [r for r in rows if r["data"] == name and r["folds"] == k
                  and r["seed"] < args.seeds]  # fmt: skip
            if not rs:
                continue
            chosen: dict[str, int] = {}
            for r in rs:
                chosen[r["chosen"]] = chosen.get(r["chosen"], 0) + 1
            margins = []
            for r in rs:
                acc = sorted((v[0] for v in r["scores"].values()), reverse=True)
                margins.append(acc[0] - acc[1])
            print(f"| {name} | {k} | {rs[0]['cases']} | "
                  f"{', '.join(f'{key} ({n})' for key, n in chosen.items())} | "
                  f"{sum(margins) / len(margins):.3f} | "
                  f"{sum(r['seconds'] for r in rs) / len(rs):.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
