"""Many-to-many, aligned: an output at every step (language model, tagger, forecaster).

    x (B, T) ids or (B, T, D) frames -> embed -> Recurrent -> head -> (B, T, O)

Unidirectional models produce outputs online: pass the returned state back in to continue a
stream (truncated BPTT, streaming inference, generation). A bidirectional stack needs the
whole sequence and is for tagging only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..config import ManyToManyConfig
from .base import Batch, Head, InputLayer, StepOutput, build_rnn, check_lengths, step_mask


class ManyToMany(nn.Module):
    """Embedding/frames -> recurrent stack -> per-step head.

    Call: `out, state = model(x, state=None, lengths=None)`; x (B, T) token ids or
    (B, T, D) frames; out (B, T, O) head outputs (logits for softmax, (B, T, 2·O) for
    gaussian); state as the Recurrent layer's, at each sequence's last valid step.

    Example:
        >>> cfg = ManyToManyConfig(InputConfig("tokens", 65, 32), HeadConfig("softmax", 65),
        ...                        RNNConfig("lstm", 128))
        >>> model = ManyToMany(cfg)
        >>> logits, state = model(torch.randint(0, 65, (4, 50)))      # (4, 50, 65)
        >>> logits, state = model(torch.randint(0, 65, (4, 50)), state)  # continues the stream
    """

    kind = "many_to_many"
    config_class = ManyToManyConfig

    def __init__(self, config: ManyToManyConfig):
        super().__init__()
        if not isinstance(config, ManyToManyConfig):
            raise TypeError(f"ManyToMany: expected a ManyToManyConfig, got {type(config).__name__}")
        self.config = config
        self.input = InputLayer(config.input)
        self.rnn = build_rnn(config.rnn, config.input.size)
        self.head = Head(config.head, self.rnn.output_size)
        if config.tie_weights:
            if self.rnn.output_size != config.input.embedding_dim:
                raise ValueError(
                    "ManyToMany: tie_weights needs the recurrent output size "
                    f"({self.rnn.output_size}) to equal embedding_dim "
                    f"({config.input.embedding_dim})"
                )
            self.head.linear.weight = self.input.embedding.weight

    @classmethod
    def from_config(cls, config: ManyToManyConfig) -> ManyToMany:
        return cls(config)

    eos_token = None  # a language model has no end: generation needs max_length
    max_length = None

    @property
    def online(self) -> bool:
        """Whether outputs can be produced step by step (no backward direction)."""
        return not self.rnn.bidirectional

    def init_state(self, batch: int, device=None, dtype=None) -> Any:
        return self.rnn.init_state(batch, device, dtype)

    def forward(self, x: Tensor, state: Any = None, lengths: Tensor | None = None):
        """x (B, T[, D]) -> (out (B, T, O), final state)."""
        h = self.input(x)  # (B, T, D)
        lengths = check_lengths(lengths, h.shape[0], h.shape[1], "ManyToMany")
        out, state = self.rnn(h, state, lengths)  # (B, T, H·dirs)
        return self.head(out), state

    def loss(self, batch: Batch, state: Any = None) -> StepOutput:
        """Per-step loss against targets (B, T) ids or (B, T, O) values, masked by lengths."""
        batch = Batch.of(batch)
        if batch.targets is None:
            raise ValueError("ManyToMany.loss: the batch has no targets")
        out, state = self(batch.inputs, state, batch.lengths)
        B, T = out.shape[:2]
        mask = step_mask(batch.lengths, B, T, out.device)
        loss, count, stats = self.head.loss(out, batch.targets, mask)
        unit = "tokens" if self.config.input.kind == "tokens" else "steps"
        return StepOutput(loss, count, state, stats, unit)

    # ---- the decoding protocol (rnnkit.models.decoding): generate from a prompt ---------

    def _check_generator(self) -> None:
        cfg = self.config
        if not (cfg.input.kind == "tokens" and cfg.head.kind == "softmax" and self.online):
            raise ValueError(
                "ManyToMany: generation needs token inputs, a softmax head and a "
                "unidirectional stack"
            )
        if cfg.head.output_size != cfg.input.vocab_size:
            raise ValueError("ManyToMany: generation needs the output vocabulary to be the input's")

    def decode_start(self, prompt: Tensor, lengths: Tensor | None = None):
        """Run a prompt (B, T) -> (logits (B, V) for the next token, state)."""
        self._check_generator()
        logits, state = self(prompt, None, lengths)
        if lengths is None:
            return logits[:, -1], state
        idx = (check_lengths(lengths, *prompt.shape, "ManyToMany") - 1).to(logits.device)
        return logits[torch.arange(prompt.shape[0], device=logits.device), idx], state

    def decode_step(self, tokens: Tensor, state: Any):
        """tokens (B,) -> (logits (B, V), state)."""
        logits, state = self(tokens[:, None], state)
        return logits[:, 0], state

    @staticmethod
    def reorder_state(state: Any, index: Tensor) -> Any:
        """Select batch rows `index` of a Recurrent state (batch on axis 1)."""
        return reorder_rnn_state(state, index)


def reorder_rnn_state(state: Any, index: Tensor) -> Any:
    """Rows `index` of a Recurrent layer's state: Tensor (L·dirs, B, ·), tuple or list."""
    if isinstance(state, Tensor):
        return state.index_select(1, index.to(state.device))
    if isinstance(state, tuple):
        return tuple(reorder_rnn_state(s, index) for s in state)
    # a list holds per-cell states (B, ·) or tuples of them: batch on axis 0
    return [reorder_cell_state(s, index) for s in state]


def reorder_cell_state(state: Any, index: Tensor) -> Any:
    if isinstance(state, Tensor):
        return state.index_select(0, index.to(state.device))
    return tuple(reorder_cell_state(s, index) for s in state)
