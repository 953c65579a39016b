"""Sentiment: the default `rnnkit train sentiment` against its bag-of-words baseline (computed
in the same run), 5 seeds, with an ablation of what the default adds.

    PYTHONPATH=src .venv/bin/python benchmarks/sentiment.py [--seeds 5] [--jobs 2]
        [--configs 'NAME;...'] [--table]

Each (configuration, seed) is one `rnnkit.tasks.sentiment.train` with --seed S, --threads 1,
in its own process (`--jobs` at a time); the essentials of its results.json land in
benchmarks/results/sentiment.jsonl (one line per run; a run already there is skipped, so an
interrupted sweep resumes). Then the table of benchmarks/README.md ("Sentiment") is printed.
The pretrained language model is cached per (text, vocabulary, settings, seed), so
configurations that differ only in fine-tuning reuse the default's. Not a test: minutes a run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "sentiment.jsonl"
RUNS = Path("runs") / "bench-sentiment"  # relative to the working directory

# name -> options changed from the default; the "tweets" runs are the check on data nothing
# was chosen on. "one model" rows are single classifiers; `--ensembles NAME` averages the
# probabilities of three single-model runs of NAME with consecutive seeds (rotating), which is
# what the default `--ensemble 3` does inside one run, at a third of the machine time.
CONFIGS = {
    "default": {},
    "one model": {"ensemble": 1},
    "0.2 default (one model without word dropout)": {"ensemble": 1, "word_dropout": 0.0},
    "one model with LM pretraining on all VADER text": {"ensemble": 1, "pretrain": "vader"},
    "tweets: default": {"data": "tweets"},
    "tweets: one model": {"data": "tweets", "ensemble": 1},
    "tweets: 0.2 default": {"data": "tweets", "ensemble": 1, "word_dropout": 0.0},
}
FIRST_SEED = 1  # seed 0's members 1, 2 would be seeds 1 and 2's member 0 (driver.member_seed)


def run_dir(name: str, seed: int) -> Path:
    return RUNS / f"{''.join(c if c.isalnum() else '-' for c in name)}-{seed}"


def run_one(job: tuple[str, int]) -> dict:
    """Train one configuration with one seed -> the results.json essentials."""
    import torch

    from rnnkit.tasks import sentiment

    torch.set_num_threads(1)
    name, seed = job
    start = time.perf_counter()
    options = sentiment.Options(seed=seed, threads=1, **CONFIGS[name])
    run = sentiment.train(options, run_dir(name, seed), overwrite=True, progress=False)
    r = run.results
    return {"config": name, "seed": seed, "accuracy": r["model"]["accuracy"],
            "macro_f1": r["model"]["macro_f1"], "bow": r["baseline"]["accuracy"],
            "bow_C": r["baseline"]["C"], "majority": r["majority"]["accuracy"],
            "members": r["member_accuracies"],
            "pretraining": r.get("pretraining"), "split": r["data"]["split"],
            "steps": run.steps, "train_s": round(run.seconds, 1),
            "wall_s": round(time.perf_counter() - start, 1),
            "date": time.strftime("%Y-%m-%d %H:%M")}  # fmt: skip


def done() -> dict[tuple[str, int], dict]:
    """(configuration, seed) -> its row, from the results file."""
    from rnnkit.atomic import read_jsonl

    return {(r["config"], r["seed"]): r for r in read_jsonl(RESULTS)}


def table(names: list[str], seeds: int) -> str:
    """The README table: mean and worst test accuracy over `seeds` seeds, and the baseline;
    an ensemble configuration also gets a row for its member 0 alone."""
    rows = done()
    out = ["| configuration | RNN mean | worst | BoW (same runs) | RNN − BoW, mean | wins | "
           "LM pretraining s | whole run s | seeds |", "|" + "---|" * 9]
    for name in names:
        rs = [rows[(name, s)] for s in range(FIRST_SEED, FIRST_SEED + seeds) if (name, s) in rows]
        if not rs:
            continue
        out.append(row(name, rs, [r["accuracy"] for r in rs]))
        if len(rs[0]["members"]) > 1:
            out.append(row(f"{name}: member 0 alone", rs, [r["members"][0] for r in rs]))
    return "\n".join(out)


def row(name: str, rs: list[dict], acc: list[float]) -> str:
    bow = [r["bow"] for r in rs]
    pre = [r["pretraining"]["seconds"] for r in rs
           if r["pretraining"] and not r["pretraining"]["cached"]]  # fmt: skip
    mean, base = sum(acc) / len(acc), sum(bow) / len(bow)
    return (f"| {name} | **{mean:.3f}** | {min(acc):.3f} | {base:.3f} | "
            f"{100 * (mean - base):+.1f} pt | "
            f"{sum(a > b for a, b in zip(acc, bow, strict=True))}/{len(rs)} | "
            f"{f'{sum(pre) / len(pre):.0f}' if pre else '–'} | "
            f"{sum(r['wall_s'] for r in rs) / len(rs):.0f} | {len(rs)} |")


def rotating_ensembles(name: str, seeds: int, k: int = 3) -> str:
    """A table row: the test accuracy of the mean probabilities of k single-model runs of
    `name` (seeds S, S+1, ... rotating over the seeds run), against bag-of-words; its time
    column is k single runs."""
    from rnnkit.data.sentiment import load_source
    from rnnkit.data.vocab import Vocab
    from rnnkit.tasks.sentiment.task import VOCAB_FILE, Classifier
    from rnnkit.training import load_run

    rows = done()
    rs = [rows[(name, s)] for s in range(FIRST_SEED, FIRST_SEED + seeds) if (name, s) in rows]
    if len(rs) < k:
        return ""
    runs = [load_run(run_dir(name, r["seed"])) for r in rs]  # each run's own model (member 0)
    vocabs = [run.read_json(VOCAB_FILE) for run in runs]
    assert all(v == vocabs[0] for v in vocabs)  # the same training split, the same words
    vocab, labels = Vocab.from_dict(vocabs[0]["words"]), vocabs[0]["labels"]
    test = load_source(CONFIGS[name].get("data")).test
    accs = []
    for i in range(len(runs)):
        members = [runs[(i + j) % len(runs)].model for j in range(k)]
        accs.append(Classifier(members, vocab, labels).evaluate(test)["accuracy"])
    return row(f"{name}: mean of {k} runs' probabilities (rotating seeds)",
               [{**r, "pretraining": None, "wall_s": k * r["wall_s"]} for r in rs], accs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--configs", default=";".join(CONFIGS),
                        help="names from CONFIGS, separated by ;")  # fmt: skip
    parser.add_argument("--ensembles", default="",
                        help="names from CONFIGS (;): add rows of 3 runs' mean probabilities")
    parser.add_argument("--table", action="store_true", help="only print the table")
    args = parser.parse_args()
    names = [n.strip() for n in args.configs.split(";") if n.strip()]
    unknown = [n for n in names + args.ensembles.split(";") if n and n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")
    if not args.table:
        have = done()
        jobs = [(n, s) for n in names for s in range(FIRST_SEED, FIRST_SEED + args.seeds)
                if (n, s) not in have]  # fmt: skip
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with mp.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
            for row in pool.imap_unordered(run_one, jobs):
                with open(RESULTS, "a") as f:  # one line per finished run: resumable
                    f.write(json.dumps(row) + "\n")
                print(f"{row['config']} seed {row['seed']}: {row['accuracy']:.3f} vs BoW "
                      f"{row['bow']:.3f} ({row['wall_s']} s)", flush=True)  # fmt: skip
    print(table(names, args.seeds))
    for name in (n.strip() for n in args.ensembles.split(";") if n.strip()):
        print(rotating_ensembles(name, args.seeds))


if __name__ == "__main__":
    main()
