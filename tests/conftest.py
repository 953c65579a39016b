import copy

import pytest
import torch

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
