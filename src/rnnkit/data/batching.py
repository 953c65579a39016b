"""Batches of variable-length sequences, for the Trainer and for evaluation.

- `pad_ids(seqs)`: token id lists -> ids (B, T) padded with 0 (<pad>), lengths (B,).
- `fixed_batches(x, y, lengths)`: in order (validation, test), each cut to its longest sequence.
- `random_batches(x, y, lengths, size)`: the Trainer's `(step, generator) -> batch` callable,
  drawing with replacement, each batch cut to its longest sequence, optionally transformed
  with the same generator: `token_dropout(p)` (ids), `jitter_and_scale(std)` (frames).

Batches are `(x, y, lengths)`, what ManyToOne.loss reads. Imports: torch only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

Transform = Callable[[Tensor, Tensor, torch.Generator], Tensor]  # (x, lengths, gen) -> x


def pad_ids(seqs: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Id lists -> (ids (B, T) padded with 0 = <pad>, lengths (B,)).

    Example:
        >>> pad_ids([[5, 6, 7], [8]])[0].tolist()
        [[5, 6, 7], [8, 0, 0]]
    """
    ids = torch.zeros(len(seqs), max(len(s) for s in seqs), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
    return ids, torch.tensor([len(s) for s in seqs])


def fixed_batches(x: Tensor, y: Tensor, lengths: Tensor, size: int = 256) -> list[tuple]:
    """(x, y, lengths) batches of `size` in order, each cut to its longest sequence."""
    out = []
    for i in range(0, len(x), size):
        L = lengths[i : i + size]
        out.append((x[i : i + size, : int(L.max())], y[i : i + size], L))
    return out


def random_batches(
    x: Tensor, y: Tensor, lengths: Tensor, size: int, transform: Transform | None = None
) -> Callable[[int, torch.Generator], tuple]:
    """Training batches of min(size, N) examples drawn with replacement from the Trainer's
    generator, each cut to its longest sequence; `transform` then alters x (same generator)."""
    N = len(x)
    B = min(size, N)

    def make(step: int, gen: torch.Generator) -> tuple:
        idx = torch.randint(0, N, (B,), generator=gen)
        L = lengths[idx]
        xb = x[idx, : int(L.max())]
        return (xb if transform is None else transform(xb, L, gen)), y[idx], L

    return make


def token_dropout(p: float, unk: int = 1) -> Transform:
    """Each real token (id > 0, not <pad>) is read as `unk` with probability p, a fresh draw per
    batch, so a network cannot lean on a few rare tokens it has memorised."""

    def drop(ids: Tensor, lengths: Tensor, gen: torch.Generator) -> Tensor:
        return ids.masked_fill((torch.rand(ids.shape, generator=gen) < p) & (ids > 0), unk)

    return drop
