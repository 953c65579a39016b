"""Many-to-one: a sequence -> one class, value or set of labels.

    x (B, T) ids or (B, T, D) frames -> embed -> Recurrent (B, T, H·dirs) -> readout (B, H·dirs)
    -> head (B, O)

Readouts: "last" (each sequence's own last step; step 0 for a backward direction), "mean" and
"max" over valid steps, "attention" (a learned score per step, softmax over valid steps;
Yang et al. 2016 without the context vector). Variable lengths throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..config import ManyToOneConfig
from .base import (
    Batch,
    Head,
    InputLayer,
    StepOutput,
    build_rnn,
    check_lengths,
    last_output,
    step_mask,
)


class ManyToOne(nn.Module):
    """Sequence classifier / regressor.

    Call: `out, state = model(x, state=None, lengths=None)`; out (B, O) head outputs.
    `model.attention_weights` holds the last call's (B, T) weights for readout "attention".

    Example:
        >>> model = ManyToOne(ManyToOneConfig(InputConfig("frames", features=1),
        ...                                   HeadConfig("softmax", 2), readout="mean"))
        >>> logits, _ = model(torch.randn(8, 20, 1), lengths=torch.randint(1, 21, (8,)))
    """

    kind = "many_to_one"
    config_class = ManyToOneConfig

    def __init__(self, config: ManyToOneConfig):
        super().__init__()
        if not isinstance(config, ManyToOneConfig):
            raise TypeError(f"ManyToOne: expected a ManyToOneConfig, got {type(config).__name__}")
        self.config = config
        self.input = InputLayer(config.input)
        self.rnn = build_rnn(config.rnn, config.input.size)
        W = self.rnn.output_size
        if config.readout == "attention":
            self.score = nn.Sequential(nn.Linear(W, W), nn.Tanh(), nn.Linear(W, 1, bias=False))
        self.head = Head(config.head, W)
        self.attention_weights: Tensor | None = None

    @classmethod
    def from_config(cls, config: ManyToOneConfig) -> ManyToOne:
        return cls(config)

    @property
    def online(self) -> bool:
        """A prediction after every chunk needs readout "last" and no backward direction."""
        return self.config.readout == "last" and not self.rnn.bidirectional

    def forward(self, x: Tensor, state: Any = None, lengths: Tensor | None = None):
        """x (B, T[, D]) -> (out (B, O), final state)."""
        h = self.input(x)  # (B, T, D)
        B, T = h.shape[:2]
        lengths = check_lengths(lengths, B, T, "ManyToOne")
        out, state = self.rnn(h, state, lengths)  # (B, T, W)
        return self.head(self.readout(out, lengths)), state

    def readout(self, out: Tensor, lengths: Tensor | None) -> Tensor:
        """(B, T, W) -> (B, W)."""
        kind = self.config.readout
        if kind == "last":
            return last_output(out, lengths, self.rnn.bidirectional)
        B, T, _ = out.shape
        mask = step_mask(lengths, B, T, out.device)
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=out.device)
        if kind == "mean":
            m = mask[..., None].to(out.dtype)
            return (out * m).sum(1) / m.sum(1)
        if kind == "max":
            return out.masked_fill(~mask[..., None], float("-inf")).max(1).values
        scores = self.score(out)[..., 0].masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.softmax(scores, dim=1)
        self.attention_weights = weights.detach()
        return torch.einsum("bt,btw->bw", weights, out)

    def loss(self, batch: Batch, state: Any = None) -> StepOutput:
        batch = Batch.of(batch)
        out, state = self(batch.inputs, state, batch.lengths)
        loss, count, stats = self.head.loss(out, batch.targets)
        return StepOutput(loss, count, state, stats, "samples")


@torch.no_grad()
def class_probabilities(model: nn.Module, x: Tensor, lengths: Tensor, size: int = 256) -> Tensor:
    """A softmax classifier's class probabilities (N, C), in eval mode, `size` sequences at a
    time, each batch cut to its longest sequence. x: (N, T) ids or (N, T, D) frames, padded."""
    model.eval()
    out = []
    for i in range(0, len(x), size):
        L = lengths[i : i + size]
        logits, _ = model(x[i : i + size, : int(L.max())], lengths=L)
        out.append(torch.softmax(logits.float(), -1))
    return torch.cat(out) if out else torch.zeros(0, 0)


def most_attended(model: nn.Module, tokens: Sequence[str], k: int = 5) -> list[list[Any]]:
    """[[token, weight], ...]: the k tokens of the last forward's first sequence that an
    attention readout weighted most (empty for other readouts)."""
    weights = getattr(model, "attention_weights", None)
    if weights is None:
        return []
    pairs = zip(tokens, weights[0, : len(tokens)].tolist(), strict=True)
    pairs = sorted(pairs, key=lambda tw: -tw[1])
    return [[t, round(float(w), 4)] for t, w in pairs[:k]]


@torch.no_grad()
def small_embeddings(model: nn.Module, std: float) -> nn.Module:
    """Start a token model's embedding at N(0, std²), <pad> (id 0) at zero; returns the model.

    torch starts word vectors at N(0, 1); ~1,000 Adam steps move each weight by about lr a
    step, so rare words would keep a large random vector. Small ones let useful words grow.
    """
    model.input.embedding.weight.normal_(0.0, std)
    model.input.embedding.weight[0].zero_()
    return model
