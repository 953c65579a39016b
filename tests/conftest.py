import copy
import os
import sys
import warnings

# Before torch (and with it libgomp, which reads these once) loads: OpenMP threads that wait at a
# barrier sleep at once instead of spinning ~300,000 times. The kernel tests that run on two
# threads check the same split and the same numbers either way; on a 2-core machine busy with
# other work, the spinning made one of them 7 s instead of 0.1 (benchmarks/README.md, "The test
# suite's time"). A value set in the environment (either variable) is kept, and the `rnnkit`
# command's own GOMP_SPINCOUNT=10000, which overrides the policy, still applies in the CLI's
# subprocesses.
if "torch" in sys.modules:
    warnings.warn("torch was imported before tests/conftest.py: OMP_WAIT_POLICY is not applied",
                  stacklevel=1)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

# The tests use small models, for which one thread is fastest and least sensitive to a busy box.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _bag_of_words_once():
    """Many tests train the same tiny sentiment run (a resume, an interrupt, a server, ...):
    its baseline, a deterministic logistic regression fit 5 times over a grid of C, is fitted
    once per distinct (train, val, labels) and reused. The baseline itself is tested in
    tests/tasks/test_sentiment.py, on the function rnnkit.models.classical exports."""
    from rnnkit.tasks.sentiment import task

    fit, memo = task.bag_of_words_baseline, {}

    def once(train, val, labels):
        key = (tuple((e.text, e.label) for e in train), tuple((e.text, e.label) for e in val),
               tuple(labels))  # fmt: skip
        if key not in memo:
            memo[key] = fit(train, val, labels)
        pipe, info = memo[key]
        return pipe, copy.deepcopy(info)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(task, "bag_of_words_baseline", once)
        yield
