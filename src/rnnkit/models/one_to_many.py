"""One-to-many: a vector (image features, a class, a seed) -> a token sequence.

    c = condition (B, C)  [features, or an embedded class id]
    h_0 = tanh(W c)                         (conditioning "init" or "both")
    x_t = [embed(y_{t-1}); c]               (c fed at every step: "input" or "both")
    y_t ~ softmax(W_o h_t)                  until the end token

Training uses teacher forcing (the true previous token); generation feeds back the model's
own choice (rnnkit.models.decoding: greedy, sampling, beam search).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..config import HeadConfig, OneToManyConfig
from .base import (
    Batch,
    Head,
    InputLayer,
    StateBridge,
    StepOutput,
    build_rnn,
    check_tokens,
    sequence_stats,
    step_mask,
)
from .many_to_many import reorder_rnn_state


class OneToMany(nn.Module):
    """Conditioned autoregressive generator.

    Call: `logits, state = model(condition, tokens_in)`: condition (B, C) frames or (B,) ids;
    tokens_in (B, T) previous tokens (BOS first) -> logits (B, T, V).
    Batches for `loss`: inputs = condition, targets (B, T) ids ending with EOS,
    target_lengths (B,) counting the EOS.

    Example:
        >>> cfg = OneToManyConfig(InputConfig("tokens", 10, 16), vocab_size=12,
        ...                       bos_token=10, eos_token=11)
        >>> model = OneToMany(cfg)
        >>> greedy(model, torch.tensor([3, 7])).tokens
    """

    kind = "one_to_many"
    config_class = OneToManyConfig

    def __init__(self, config: OneToManyConfig):
        super().__init__()
        if not isinstance(config, OneToManyConfig):
            raise TypeError(f"OneToMany: expected a OneToManyConfig, got {type(config).__name__}")
        self.config = config
        self.condition = InputLayer(config.condition)
        C = config.condition.size
        self.feed_condition = config.conditioning in ("input", "both")
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        in_size = config.embedding_dim + (C if self.feed_condition else 0)
        self.rnn = build_rnn(config.rnn, in_size)
        self.bridge = (
            StateBridge(self.rnn, C, "OneToMany")
            if config.conditioning in ("init", "both")
            else None
        )
        self.head = Head(HeadConfig("softmax", config.vocab_size), self.rnn.output_size)

    @classmethod
    def from_config(cls, config: OneToManyConfig) -> OneToMany:
        return cls(config)

    @property
    def eos_token(self) -> int:
        return self.config.eos_token

    @property
    def max_length(self) -> int:
        return self.config.max_length

    def _condition(self, cond: Tensor) -> Tensor:
        return self.condition(cond, time_axis=False)  # (B, C)

    def _run(self, tokens: Tensor, c: Tensor, state: Any):
        e = self.embedding(tokens)  # (B, T, E)
        if self.feed_condition:
            e = torch.cat([e, c[:, None].expand(-1, e.shape[1], -1)], dim=-1)  # (B, T, E + C)
        out, state = self.rnn(e, state)
        return self.head(out), state

    def forward(self, condition: Tensor, tokens_in: Tensor, state: Any = None):
        c = self._condition(condition)
        check_tokens(tokens_in, self.config.vocab_size, "OneToMany", "(B, T)")
        if state is None and self.bridge is not None:
            state = self.bridge(c)
        return self._run(tokens_in, c, state)

    def loss(self, batch: Batch, state: Any = None) -> StepOutput:
        batch = Batch.of(batch)
        tgt = batch.targets
        check_tokens(tgt, self.config.vocab_size, "OneToMany targets", "(B, T)")
        B, T = tgt.shape
        bos = torch.full((B, 1), self.config.bos_token, dtype=tgt.dtype, device=tgt.device)
        logits, _ = self(batch.inputs, torch.cat([bos, tgt[:, :-1]], dim=1))  # (B, T, V)
        mask = step_mask(batch.target_lengths, B, T, tgt.device)
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=tgt.device)
        loss, count, _ = self.head.loss(logits, tgt, mask)
        return StepOutput(loss, count, None, sequence_stats(logits, tgt, mask), "tokens")

    # ---- the decoding protocol ----------------------------------------------------------

    def decode_start(self, condition: Tensor, lengths: Tensor | None = None):
        """condition (B, C) or (B,) -> (logits (B, V) of the first token, state)."""
        c = self._condition(condition)
        state = self.bridge(c) if self.bridge is not None else None
        bos = torch.full((c.shape[0],), self.config.bos_token, device=c.device, dtype=torch.long)
        return self.decode_step(bos, (state, c))

    def decode_step(self, tokens: Tensor, state: Any):
        rnn_state, c = state
        logits, rnn_state = self._run(tokens[:, None], c, rnn_state)
        return logits[:, 0], (rnn_state, c)

    @staticmethod
    def reorder_state(state: Any, index: Tensor) -> Any:
        rnn_state, c = state
        return reorder_rnn_state(rnn_state, index), c.index_select(0, index.to(c.device))
