"""A new default's table from the runs it changes and the old default's runs it does not.

    PYTHONPATH=src .venv/bin/python benchmarks/sequence_classify_carry.py \
        --choices results/sequence_classify.level16_choose.jsonl \
        --runs results/sequence_classify.level16.jsonl \
        --previous results/sequence_classify.diff14.jsonl results/sequence_classify.fresh16.jsonl \
        --out results/sequence_classify.level16_table.jsonl
    PYTHONPATH=src .venv/bin/python benchmarks/sequence_classify.py --table \
        --results results/sequence_classify.level16_table.jsonl \
        --previous results/sequence_classify.diff14.jsonl

A change to the automatic settings (session 16: --normalise auto compares "level" with
"global") leaves a run as it was wherever it chooses what the old default chose, with the
same seed: the members are seeded from --seed and k alone, and the selection does not touch
their random state (tests/tasks/test_sequence_classify.py). `--choices` holds the new default's
choice for every (data set, seed) (`sequence_classify_screen.py --choose-only`); `--runs`, the
new default trained where its choice differs from the old row's, or where it is "level" (no
old run has it). Each output row is the new run, or the old row marked "carried_from" when
the choices agree; a pair that needs a run and has none is reported and left out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def rows(path: Path) -> dict[tuple[str, int], dict]:
    lines = (ROOT / path).read_text().splitlines()
    return {(r["data"], r["seed"]): r for r in map(json.loads, filter(None, lines))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("choices", "runs", "out"):
        p.add_argument(f"--{name}", type=Path, required=True)
    p.add_argument("--previous", type=Path, nargs="+", required=True,
                   help="the old default's rows (several files: the first that has a pair)")
    args = p.parse_args()
    choices, runs = rows(args.choices), rows(args.runs)
    previous: dict[tuple[str, int], dict] = {}
    for path in args.previous:
        previous |= {k: {**r, "carried_from": path.name} for k, r in rows(path).items()
                     if k not in previous}  # fmt: skip
    out, missing = [], []
    for key, choice in sorted(choices.items()):
        new = choice["auto"]["normalise"]
        old = previous.get(key)
        if key in runs:
            assert runs[key]["auto"]["normalise"] == new, key  # the run made the same choice
            out.append(runs[key])
        elif old is not None and old["auto"]["normalise"] == new and new != "level":
            out.append(old)
        else:
            missing.append(key)
    (ROOT / args.out).write_text("".join(json.dumps(r) + "\n" for r in out))
    carried = sum("carried_from" in r for r in out)
    print(f"{len(out)} rows ({len(out) - carried} run, {carried} carried) -> {args.out}")
    if missing:
        print("not run yet: " + ", ".join(f"{d} seed {s}" for d, s in missing))


if __name__ == "__main__":
    main()
