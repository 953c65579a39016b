"""What every model shares: batches, the loss contract, input embedders, output heads.

The training contract (the Trainer and gradient algorithms rely on nothing else):

    out = model.loss(batch, state=None)   # -> StepOutput(loss, count, state, stats)

`loss` is the mean over `count` items (tokens or samples); `state` is the recurrent state at
the end of the batch for models that carry one (many-to-many), else None; `stats` maps a
metric name to (sum, n) so averages over many batches are exact.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..config import HeadConfig, InputConfig, RNNConfig
from ..layers import Recurrent


@dataclasses.dataclass
class Batch:
    """One batch. Shapes depend on the topology (see each model's docstring).

    inputs: (B, T) token ids or (B, T, D) frames (a vector (B, D) / ids (B,) for one-to-many).
    targets: (B, T) ids, (B, T, O) values, (B,) / (B, O) for one output per sequence.
    lengths: (B,) valid steps of `inputs` (None: all T).
    target_lengths: (B,) valid steps of `targets` for unaligned outputs (None: all).
    """

    inputs: Tensor
    targets: Tensor | None = None
    lengths: Tensor | None = None
    target_lengths: Tensor | None = None

    @classmethod
    def of(cls, data: Any) -> Batch:
        """Accept a Batch, a (inputs, targets[, lengths[, target_lengths]]) tuple or a dict."""
        if isinstance(data, Batch):
            return data
        if isinstance(data, Mapping):
            return cls(**data)
        if isinstance(data, tuple | list) and 1 <= len(data) <= 4:
            return cls(*data)
        raise TypeError(
            "a batch must be a Batch, a dict or a tuple (inputs, targets[, lengths"
            f"[, target_lengths]]), got {type(data).__name__}"
        )

    @property
    def size(self) -> int:
        return int(self.inputs.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        def move(t):
            return None if t is None else t.to(device)

        return Batch(*(move(getattr(self, f.name)) for f in dataclasses.fields(self)))

    def slice_time(self, start: int, stop: int) -> Batch:
        """Steps [start, stop) of an aligned batch (inputs and targets share the time axis)."""
        if self.lengths is not None or self.target_lengths is not None:
            raise ValueError("slice_time: batches with per-sequence lengths cannot be chunked")
        targets = None if self.targets is None else self.targets[:, start:stop]
        return Batch(self.inputs[:, start:stop], targets)


@dataclasses.dataclass
class StepOutput:
    """What `model.loss` returns: mean loss over `count` items, carried state, metric sums."""

    loss: Tensor
    count: int
    state: Any = dataclasses.field(default=None, repr=False)
    stats: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    unit: str = "samples"


def step_mask(lengths: Tensor | None, B: int, T: int, device) -> Tensor | None:
    """(B, T) bool, True at valid steps; None when every step is valid."""
    if lengths is None:
        return None
    return torch.arange(T, device=device)[None, :] < lengths.to(device)[:, None]


def detach_state(state: Any) -> Any:
    """The same state cut from the graph (Tensor, tuple or list of them)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


def build_rnn(config: RNNConfig, input_size: int) -> Recurrent:
    """A Recurrent layer from a model's RNNConfig, reading `input_size` features."""
    return Recurrent.from_config(config, input_size)


class InputLayer(nn.Module):
    """Token ids (B, T) -> embeddings (B, T, E), or frames (B, T, D) passed through checked."""

    def __init__(self, config: InputConfig):
        super().__init__()
        self.config = config
        self.embedding = (
            nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.padding_idx)
            if config.kind == "tokens"
            else None
        )

    def forward(self, x: Tensor, time_axis: bool = True) -> Tensor:
        cfg, owner = self.config, "input"
        if self.embedding is not None:
            want = 2 if time_axis else 1
            if x.dim() != want or x.dtype.is_floating_point:
                shape = "(B, T)" if time_axis else "(B,)"
                raise ValueError(
                    f"{owner}: expected integer token ids of shape {shape}, got "
                    f"{x.dtype} {tuple(x.shape)}"
                )
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= cfg.vocab_size):
                raise ValueError(
                    f"{owner}: token ids must be in [0, {cfg.vocab_size}), got values from "
                    f"{int(x.min())} to {int(x.max())}"
                )
            return self.embedding(x)
        want = 3 if time_axis else 2
        if x.dim() != want or x.shape[-1] != cfg.features:
            shape = f"(B, T, {cfg.features})" if time_axis else f"(B, {cfg.features})"
            raise ValueError(f"{owner}: expected frames of shape {shape}, got {tuple(x.shape)}")
        return x.float() if not x.dtype.is_floating_point else x


