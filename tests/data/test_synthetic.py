"""Synthetic tasks: shapes, the published baselines, and the curriculum's rule."""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit.data.synthetic import (
    ADDING_BASELINE_MSE,
    COPY_DELIMITER,
    CopyCurriculum,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)


def test_adding_problem_markers_targets_and_baseline():
    g = torch.Generator().manual_seed(0)
    x, y = adding_problem(20000, 50, g)
    assert x.shape == (20000, 50, 2) and y.shape == (20000, 1)
    m = x[..., 1]
    assert (m.sum(1) == 2).all()
    assert (m[:, :25].sum(1) == 1).all() and (m[:, 25:].sum(1) == 1).all()
    torch.testing.assert_close(y[:, 0], (x[..., 0] * m).sum(1))
    # Predicting 1 scores Var(U + U) = 1/6: within 3 standard errors (≈ 0.0014 here).
    assert ((y - 1) ** 2).mean().item() == pytest.approx(ADDING_BASELINE_MSE, abs=0.005)
    x2, _ = adding_problem(20000, 50, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)  # seeded -> reproducible


def test_copy_memory_layout_and_baseline():
    x, y = copy_memory(3, T=15, n=10, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (3, 35)
    assert ((x[:, :10] >= 1) & (x[:, :10] <= 8)).all()
    assert (x[:, 24] == COPY_DELIMITER).all() and (x[:, 10:24] == 0).all()
    assert (x[:, 25:] == 0).all() and (y[:, :25] == 0).all()
    assert torch.equal(y[:, 25:], x[:, :10])
    # The memoryless strategy: blanks then uniform over 8 -> 10 log 8 / (T + 20).
    logits = torch.full((3, 35, 10), -1e9)
    logits[:, :25, 0] = 0
    logits[:, 25:, 1:9] = 0
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 10), y.reshape(-1))
    assert ce.item() == pytest.approx(copy_memory_baseline(15), rel=1e-6)
    assert copy_memory_baseline(100) == pytest.approx(10 * math.log(8) / 120)


def test_copy_curriculum_episode_and_advance_rule():
    cur = CopyCurriculum(start=2, threshold=0.15, window=3)
    x, y = cur.episode(4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 5, 3) and y.shape == (4, 5)
    assert (x[:, 2, 2] == 1).all() and (x[:, 3:] == 0).all()
    assert (y[:, :3] == -1).all() and torch.equal(y[:, 3:], x[:, :2, 1].long())
    assert not cur.observe(0.1) and not cur.observe(0.1)
    assert cur.observe(0.1) and cur.length == 3 and cur.history == [(0, 2), (3, 3)]
    assert not cur.observe(0.5) and not cur.observe(0.0) and not cur.observe(0.0)
    with pytest.raises(ValueError):
        adding_problem(1, 1)
