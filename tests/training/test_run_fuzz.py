"""A fuzz test of the run-directory loader (issue 17): 200 seeded mutations of a valid tiny run
(truncated, bit-flipped, resized, wrong JSON types, huge sizes, deep nesting, non-UTF-8,
symlinks to /dev/zero or out of the run, FIFOs, missing files). Each loads and predicts, or is
refused with one known error (one line and exit 2 on the CLI); none takes 5 s or 1 GB.
benchmarks/fuzz_runs.py runs the same with more seeds."""

from __future__ import annotations

import random
import resource
import shutil
import signal
import time

import pytest

from clitest import invoke, mutate, one_line_error, tiny_sentiment_run
from rnnkit.cli.errors import known_errors
from rnnkit.tasks.options import OptionError

CASES = 200


@pytest.fixture(scope="module")
def valid_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("fuzz") / "run"
    tiny_sentiment_run(run)
    return run


class Hung(Exception):
    pass


def _alarm(signum, frame):
    raise Hung


def load_and_use(run) -> str:
    """'loaded' or 'refused'; anything but a known error propagates."""
    from rnnkit.tasks import driver

    try:
        driver.load(run).classify("good film")
    except (*known_errors(), OptionError):
        return "refused"
    return "loaded"


def fuzz(valid_run, tmp_path, seeds) -> dict[str, int]:
    """Mutate a copy of `valid_run` once per seed and load it; returns outcome counts."""
    counts = {"loaded": 0, "refused": 0}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for seed in seeds:
            run = tmp_path / f"case-{seed}"
            shutil.copytree(valid_run, run, symlinks=True)
            what = mutate(run, random.Random(seed))
            t0 = time.perf_counter()
            signal.alarm(5)
            try:
                counts[load_and_use(run)] += 1
            except Hung:
                pytest.fail(f"seed {seed} ({what}): still loading after 5 s")
            except Exception as err:
                pytest.fail(f"seed {seed} ({what}): {type(err).__name__}: {err}")
            finally:
                signal.alarm(0)
            assert time.perf_counter() - t0 < 5, what
    finally:
        signal.signal(signal.SIGALRM, old)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KiB
    assert grown < 1 << 20, f"the loader's peak memory grew by {grown:,} KiB"
    return counts


def test_200_mutations_of_a_run_each_load_or_get_one_known_error(valid_run, tmp_path):
    counts = fuzz(valid_run, tmp_path, range(CASES))
    # about 2 in 5 break what loading reads; the rest hit the log or the checkpoint, or are
    # harmless (a flipped bit in a weight)
    assert counts["refused"] >= CASES // 4 and counts["loaded"] > 0, counts


def test_the_mutations_the_larger_sweep_found(valid_run, tmp_path):
    # benchmarks/fuzz_runs.py --cases 2000: a hidden size overflowing torch's size arithmetic,
    # vocab.json with fewer labels than outputs, config.json's "extra" a number
    fuzz(valid_run, tmp_path, [1067, 1788, 1930])


@pytest.mark.parametrize("seed", [3, 11, 42])
def test_mutated_runs_through_the_cli_get_one_line(valid_run, tmp_path, seed):
    run = tmp_path / "run"
    shutil.copytree(valid_run, run, symlinks=True)
    what = mutate(run, random.Random(seed))
    result = invoke("classify", run, "good film", "--threads", 1)
    if result.exit_code != 0:
        one_line_error(result)
    assert "Traceback" not in result.output, what
