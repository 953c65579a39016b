"""Backpropagation through time: unroll the whole batch, backprop once, update once.

Autograd through the Recurrent layer's time loop sums the gradients of the shared weights over
all T steps. Memory grows with T (every step's activations are kept): O(B·T·H) per layer.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from ..models.base import Batch
from .base import Accumulator, AlgorithmResult, Update, register_algorithm


@register_algorithm
class BPTT:
    """Full BPTT: one forward, one backward and one update per batch; no state between batches.

    Example:
        >>> Trainer(model, BPTT(), TrainConfig(steps=500)).fit(batches)
    """

    name = "bptt"

    def train_batch(self, model: nn.Module, batch: Any, update: Update) -> AlgorithmResult:
        out = model.loss(Batch.of(batch))
        acc = Accumulator()
        acc.add(out)
        if not math.isfinite(float(out.loss.detach())):
            return acc.result(0, finite=False)
        out.loss.backward()
        ok = update()
        return acc.result(1, finite=ok)

    def reset(self) -> None:
        pass

    def carry_state(self) -> Any:
        return None

    def load_carry(self, state: Any) -> None:
        pass

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return "BPTT()"
