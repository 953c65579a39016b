"""Truncated BPTT(k1, k2) (Williams & Peng 1990): update every k1 steps, backprop k2 steps back.

A batch (B, T) is cut into chunks of k1 steps. For each chunk the loss of its k1 steps is
backpropagated through the chunk and, when k2 > k1, k2 - k1 further steps into the past
(those steps are re-run from a stored state); then the parameters are updated. The state at
the end of each chunk is detached and carried to the next chunk and, when `stateful`, to the
next batch: batch i+1 must then continue the B streams of batch i (see
rnnkit.training.stream_batches). Memory: O(B·k2·H) per layer whatever T is.

k1 = k2 = T is full BPTT on each batch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..models.base import Batch, detach_state
from .base import Accumulator, AlgorithmResult, Update, register_algorithm


@register_algorithm
class TBPTT:
    """Truncated BPTT with updates every `k1` steps and gradients through `k2` >= k1 steps.

    Args:
        k1: steps between parameter updates (the chunk length).
        k2: steps gradients flow back from the end of a chunk (default k1).
        stateful: carry the final state to the next batch (streams); else start each
            batch from the model's initial state.

    The model must take and return state: `out, state = model(x, state)` and
    `model.loss(batch, state)` (ManyToMany does).

    Example:
        >>> Trainer(lm, TBPTT(k1=50, k2=100), TrainConfig(steps=2000)).fit(stream)
    """

    name = "tbptt"

    def __init__(self, k1: int, k2: int | None = None, stateful: bool = True):
        k2 = k1 if k2 is None else k2
        for key, value in (("k1", k1), ("k2", k2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TBPTT: {key} must be a positive integer, got {value!r}")
        if k2 < k1:
            raise ValueError(
                f"TBPTT: k2 ({k2}) must be >= k1 ({k1}): every step of a chunk "
                "is backpropagated at least to the chunk's start"
            )
        self.k1, self.k2, self.stateful = k1, k2, stateful
        self.state: Any = None

    def train_batch(self, model: nn.Module, batch: Any, update: Update) -> AlgorithmResult:
        batch = Batch.of(batch)
        if batch.lengths is not None or batch.target_lengths is not None:
            raise ValueError("TBPTT: batches must be streams without per-sequence lengths")
        T = batch.inputs.shape[1]
        state = self.state if self.stateful else None
        if state is not None and _batch_of(state) != batch.size:
            raise ValueError(
                f"TBPTT: the carried state is for {_batch_of(state)} streams but this batch has "
                f"{batch.size}; keep the batch size fixed or call reset()"
            )
        # detached states at chunk boundaries, to re-run the extra k2 - k1 steps from
        saved: dict[int, Any] = {0: state}
        acc, updates = Accumulator(), 0
        for start in range(0, T, self.k1):
            stop = min(start + self.k1, T)
            begin = max(0, stop - self.k2)  # gradients flow back to here
            s = _replay(model, batch, saved, begin, start)
            out = model.loss(batch.slice_time(start, stop), s)
            acc.add(out)
            if not math.isfinite(float(out.loss.detach())):
                return acc.result(updates, finite=False)
            out.loss.backward()
            if not update():
                return acc.result(updates, finite=False)
            updates += 1
            saved[stop] = detach_state(out.state)
            for pos in [p for p in saved if p < stop - self.k2]:
                del saved[pos]
        self.state = saved[T] if self.stateful else None
        return acc.result(updates)

    def reset(self) -> None:
        self.state = None

    def carry_state(self) -> Any:
        return self.state

    def load_carry(self, state: Any) -> None:
        self.state = state

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "k1": self.k1, "k2": self.k2, "stateful": self.stateful}

    def __repr__(self) -> str:
        return f"TBPTT(k1={self.k1}, k2={self.k2}, stateful={self.stateful})"


def _replay(model: nn.Module, batch: Batch, saved: dict[int, Any], begin: int, start: int):
    """The state at `start`, differentiable from step `begin` on (k2 > k1 only)."""
    if begin == start:
        return saved[start]
    anchor = max(p for p in saved if p <= begin)
    s = saved[anchor]
    if anchor < begin:
        with torch.no_grad():
            _, s = model(batch.inputs[:, anchor:begin], s)
    _, s = model(batch.inputs[:, begin:start], s)
    return s


def _batch_of(state: Any) -> int:
    first = state
    while not isinstance(first, torch.Tensor):
        first = first[0]
    return int(first.shape[1] if first.dim() == 3 else first.shape[0])
