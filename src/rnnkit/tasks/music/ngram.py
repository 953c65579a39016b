"""The n-gram baseline: interpolated Kneser-Ney (Chen & Goodman 1998) over the same tokens.

Counts are kept as sorted numpy arrays of 64-bit polynomial hashes of the n-grams, so building
and scoring are a few `np.unique` / `np.searchsorted` calls per level, not Python dictionaries,
and the order is not bounded by the vocabulary size (a collision among the ~10^6 distinct
n-grams here has probability ~10^-7). The highest level uses raw counts, lower levels
continuation counts (how many distinct tokens precede the lower-order n-gram), each level
interpolated with the one below by the discounted mass; the unigram level is interpolated
with the uniform distribution, so no token has probability 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# 4 tokens a 16th step: up to 16 steps (a quarter note) of context. With the chorales split by
# chorale alone, longer contexts and high discounts kept winning up to order 96 (duplicates and
# harmonisations of one tune share long passages); split by tune, see benchmarks/README.md
ORDERS = (1, 2, 4, 8, 16, 24, 32, 48, 64)
DISCOUNTS = (0.75, 0.9, 0.95)
_BASE = np.uint64(0x9E3779B97F4A7C15)  # an odd 64-bit multiplier (arithmetic wraps mod 2^64)


@dataclass
class _Level:
    keys: np.ndarray  # sorted n-gram hashes
    counts: np.ndarray
    ctx: np.ndarray  # sorted context hashes
    ctx_total: np.ndarray  # sum of counts per context
    ctx_types: np.ndarray  # distinct next tokens per context

    @classmethod
    def of(cls, keys: np.ndarray, counts: np.ndarray, contexts: np.ndarray) -> _Level:
        order = np.argsort(contexts, kind="stable")
        ctx, first, types = np.unique(contexts[order], return_index=True, return_counts=True)
        total = np.add.reduceat(counts[order], first) if len(counts) else counts
        return cls(keys, counts, ctx, total, types)


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    if not len(keys):
        return np.zeros(len(query))
    idx = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[idx] == query, values[idx], 0).astype(np.float64)


def _hashes(sequences: Sequence[Sequence[int]], order: int) -> list[tuple[np.ndarray, ...]]:
    """Per level n = 1..order: (hash of the n-gram ending at each predicted position, hash of
    its context: the n-1 tokens before). Each sequence is read with order-1 extra copies of its
    first token (<start>) before it; every token after the first is predicted."""
    full: list[list[np.ndarray]] = [[] for _ in range(order)]
    ctx: list[list[np.ndarray]] = [[] for _ in range(order)]
    for seq in sequences:
        s = np.asarray([seq[0]] * (order - 1) + list(seq), dtype=np.uint64) + np.uint64(1)
        targets = np.arange(order, len(s))
        h = np.zeros(len(targets), np.uint64)  # the target and n-1 tokens before it
        c = np.zeros(len(targets), np.uint64)  # the n-1 tokens before the target
        power = np.uint64(1)
        with np.errstate(over="ignore"):
            for n in range(1, order + 1):
                ctx[n - 1].append(c)
                h = h + s[targets - n + 1] * power
                c = c + s[targets - n] * power
                power = power * _BASE
                full[n - 1].append(h)
    empty = np.zeros(0, np.uint64)
    return [(np.concatenate(f) if f else empty, np.concatenate(x) if x else empty)
            for f, x in zip(full, ctx, strict=True)]  # fmt: skip


class KneserNey:
    """Interpolated Kneser-Ney of every order up to `order`, from token sequences."""

    def __init__(self, sequences: Sequence[Sequence[int]], vocab: int, order: int):
        self.vocab, self.order = vocab, order
        levels = _hashes(sequences, order)
        self.raw, self.cont = [], []
        reps = []
        for full, ctx in levels:
            keys, first, counts = np.unique(full, return_index=True, return_counts=True)
            self.raw.append(_Level.of(keys, counts, ctx[first]))
            reps.append(first)
        for n in range(1, order):  # continuation counts: distinct left extensions
            suffix = levels[n - 1][0][reps[n]]  # the n-gram ending each unique (n+1)-gram
            keys, first, counts = np.unique(suffix, return_index=True, return_counts=True)
            ctx = levels[n - 1][1][reps[n]][first]
            self.cont.append(_Level.of(keys, counts, ctx))

    def log_probs(self, sequences: Sequence[Sequence[int]], order: int, discount: float):
        """Natural-log probability of every predicted token (1-D array) under the model of
        `order` (<= the order it was built with)."""
        levels = _hashes(sequences, order)
        p = np.full(len(levels[0][0]), 1.0 / self.vocab)
        for n in range(1, order + 1):
            level = self.raw[n - 1] if n == order else self.cont[n - 1]
            q, h = levels[n - 1]
            c = _lookup(level.keys, level.counts, q)
            total = _lookup(level.ctx, level.ctx_total, h)
            types = _lookup(level.ctx, level.ctx_types, h)
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            mixed = (np.maximum(c - discount, 0.0) + discount * types * p) / safe
            p = np.where(seen, mixed, p)
        return np.log(p)

    def nats(self, sequences: Sequence[Sequence[int]], order: int, discount: float) -> float:
        """Mean negative log-likelihood per predicted token."""
        lp = self.log_probs(sequences, order, discount)
        return float(-lp.mean()) if len(lp) else math.nan


def pick_kneser_ney(
    train: Sequence[Sequence[int]],
    val: Sequence[Sequence[int]],
    vocab: int,
    orders: Sequence[int] = ORDERS,
    discounts: Sequence[float] = DISCOUNTS,
) -> tuple[KneserNey, dict]:
    """The model built on `train`; order and discount picked on `val` (lowest nats/token).

    Returns (model, info): info has the chosen order and discount and the validation grid.
    """
    model = KneserNey(train, vocab, max(orders))
    grid = {f"{n}/{d}": model.nats(val, n, d) for n in orders for d in discounts}
    best = min(grid, key=grid.get)
    order, discount = best.split("/")
    return model, {"order": int(order), "discount": float(discount), "val_nats": grid}
