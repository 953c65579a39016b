"""Stateful streaming: inference one step or one chunk at a time, and stateful batching.

`Streamer` keeps a model's recurrent state between calls (never on the model itself) so a
live stream can be fed as it arrives; `reset()` starts over. `stream_batches` cuts a long
token stream into B parallel streams so batch i+1 continues batch i (for TBPTT).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class Streamer:
    """Feed a model step by step or chunk by chunk, keeping its state; no gradients.

    Works with any model that takes and returns state, `out, state = model(x, state)`
    (many-to-many, one-to-one, many-to-one with readout "last"), and with generating models
    through `start`/`next` (the decoding protocol: one-to-many, seq2seq, a language model).

    Example:
        >>> s = Streamer(run.model)
        >>> y = s.step(x_t)            # x_t (B,) ids or (B, D) frames -> (B, O)
        >>> ys = s.feed(chunk)         # (B, T[, D]) -> (B, T, O); continues from the last step
        >>> s.reset()                  # the next call starts from the initial state
    """

    def __init__(self, model: nn.Module):
        if getattr(model, "online", True) is False:
            raise ValueError(
                f"Streamer: {type(model).__name__} cannot produce outputs online "
                "(a bidirectional stack or a pooled readout needs the whole sequence)"
            )
        self.model = model
        self.state: Any = None

    def reset(self) -> None:
        """Forget the state: the next call starts a new stream."""
        self.state = None

    @torch.no_grad()
    def feed(self, chunk: Tensor) -> Tensor:
        """A chunk (B, T[, D]) -> the model's outputs for it, continuing the stream."""
        was = self.model.training
        self.model.eval()
        try:
            out, self.state = self.model(chunk, self.state)
        finally:
            self.model.train(was)
        return out

    def step(self, x_t: Tensor) -> Tensor:
        """One step x_t (B,) ids or (B, D) frames -> out (B, O)."""
        out = self.feed(x_t[:, None])
        return out[:, 0] if out.dim() >= 3 or (out.dim() == 2 and x_t.dim() == 1) else out

    @torch.no_grad()
    def start(self, context: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Begin generating from `context` (a prompt, a vector, a source) -> logits (B, V)."""
        self.model.eval()
        logits, self.state = self.model.decode_start(context, lengths)
        return logits

    @torch.no_grad()
    def next(self, tokens: Tensor) -> Tensor:
        """Feed the chosen tokens (B,) -> logits (B, V) for the following ones."""
        if self.state is None:
            raise ValueError("Streamer.next: call start(context) first")
        logits, self.state = self.model.decode_step(tokens, self.state)
        return logits


class stream_batches:  # noqa: N801 - used like a function returning a re-iterable
    """Next-token batches over B parallel streams, so batch i+1 continues batch i.

    The token sequence (N,) is cut into B equal streams (B, N // B); batch i is inputs
    (B, T) = streams[:, i·T : (i+1)·T] and targets shifted by one step. Iterating again
    starts again from the beginning (an epoch), which is when TBPTT resets its state.
    With N data-parallel ranks, the Trainer gives rank r the streams r·B/N .. (r+1)·B/N - 1 of
    every batch, so each rank owns its block of streams and carries their state.

    Example:
        >>> batches = stream_batches(torch.arange(10_000) % 65, batch_size=16, seq_len=100)
        >>> x, y = next(iter(batches))         # (16, 100) each
    """

    def __init__(self, tokens: Tensor, batch_size: int, seq_len: int):
        tokens = torch.as_tensor(tokens)
        if tokens.dim() != 1 or tokens.dtype.is_floating_point:
            raise ValueError(f"stream_batches: expected 1-D token ids, got {tuple(tokens.shape)}")
        for key, value in (("batch_size", batch_size), ("seq_len", seq_len)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"stream_batches: {key} must be a positive integer, got {value!r}")
        per = (tokens.numel() - 1) // batch_size
        if per < seq_len:
            raise ValueError(
                f"stream_batches: {tokens.numel()} tokens are too few for {batch_size} streams "
                f"of at least {seq_len + 1} tokens"
            )
        self.inputs = tokens[: per * batch_size].view(batch_size, per)  # (B, N // B)
        self.targets = tokens[1 : per * batch_size + 1].view(batch_size, per)
        self.seq_len = seq_len

    def __len__(self) -> int:
        return self.inputs.shape[1] // self.seq_len

    def __iter__(self):
        T = self.seq_len
        for i in range(len(self)):
            yield self.inputs[:, i * T : (i + 1) * T], self.targets[:, i * T : (i + 1) * T]
