"""Many-to-many, unaligned: encoder-decoder (Sutskever et al. 2014) with attention.

    memory, _ = encoder(embed(x))                      (B, S, He·dirs)
    s_0 = tanh(W summary(memory))                      decoder's initial state
    h_t = decoder(embed(y_{t-1}), h_{t-1})             (B, Hd)
    a_t = softmax(score(h_t, memory)) over valid S     additive (Bahdanau 2015) or dot (Luong 2015)
    o_t = tanh(W_c [h_t; a_t · memory]);  y_t ~ softmax(W_o o_t)

Attention is computed from h_t (Luong's placement) for both scores, so with full teacher
forcing the decoder runs over the whole target at once; a teacher-forcing ratio below 1 runs
step by step, feeding the model's own prediction with probability 1 - ratio (Bengio et al.
2015). Work for attention: O(B·T·S·A) for additive scores, O(B·T·S·H) for dot.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..config import HeadConfig, Seq2SeqConfig
from .base import (
    Batch,
    Head,
    InputLayer,
    StateBridge,
    StepOutput,
    build_rnn,
    check_lengths,
    check_tokens,
    last_output,
    sequence_stats,
    step_mask,
)
from .many_to_many import reorder_rnn_state


class Attention(nn.Module):
    """Scores a query (B, T, Hq) against memory (B, S, Hm) -> context (B, T, Hm), weights.

    "additive": v^T tanh(W_q q + W_k m);  "dot": q · (W_k m) (W_k only when Hq != Hm).
    """

    def __init__(self, kind: str, query_size: int, memory_size: int):
        super().__init__()
        self.kind = kind
        if kind == "additive":
            A = query_size
            self.w_q = nn.Linear(query_size, A, bias=False)
            self.w_k = nn.Linear(memory_size, A)
            self.v = nn.Linear(A, 1, bias=False)
        else:
            self.w_k = (
                nn.Identity()
                if query_size == memory_size
                else nn.Linear(memory_size, query_size, bias=False)
            )

    def keys(self, memory: Tensor) -> Tensor:
        """Precomputed per source sequence: (B, S, A) or (B, S, Hq)."""
        return self.w_k(memory)

    def forward(self, query: Tensor, memory: Tensor, keys: Tensor, mask: Tensor | None):
        if self.kind == "additive":
            q = self.w_q(query)  # (B, T, A)
            scores = self.v(torch.tanh(q[:, :, None] + keys[:, None]))[..., 0]  # (B, T, S)
        else:
            scores = torch.einsum("bth,bsh->bts", query, keys)  # (B, T, S)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return torch.einsum("bts,bsh->bth", weights, memory), weights  # (B, T, Hm)


class Seq2Seq(nn.Module):
    """Encoder-decoder over token (or frame) sources and token targets.

    Batches for `loss`: inputs (B, S) source ids or (B, S, D) frames, lengths (B,),
    targets (B, T) ids ending with EOS, target_lengths (B,) counting the EOS.

    Example:
        >>> cfg = Seq2SeqConfig(InputConfig("tokens", 12, 32), target_vocab_size=12,
        ...                     bos_token=10, eos_token=11, attention="additive")
        >>> model = Seq2Seq(cfg)
        >>> out = beam_search(model, src, lengths=src_lengths, beam_width=4)
    """

    kind = "seq2seq"
    config_class = Seq2SeqConfig

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"Seq2Seq: expected a Seq2SeqConfig, got {type(config).__name__}")
        self.config = config
        self.source = InputLayer(config.source)
        self.encoder = build_rnn(config.encoder, config.source.size)
        self.embedding = nn.Embedding(config.target_vocab_size, config.target_embedding_dim)
        self.decoder = build_rnn(config.decoder, config.target_embedding_dim)
        He, Hd = self.encoder.output_size, self.decoder.output_size
        self.bridge = StateBridge(self.decoder, He, "Seq2Seq")
        if config.attention != "none":
            self.attention = Attention(config.attention, Hd, He)
            self.combine = nn.Linear(Hd + He, Hd)
        self.head = Head(HeadConfig("softmax", config.target_vocab_size), Hd)
        self.attention_weights: Tensor | None = None

    @classmethod
    def from_config(cls, config: Seq2SeqConfig) -> Seq2Seq:
        return cls(config)

    @property
    def eos_token(self) -> int:
        return self.config.eos_token

    @property
    def max_length(self) -> int:
        return self.config.max_length

    # ---- pieces -------------------------------------------------------------------------

    def encode(self, src: Tensor, lengths: Tensor | None = None):
        """src (B, S[, D]) -> (memory (B, S, He), keys, mask (B, S) or None, decoder state)."""
        x = self.source(src)  # (B, S, D)
        lengths = check_lengths(lengths, x.shape[0], x.shape[1], "Seq2Seq")
        memory, _ = self.encoder(x, None, lengths)  # (B, S, He)
        mask = step_mask(lengths, x.shape[0], x.shape[1], x.device)
        state = self.bridge(last_output(memory, lengths, self.encoder.bidirectional))
        keys = self.attention.keys(memory) if self.config.attention != "none" else memory
        if mask is None:
            mask = torch.ones(memory.shape[:2], dtype=torch.bool, device=memory.device)
        return memory, keys, mask, state

    def _decode(self, tokens: Tensor, state: Any, memory: Tensor, keys: Tensor, mask: Tensor):
        """tokens (B, T) -> logits (B, T, V), decoder state."""
        h, state = self.decoder(self.embedding(tokens), state)  # (B, T, Hd)
        if self.config.attention != "none":
            ctx, weights = self.attention(h, memory, keys, mask)
            self.attention_weights = weights.detach()
            h = torch.tanh(self.combine(torch.cat([h, ctx], dim=-1)))  # (B, T, Hd)
        return self.head(h), state

    def forward(self, src: Tensor, tokens_in: Tensor, lengths: Tensor | None = None):
        """Teacher-forced: src (B, S[, D]), tokens_in (B, T) (BOS first) -> logits (B, T, V)."""
        check_tokens(tokens_in, self.config.target_vocab_size, "Seq2Seq", "(B, T)")
        memory, keys, mask, state = self.encode(src, lengths)
        logits, _ = self._decode(tokens_in, state, memory, keys, mask)
        return logits

    def loss(self, batch: Batch, state: Any = None) -> StepOutput:
        batch = Batch.of(batch)
        tgt = batch.targets
        cfg = self.config
        check_tokens(tgt, cfg.target_vocab_size, "Seq2Seq targets", "(B, T)")
        B, T = tgt.shape
        bos = torch.full((B, 1), cfg.bos_token, dtype=tgt.dtype, device=tgt.device)
        tokens_in = torch.cat([bos, tgt[:, :-1]], dim=1)  # (B, T)
        if not self.training or cfg.teacher_forcing >= 1.0:
            logits = self(batch.inputs, tokens_in, batch.lengths)
        else:
            logits = self._scheduled_sampling(batch, tokens_in)
        mask = step_mask(batch.target_lengths, B, T, tgt.device)
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=tgt.device)
        loss, count, _ = self.head.loss(logits, tgt, mask)
        return StepOutput(loss, count, None, sequence_stats(logits, tgt, mask), "tokens")

    def _scheduled_sampling(self, batch: Batch, tokens_in: Tensor) -> Tensor:
        """Step by step; each sample feeds the true token with probability teacher_forcing."""
        memory, keys, mask, state = self.encode(batch.inputs, batch.lengths)
        prev, outs = tokens_in[:, 0], []
        for t in range(tokens_in.shape[1]):
            if t > 0:
                own = outs[-1].argmax(-1)
                keep = torch.rand(prev.shape, device=prev.device) < self.config.teacher_forcing
                prev = torch.where(keep, tokens_in[:, t], own)
            logits, state = self._decode(prev[:, None], state, memory, keys, mask)
            outs.append(logits[:, 0])
        return torch.stack(outs, dim=1)  # (B, T, V)

    # ---- the decoding protocol ----------------------------------------------------------

    def decode_start(self, src: Tensor, lengths: Tensor | None = None):
        """src (B, S[, D]) -> (logits (B, V) of the first target token, state)."""
        memory, keys, mask, state = self.encode(src, lengths)
        bos = torch.full((memory.shape[0],), self.config.bos_token, device=memory.device)
        return self.decode_step(bos.long(), (state, memory, keys, mask))

    def decode_step(self, tokens: Tensor, state: Any):
        rnn_state, memory, keys, mask = state
        logits, rnn_state = self._decode(tokens[:, None], rnn_state, memory, keys, mask)
        return logits[:, 0], (rnn_state, memory, keys, mask)

    @staticmethod
    def reorder_state(state: Any, index: Tensor) -> Any:
        rnn_state, *rest = state
        index = index.to(rest[0].device)
        return (reorder_rnn_state(rnn_state, index), *(t.index_select(0, index) for t in rest))
