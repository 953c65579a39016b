"""The gradient-algorithm protocol: how one batch turns into parameter updates.

The Trainer owns the optimiser, clipping, schedule, logging and checkpoints; an algorithm
owns only *how gradients are computed* for a batch. The Trainer calls, once per batch:

    result = algorithm.train_batch(model, batch, update)

and the algorithm must:

1. compute gradients of the model's loss into `p.grad` (they are zero when it is called),
   running the model through its loss contract, `model.loss(batch, state) -> StepOutput`
   (rnnkit.models.base), or through the model's own step functions for online algorithms;
2. call `update()` each time it wants the accumulated gradients applied: `update()` clips,
   steps the optimiser and zeroes the gradients. BPTT calls it once per batch; TBPTT once per
   chunk of k1 steps; an online algorithm (RTRL, UORO, SnAp) may call it at every step;
   `update()` returns False (and applies nothing) when the gradients are not finite, and the
   algorithm should then return at once;
3. never call `update()` after a non-finite loss: return the result and the Trainer stops;
4. return an `AlgorithmResult` with the mean loss over the batch (a float), the number of
   items (tokens or samples) it covers, metric sums, and the unit name.

State carried *between* batches (stateful batching for language models: batch i+1 continues
the streams of batch i) lives on the algorithm, never on the model: `carry_state()` returns
it as tensors so a checkpoint can save it, `load_carry(state)` puts it back, and `reset()`
drops it (the Trainer calls `reset()` at the start of every epoch).
`config()` returns a JSON-ready dict, written to config.json under "algorithm".

A new algorithm is a class with these methods; `register_algorithm` adds it so a run
directory can name it (`build_algorithm({"name": ..., **args})`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from torch import nn

Update = Callable[[], bool]


@dataclasses.dataclass
class AlgorithmResult:
    """One batch's outcome. `loss` is the mean over `count` items; `finite` False stops training."""

    loss: float
    count: int
    stats: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    unit: str = "samples"
    updates: int = 0
    finite: bool = True


@runtime_checkable
class GradientAlgorithm(Protocol):
    """See the module docstring for the full contract."""

    name: str

    def train_batch(self, model: nn.Module, batch: Any, update: Update) -> AlgorithmResult: ...

    def reset(self) -> None: ...

    def carry_state(self) -> Any: ...

    def load_carry(self, state: Any) -> None: ...

    def config(self) -> dict[str, Any]: ...


class Accumulator:
    """Sums (loss·count, count, stats) over the chunks of a batch."""

    def __init__(self) -> None:
        self.loss_sum, self.count, self.stats, self.unit = 0.0, 0, {}, "samples"

    def add(self, out) -> None:
        self.loss_sum += float(out.loss.detach()) * out.count
        self.count += out.count
        self.unit = out.unit
        for k, (s, n) in out.stats.items():
            s0, n0 = self.stats.get(k, (0.0, 0.0))
            self.stats[k] = (s0 + s, n0 + n)

    def result(self, updates: int, finite: bool = True) -> AlgorithmResult:
        loss = self.loss_sum / max(self.count, 1)
        return AlgorithmResult(loss, self.count, self.stats, self.unit, updates, finite)


ALGORITHMS: dict[str, type] = {}


def register_algorithm(cls: type) -> type:
    """Make `cls` (with a `name` and keyword arguments matching its `config()`) loadable."""
    ALGORITHMS[cls.name] = cls
    return cls


def build_algorithm(data: dict[str, Any]) -> GradientAlgorithm:
    """An algorithm from its `config()` dict, e.g. {"name": "tbptt", "k1": 50, "k2": 50}."""
    if not isinstance(data, dict) or "name" not in data:
        raise ValueError("build_algorithm: expected a dict with a 'name'")
    args = dict(data)
    name = args.pop("name")
    if name not in ALGORITHMS:
        raise ValueError(f"unknown gradient algorithm {name!r}; known: {sorted(ALGORITHMS)}")
    return ALGORITHMS[name](**args)
