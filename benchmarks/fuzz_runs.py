"""The run-loader fuzz of tests/training/test_run_fuzz.py with more seeds (issue 17).

Each seed damages a copy of a valid tiny sentiment run in one of the ways of
tests/clitest.py::mutate, then loads it and classifies a sentence in-process. Every case must
load, or be refused with one known error (RunError, DataError, OptionError: one line and
exit 2 on the CLI), within 5 s; the peak memory of the whole sweep is reported.

    .venv/bin/python benchmarks/fuzz_runs.py --cases 2000 --seed 0

Writes benchmarks/results/fuzz_runs.json (counts per mutation kind and outcome, the slowest
case, peak RSS growth).
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "tests")]

from clitest import mutate, tiny_sentiment_run  # noqa: E402
from rnnkit.cli.errors import known_errors  # noqa: E402
from rnnkit.tasks import driver  # noqa: E402
from rnnkit.tasks.options import OptionError  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "fuzz_runs.json")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fuzz-runs-"))
    tiny_sentiment_run(root / "valid")
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures, slowest = [], (0.0, "")

    def hung(signum, frame):
        raise TimeoutError("still loading after 5 s")

    signal.signal(signal.SIGALRM, hung)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for seed in range(args.seed, args.seed + args.cases):
        run = root / f"case-{seed}"
        shutil.copytree(root / "valid", run, symlinks=True)
        what = mutate(run, random.Random(seed))
        t0 = time.perf_counter()
        signal.alarm(5)
        try:
            driver.load(run).classify("good film")
            outcome = "loaded"
        except (*known_errors(), OptionError):
            outcome = "refused"
        except BaseException as err:  # a bug: recorded, the sweep goes on
            outcome = "FAILED"
            failures.append(f"seed {seed} ({what}): {type(err).__name__}: {str(err)[:200]}")
        finally:
            signal.alarm(0)
        seconds = time.perf_counter() - t0
        slowest = max(slowest, (seconds, f"seed {seed} ({what})"))
        counts[what.split()[0]][outcome] += 1
        shutil.rmtree(run, ignore_errors=True)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    summary = {
        "command": "benchmarks/fuzz_runs.py " + " ".join(sys.argv[1:]), "cases": args.cases,
        "outcomes": dict(sum(counts.values(), collections.Counter())),
        "by_kind": {k: dict(v) for k, v in sorted(counts.items())},
        "slowest_s": round(slowest[0], 3), "slowest_case": slowest[1],
        "peak_rss_growth_mib": round(grown, 1), "failures": failures,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({k: v for k, v in summary.items() if k != "by_kind"}, indent=1))


if __name__ == "__main__":
    main()
