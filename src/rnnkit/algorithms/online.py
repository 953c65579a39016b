"""Online learning from a stream that is never unrolled: one (x_t, y_t) at a time.

    learner = OnlineLearner(SnAp(ElmanCell(D, H)), nn.Linear(H, O), loss_fn, lr=1e-3)
    learner.reset(B)
    for x_t, y_t in stream:                  # x_t (B, D), y_t targets for step t
        loss = learner.step(x_t, y_t)        # forward one step, gradient, update every k steps

The recurrent core's gradient comes from an online algorithm — `RTRL`, `UORO`, `SnAp` — or,
for comparison at a fixed memory, from `TruncatedBPTT`, which keeps the last k steps'
activations and backpropagates through them every k steps. The readout head's gradient is
ordinary backprop (it has no memory). All algorithms share the small step interface below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from .base import register_algorithm
from .rtrl import RecurrentStep, _nbytes


@runtime_checkable
class OnlineAlgorithm(Protocol):
    """How the recurrent core's gradient is computed online (RTRL, UORO, SnAp, TruncatedBPTT).

    `reset(B)` starts B new streams; `step(x_t (B, D)) -> y_t (B, O)`; `backward(loss)`
    backpropagates a loss of this step's y_t and adds the core's gradient to `.grad`;
    `flush()` completes any pending gradient (TruncatedBPTT) before an update.
    """

    name: str
    params: list[nn.Parameter]

    def reset(self, batch: int, device=None, dtype=None) -> None: ...

    def step(self, x_t: Tensor) -> Tensor: ...

    def backward(self, loss: Tensor) -> None: ...

    def flush(self) -> None: ...

    def carried_bytes(self) -> int: ...


class TruncatedBPTT:
    """Online truncated BPTT: backpropagate through the steps since the last `flush()`.

    With updates every k steps (OnlineLearner(update_every=k)) this is TBPTT(k, k) on a
    stream: each step's loss is backpropagated to the start of its window only, so a loss
    at the end of a window sees k steps back and one at its start sees one.

    Cost per step: memory O(k·B·A) for the k steps' saved activations (A ≈ 3H for Elman,
    ≈ 8H for LSTM per sample) — it grows with k, not with the stream's length; work O(B·P),
    as BPTT.

    Args:
        core: a cell or a unidirectional `Recurrent` layer (see `RecurrentStep`).
    """

    name = "tbptt"

    def __init__(self, core: nn.Module):
        self.fn = RecurrentStep(core)
        self.params = self.fn.params
        self.state: Tensor | None = None
        self._pending: Tensor | None = None

    def reset(self, batch: int, device=None, dtype=None) -> None:
        p0 = self.params[0]
        self.state = self.fn.init_state(batch, device or p0.device, dtype or p0.dtype)
        self._pending = None

    def step(self, x_t: Tensor) -> Tensor:
        if self.state is None:
            raise RuntimeError("TruncatedBPTT: call reset(batch) before step()")
        self.state = self.fn.batched(tuple(self.params), self.state, x_t)
        return self.state[:, self.fn.out_slice]

    def backward(self, loss: Tensor) -> None:
        # Summed now, backpropagated once at flush(): one backward pass per window.
        self._pending = loss if self._pending is None else self._pending + loss

    def flush(self) -> None:
        if self._pending is not None:
            self._pending.backward()
        self._pending = None
        self.state = self.state.detach()

    def carried_bytes(self) -> int:
        return _nbytes(self.state)


class OnlineLearner:
    """Learns from a stream one step at a time: a recurrent core, a readout head, an optimiser.

    Args:
        algorithm: an `OnlineAlgorithm` wrapping the recurrent core (e.g. `SnAp(cell)`).
        readout: the head mapping y_t (B, O) to predictions (B, K), e.g. nn.Linear(H, K).
        loss_fn: (predictions (B, K), targets) -> per-sample losses (B,).
        optimizer: over the core's and the readout's parameters; default Adam(lr).
        lr: learning rate of the default optimiser.
        update_every: k, steps between parameter updates (1: every step). Gradients of the
            k steps in between are summed.
        clip: clip the global gradient norm to this value before each update (None: off).

    Example:
        >>> learner = OnlineLearner(RTRL(ElmanCell(1, 16)), nn.Linear(16, 1),
        ...                         lambda p, y: ((p - y) ** 2).sum(-1), lr=1e-2)
        >>> learner.reset(1)
        >>> for t in range(100):
        ...     x = torch.randn(1, 1)
        ...     loss = learner.step(x, x)        # learn to echo the input
    """

    def __init__(
        self,
        algorithm: OnlineAlgorithm,
        readout: nn.Module,
        loss_fn: Callable[[Tensor, Any], Tensor],
        optimizer: torch.optim.Optimizer | None = None,
        lr: float = 1e-3,
        update_every: int = 1,
        clip: float | None = None,
    ):
        if isinstance(update_every, bool) or not isinstance(update_every, int) or update_every < 1:
            raise ValueError(f"OnlineLearner: update_every must be >= 1, got {update_every!r}")
        self.algorithm, self.readout, self.loss_fn = algorithm, readout, loss_fn
        self.parameters = list(algorithm.params) + list(readout.parameters())
        self.optimizer = optimizer or torch.optim.Adam(self.parameters, lr=lr)
        self.update_every, self.clip = update_every, clip
        self.steps = 0
        self.updates = 0

    def reset(self, batch: int, device=None, dtype=None) -> None:
        """Start B new streams (the state and the algorithm's memory are zeroed)."""
        self.algorithm.reset(batch, device, dtype)
        self.optimizer.zero_grad(set_to_none=True)
        self.steps = 0

    def step(self, x_t: Tensor, target: Any = None, mask: Tensor | None = None) -> float | None:
        """Consume one step: x_t (B, D); `target` None means no loss at this step.

        Args:
            x_t: (B, D) inputs.
            target: what `loss_fn` compares the predictions with, or None.
            mask: (B,) weights of each stream's loss at this step (e.g. 0 where a stream
                has no target now); None: all 1.

        Returns:
            The mean loss over the batch at this step, or None when there was no target.
        """
        y = self.algorithm.step(x_t)
        value = None
        if target is not None:
            per_sample = self.loss_fn(self.readout(y), target)  # (B,)
            if mask is not None:
                per_sample = per_sample * mask
            loss = per_sample.sum() / per_sample.shape[0]
            self.algorithm.backward(loss)
            value = float(loss.detach())
        self.steps += 1
        if self.steps % self.update_every == 0:
            self.update()
        return value

    def update(self) -> None:
        """Complete pending gradients, clip, step the optimiser, zero the gradients."""
        self.algorithm.flush()
        if self.clip is not None:
            nn.utils.clip_grad_norm_(self.parameters, self.clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.updates += 1

    def fit(self, stream: Iterable[tuple[Tensor, Any]]) -> list[float]:
        """Consume (x_t, target) pairs from `stream`; returns the losses of steps with targets."""
        losses = []
        for x_t, target in stream:
            value = self.step(x_t, target)
            if value is not None:
                losses.append(value)
        return losses

    def predict(self, x_t: Tensor) -> Tensor:
        """Advance the stream by one step without learning: predictions (B, K)."""
        y = self.algorithm.step(x_t)
        with torch.no_grad():
            return self.readout(y)


def make_algorithm(name: str, core: nn.Module, **kwargs: Any) -> OnlineAlgorithm:
    """An online algorithm by name: "rtrl", "uoro", "snap1", "snap2" or "tbptt"."""
    from .rtrl import RTRL
    from .snap import SnAp
    from .uoro import UORO

    builders: dict[str, Callable[[], OnlineAlgorithm]] = {
        "rtrl": lambda: RTRL(core),
        "uoro": lambda: UORO(core, **kwargs),
        "snap1": lambda: SnAp(core, level=1),
        "snap2": lambda: SnAp(core, level=2),
        "tbptt": lambda: TruncatedBPTT(core),
    }
    if name not in builders:
        raise ValueError(f"unknown online algorithm {name!r}; expected one of {sorted(builders)}")
    return builders[name]()


# ---- the Trainer's interface (rnnkit.algorithms.base.GradientAlgorithm) ------------------

CARRIED = ("state", "influence", "s_tilde", "theta_tilde")


@register_algorithm
class Online:
    """RTRL, UORO or SnAp behind the Trainer's `GradientAlgorithm` protocol.

    For a many-to-many model with frame inputs (`model.input` holds no parameters,
    `model.rnn` is a unidirectional Recurrent layer with no dropout, `model.head` scores one
    step): each batch (B, T) is read one step at a time; the gradient of each step's loss
    (the head's mean over the batch) comes from the online algorithm for the recurrent layer
    and from backprop for the head, and `update()` is called every `update_every` steps, so a
    gradient is the sum of the per-step mean losses since the last update. With `stateful`,
    the state and the algorithm's memory (influence matrix, UORO's rank-one pair) carry over
    to the next batch, which must continue the same B streams (rnnkit.training.stream_batches).

    Args:
        method: "rtrl", "snap1", "snap2", "uoro" (see `make_algorithm`).
        update_every: steps between updates.
        stateful: carry the state and the algorithm's memory across batches.

    Example:
        >>> Trainer(model, Online("snap1"), TrainConfig(steps=200)).fit(stream_batches(...))
    """

    name = "online"

    def __init__(self, method: str = "snap1", update_every: int = 1, stateful: bool = True):
        if method not in ("rtrl", "snap1", "snap2", "uoro"):
            raise ValueError(
                f"Online: method must be 'rtrl', 'snap1', 'snap2' or 'uoro', got {method!r}"
            )
        if isinstance(update_every, bool) or not isinstance(update_every, int) or update_every < 1:
            raise ValueError(f"Online: update_every must be >= 1, got {update_every!r}")
        self.method, self.update_every, self.stateful = method, update_every, stateful
        self._alg: OnlineAlgorithm | None = None
        self._model_id: int | None = None
        self._batch: int | None = None
        self._pending: dict[str, Tensor] | None = None  # carry loaded before the model was seen

    def _algorithm(self, model: nn.Module, B: int, x: Tensor) -> OnlineAlgorithm:
        for attr in ("input", "rnn", "head"):
            if not hasattr(model, attr):
                raise ValueError(
                    f"Online: the model needs .input, .rnn and .head (a many-to-many model); "
                    f"{type(model).__name__} has no .{attr}"
                )
        if any(True for _ in model.input.parameters()):
            raise ValueError(
                "Online: the input layer has parameters (token embeddings); online algorithms "
                "here train the recurrent layer and the head: use frame inputs"
            )
        if self._alg is None or self._model_id != id(model):
            self._alg = make_algorithm(self.method, model.rnn)
            self._model_id, self._batch = id(model), None
        if self._batch != B or not self.stateful:
            self._alg.reset(B, x.device, x.dtype)
            self._batch = B
            if self._pending is not None and self.stateful:
                self.load_carry(self._pending)
                self._pending = None
        return self._alg

    def train_batch(self, model: nn.Module, batch: Any, update) -> Any:
        import math

        from ..models.base import Batch, StepOutput
        from .base import Accumulator

        batch = Batch.of(batch)
        if batch.lengths is not None or batch.target_lengths is not None or batch.targets is None:
            raise ValueError("Online: batches must be aligned streams with targets, no lengths")
        x = model.input(batch.inputs)  # (B, T, D)
        B, T = x.shape[:2]
        alg = self._algorithm(model, B, x)
        acc, updates = Accumulator(), 0
        for t in range(T):
            y = alg.step(x[:, t])  # (B, O)
            out = model.head(y[:, None])  # (B, 1, ·)
            loss, count, stats = model.head.loss(out, batch.targets[:, t : t + 1])
            acc.add(StepOutput(loss, count, None, stats, "steps"))
            if not math.isfinite(float(loss.detach())):
                return acc.result(updates, finite=False)
            alg.backward(loss)
            if (t + 1) % self.update_every == 0 or t == T - 1:
                alg.flush()
                if not update():
                    return acc.result(updates, finite=False)
                updates += 1
        return acc.result(updates)

    def reset(self) -> None:
        self._batch = None

    def carry_state(self) -> Any:
        if self._alg is None or not self.stateful:
            return None
        return {k: getattr(self._alg, k) for k in CARRIED if hasattr(self._alg, k)}

    def load_carry(self, state: Any) -> None:
        if state is None:
            return
        if self._alg is None:
            self._pending = state
            return
        for k, v in state.items():
            setattr(self._alg, k, v)
        first = state.get("state")
        self._batch = None if first is None else int(first.shape[0])

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "method": self.method,
            "update_every": self.update_every,
            "stateful": self.stateful,
        }

    def __repr__(self) -> str:
        return f"Online({self.method!r}, update_every={self.update_every})"


__all__ = [
    "Online",
    "OnlineAlgorithm",
    "OnlineLearner",
    "RecurrentStep",
    "TruncatedBPTT",
    "make_algorithm",
]
