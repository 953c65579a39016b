"""One-to-one: a single step (T = 1) through the recurrent stack, the feed-forward baseline.

    x (B, D) frames or (B,) ids -> embed -> one recurrent step -> head -> (B, O)

With state passed back in, consecutive calls form a stream (each call is one step).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..config import OneToOneConfig
from .base import Batch, Head, InputLayer, StepOutput, build_rnn


class OneToOne(nn.Module):
    """One input vector -> one output, through one step of the recurrent layer.

    Call: `out, state = model(x, state=None)`; x (B, D) or (B,) ids; out (B, O).

    Example:
        >>> model = OneToOne(OneToOneConfig(InputConfig("frames", features=4),
        ...                                 HeadConfig("softmax", 3)))
        >>> logits, _ = model(torch.randn(8, 4))          # (8, 3)
    """

    kind = "one_to_one"
    config_class = OneToOneConfig
    online = True

    def __init__(self, config: OneToOneConfig):
        super().__init__()
        if not isinstance(config, OneToOneConfig):
            raise TypeError(f"OneToOne: expected a OneToOneConfig, got {type(config).__name__}")
        self.config = config
        self.input = InputLayer(config.input)
        self.rnn = build_rnn(config.rnn, config.input.size)
        self.head = Head(config.head, self.rnn.output_size)
        self.online = not config.rnn.bidirectional

    @classmethod
    def from_config(cls, config: OneToOneConfig) -> OneToOne:
        return cls(config)

    def forward(self, x: Tensor, state: Any = None, lengths: Tensor | None = None):
        """x (B, D) or (B,) ids [or (B, 1, ·) from a Streamer] -> (out (B, O), state)."""
        single = 1 if self.config.input.kind == "tokens" else 2
        if x.dim() == single + 1 and x.shape[1] == 1:  # a (B, 1, ·) step from a Streamer
            x = x[:, 0]
        h = self.input(x, time_axis=False)  # (B, D)
        out, state = self.rnn(h[:, None], state)  # (B, 1, H)
        return self.head(out[:, 0]), state

    def loss(self, batch: Batch, state: Any = None) -> StepOutput:
        batch = Batch.of(batch)
        out, state = self(batch.inputs, state)
        loss, count, stats = self.head.loss(out, batch.targets)
        return StepOutput(loss, count, state, stats, "samples")