class Head(nn.Module):
    """Output layer and loss: (..., H) -> (..., O) (gaussian: (..., 2·O), mean then log-var)."""

    def __init__(self, config: HeadConfig, in_features: int):
        super().__init__()
        self.config = config
        width = 2 * config.output_size if config.kind == "gaussian" else config.output_size
        self.dropout = nn.Dropout(config.dropout)
        self.linear = nn.Linear(in_features, width)

    def forward(self, h: Tensor) -> Tensor:
        return self.linear(self.dropout(h))

    def predict(self, out: Tensor) -> Tensor:
        """Point prediction from head outputs: class ids, values, means, or 0/1 labels."""
        kind = self.config.kind
        if kind == "softmax":
            return out.argmax(-1)
        if kind == "gaussian":
            return out[..., : self.config.output_size]
        if kind == "multilabel":
            return (out > 0).long()
        return out

    def loss(
        self, out: Tensor, target: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, int, dict[str, tuple[float, float]]]:
        """Mean loss over valid items; `mask` has out's shape without the last axis.

        Returns (loss, count, stats) with stats as (sum, n) pairs.
        """
        kind, O = self.config.kind, self.config.output_size
        lead = out.shape[:-1]
        if kind == "softmax":
            if tuple(target.shape) != tuple(lead) or target.dtype.is_floating_point:
                raise ValueError(
                    f"softmax head: expected integer class targets of shape {tuple(lead)}, got "
                    f"{target.dtype} {tuple(target.shape)}"
                )
        elif tuple(target.shape) != (*lead, O):
            raise ValueError(
                f"{kind} head: expected targets of shape {(*lead, O)}, got {tuple(target.shape)}"
            )
        if mask is None:
            mask = torch.ones(lead, dtype=torch.bool, device=out.device)
        m = mask.reshape(-1)
        count = int(m.sum())
        if count == 0:
            raise ValueError("loss: the batch has no valid items")
        flat = out.reshape(-1, out.shape[-1])[m]  # (N, ·)
        if kind == "softmax":
            tgt = target.reshape(-1)[m]
            per = nn.functional.cross_entropy(flat, tgt, reduction="sum")
            correct = float((flat.argmax(-1) == tgt).sum())
            return per / count, count, {"accuracy": (correct, count)}
        tgt = target.reshape(-1, O)[m].to(flat.dtype)
        if kind == "regression":
            se = (flat - tgt).pow(2).sum()
            return se / (count * O), count, {"mse": (float(se.detach()), count * O)}
        if kind == "gaussian":
            mean, log_var = flat[:, :O], flat[:, O:]
            nll = 0.5 * (
                log_var + (tgt - mean).pow(2) * torch.exp(-log_var) + math.log(2 * math.pi)
            )
            se = float((mean - tgt).detach().pow(2).sum())
            return nll.sum() / (count * O), count, {"mse": (se, count * O)}
        bce = nn.functional.binary_cross_entropy_with_logits(flat, tgt, reduction="sum")
        right = float(((flat > 0).to(tgt.dtype) == tgt).sum())
        return bce / (count * O), count, {"label_accuracy": (right, count * O)}


def check_lengths(lengths: Tensor | None, B: int, T: int, owner: str) -> Tensor | None:
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths)
    if lengths.shape != (B,) or lengths.dtype.is_floating_point:
        raise ValueError(f"{owner}: lengths must be integers of shape ({B},), got {lengths}")
    if torch.compiler.is_exporting():
        # the values are unknown while torch.export traces: the check becomes a runtime
        # assertion of the exported program (int() of them would fail the export)
        lo, hi = lengths.min().item(), lengths.max().item()
        torch._check(lo >= 1, lambda: f"{owner}: lengths must be in [1, {T}]")
        torch._check(hi <= T, lambda: f"{owner}: lengths must be in [1, {T}]")
    elif int(lengths.min()) < 1 or int(lengths.max()) > T:
        raise ValueError(f"{owner}: lengths must be in [1, {T}]")
    return lengths.long()


class StateBridge(nn.Module):
    """A vector (B, C) -> a Recurrent layer's initial state: h_0 = tanh(W v + b) in every
    layer and direction (other state parts, e.g. the LSTM cell, start at zero)."""

    def __init__(self, rnn: Recurrent, in_features: int, owner: str):
        super().__init__()
        template = rnn.init_state(1)
        if isinstance(template, list):
            raise ValueError(
                f"{owner}: setting the initial state needs every layer to have the same size"
            )
        first = template if isinstance(template, Tensor) else template[0]
        self.rnn_ref = [rnn]  # a plain list: not registered twice as a submodule
        self.linear = nn.Linear(in_features, first.shape[-1])

    def forward(self, v: Tensor) -> Any:
        rnn = self.rnn_ref[0]
        state = rnn.init_state(v.shape[0], v.device, v.dtype)
        first = state if isinstance(state, Tensor) else state[0]
        h0 = torch.tanh(self.linear(v))[None].expand_as(first)  # (L·dirs, B, W)
        return h0 if isinstance(state, Tensor) else (h0, *state[1:])


def last_output(out: Tensor, lengths: Tensor | None, bidirectional: bool) -> Tensor:
    """Summary of a sequence from a layer's outputs (B, T, H·dirs) -> (B, H·dirs): the forward
    direction at each sequence's last step, the backward direction at step 0."""
    B, T, W = out.shape
    if lengths is None:
        idx = torch.full((B,), T - 1, device=out.device)
    else:
        idx = lengths.to(out.device) - 1
    last = out[torch.arange(B, device=out.device), idx]  # (B, H·dirs)
    if not bidirectional:
        return last
    half = W // 2
    return torch.cat([last[:, :half], out[:, 0, half:]], dim=-1)


def check_tokens(x: Tensor, vocab: int, what: str, shape: str) -> None:
    if not isinstance(x, Tensor) or x.dtype.is_floating_point or x.dtype == torch.bool:
        got = getattr(x, "dtype", type(x).__name__)
        raise ValueError(f"{what}: expected integer token ids {shape}, got {got}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab):
        raise ValueError(
            f"{what}: token ids must be in [0, {vocab}), got {int(x.min())}..{int(x.max())}"
        )


def sequence_stats(logits: Tensor, targets: Tensor, mask: Tensor) -> dict[str, tuple[float, float]]:
    """Token accuracy and exact match of whole sequences (B, T, V) vs (B, T) under mask."""
    right = (logits.argmax(-1) == targets) | ~mask
    return {
        "accuracy": (float((right & mask).sum()), float(mask.sum())),
        "exact_match": (float(right.all(dim=1).sum()), float(targets.shape[0])),
    }
