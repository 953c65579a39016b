"""Show, Attend and Tell (Xu et al. 2015, soft attention): a CNN encoder whose feature map a
recurrent decoder attends to, trained end to end.

    a = CNN(image) + P                      (B, L, D) annotation vectors, L = h·w cells of the
                                            last feature map; P a learned position per cell
                                            (the decoder must know where a feature is to read
                                            digits left to right)
    s_0 = tanh(W_init mean_i a_i)           initial state (h and, for an LSTM, c)
    e_ti = v^T tanh(W_a a_i + W_h h_{t-1});  α_t = softmax_i(e_t)
    z_t = σ(W_β h_{t-1}) · Σ_i α_ti a_i     the gated context
    h_t = cell([E y_{t-1}; z_t], s_{t-1})   an rnnkit cell (LSTM, GRU, minGRU or minLSTM)
    p(y_t) = softmax(W_o (E y_{t-1} + W_lh h_t + W_lz z_t))   the deep output layer

The decoder runs step by step (attention reads h_{t-1}); captions are a few words, so the
Python loop is short. Work per step: O(B·L·A) for the scores, O(B·L·D) for the context.
It follows rnnkit's decoding protocol, so greedy and beam_search (rnnkit.models) decode it.
Its config lives here, not in rnnkit.config: it is the one model that reads images.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from ..cells import build_cell
from ..config import CellConfig
from .base import Batch, StepOutput, sequence_stats, step_mask
from .many_to_many import reorder_cell_state

# cells whose state is h (B, H), or (h, c) for the LSTM: what the decoder initialises from the
# image and reads h from (the LRU carries a complex multi-part state)
CELLS = ("lstm", "gru", "mingru", "minlstm")


@dataclasses.dataclass(frozen=True)
class CaptionerConfig:
    """Everything that rebuilds a captioner (fresh weights): canvas, CNN, decoder, tokens."""

    vocab_size: int
    bos_token: int
    eos_token: int
    pad_token: int = 0
    channels: int = 1  # image channels: 1 grey, 3 RGB
    height: int = 24
    width: int = 96
    filters: int = 32  # the first block's; doubled per block
    blocks: int = 3  # conv-BN-ReLU-pool blocks: the feature map is (H, W) / 2**blocks
    cell: str = "lstm"
    hidden: int = 256
    embedding: int = 64
    attention: int = 128  # the attention MLP's width
    dropout: float = 0.0  # before the output layer
    max_length: int = 8

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"CaptionerConfig: cell must be one of {CELLS}, got {self.cell!r}")
        side = 2**self.blocks
        if self.height % side or self.width % side:
            raise ValueError(f"CaptionerConfig: {self.height}x{self.width} is not divisible "
                             f"by 2**blocks = {side}")  # fmt: skip
        for name in ("vocab_size", "channels", "filters", "blocks", "hidden", "embedding",
                     "attention", "max_length"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"CaptionerConfig: {name} must be >= 1")

    @property
    def grid(self) -> tuple[int, int]:
        """The feature map's (rows, columns): the cells the decoder attends to."""
        return self.height // 2**self.blocks, self.width // 2**self.blocks


class Encoder(nn.Module):
    """(B, C, H, W) in 0..1 -> annotation vectors (B, L, D), L = rows·columns, row-major."""

    def __init__(self, config: CaptionerConfig):
        super().__init__()
        layers, c = [], config.channels
        for k in range(config.blocks):
            out = config.filters * 2**k
            layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]  # fmt: skip
            c = out
        self.net = nn.Sequential(*layers)
        self.size = c

    def forward(self, images: Tensor) -> Tensor:
        f = self.net(images)  # (B, D, h, w)
        return f.flatten(2).transpose(1, 2)  # (B, L, D)


class Captioner(nn.Module):
    """Image -> caption tokens. Batches for `loss`: inputs (B, C, H, W) floats in 0..1,
    targets (B, T) ids ending with EOS, target_lengths (B,) counting the EOS.

    Example:
        >>> model = Captioner(CaptionerConfig(vocab_size=14, bos_token=2, eos_token=3))
        >>> beam_search(model, images, beam_width=4).to_lists()
    """

    kind = "captioner"
    config_class = CaptionerConfig

    def __init__(self, config: CaptionerConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        D, H, A, E = self.encoder.size, config.hidden, config.attention, config.embedding
        rows, cols = config.grid
        self.position = nn.Parameter(torch.zeros(1, rows * cols, D))
        nn.init.normal_(self.position, std=0.1)
        self.cell = build_cell(CellConfig(config.cell, E + D, H))
        self.lstm = config.cell == "lstm"
        self.init = nn.Linear(D, 2 * H if self.lstm else H)
        self.embed = nn.Embedding(config.vocab_size, E)
        self.w_a, self.w_h = nn.Linear(D, A), nn.Linear(H, A, bias=False)
        self.v = nn.Linear(A, 1, bias=False)
        self.beta = nn.Linear(H, 1)
        self.out_h, self.out_z = nn.Linear(H, E), nn.Linear(D, E, bias=False)
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(E, config.vocab_size)

    @classmethod
    def from_config(cls, config: CaptionerConfig) -> Captioner:
        return cls(config)

    @property
    def eos_token(self) -> int:
        return self.config.eos_token

    @property
    def max_length(self) -> int:
        return self.config.max_length

    # ---- pieces -------------------------------------------------------------------------

    def features(self, images: Tensor) -> Tensor:
        """The CNN's feature map, flattened: (B, C, H, W) -> (B, L·D) (no positions)."""
        return self.encoder(images).flatten(1)

    def encode(self, images: Tensor) -> tuple[Any, Tensor, Tensor]:
        """(B, C, H, W) -> (initial state, annotations (B, L, D), their keys (B, L, A))."""
        c = self.config
        if images.ndim != 4 or tuple(images.shape[1:]) != (c.channels, c.height, c.width):
            raise ValueError(f"Captioner: images must be (B, {c.channels}, {c.height}, "
                             f"{c.width}), got {tuple(images.shape)}")  # fmt: skip
        a = self.encoder(images) + self.position  # (B, L, D)
        s = torch.tanh(self.init(a.mean(dim=1)))
        state = tuple(s.chunk(2, dim=-1)) if self.lstm else s
        return state, a, self.w_a(a)

    def step(self, tokens: Tensor, state: Any, a: Tensor, keys: Tensor):
        """One word: tokens (B,) -> (logits (B, V), new state, attention α (B, L))."""
        h = state[0] if self.lstm else state
        e = self.v(torch.tanh(keys + self.w_h(h)[:, None]))[..., 0]  # (B, L)
        alpha = torch.softmax(e, dim=-1)
        z = torch.sigmoid(self.beta(h)) * torch.einsum("bl,bld->bd", alpha, a)  # (B, D)
        y = self.embed(tokens)  # (B, E)
        h_new, state = self.cell(torch.cat([y, z], dim=-1), state)
        logits = self.out(self.drop(y + self.out_h(h_new) + self.out_z(z)))
        return logits, state, alpha

    def forward(self, images: Tensor, tokens_in: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced: tokens_in (B, T), BOS first -> (logits (B, T, V), α (B, T, L))."""
        state, a, keys = self.encode(images)
        logits, alphas = [], []
        for t in range(tokens_in.shape[1]):
            lg, state, alpha = self.step(tokens_in[:, t], state, a, keys)
            logits.append(lg)
            alphas.append(alpha)
        return torch.stack(logits, dim=1), torch.stack(alphas, dim=1)

    def loss(self, batch: Batch, state: Any = None) -> StepOutput:
        batch = Batch.of(batch)
        tgt = batch.targets
        B, T = tgt.shape
        bos = torch.full((B, 1), self.config.bos_token, dtype=tgt.dtype, device=tgt.device)
        logits, _ = self(batch.inputs, torch.cat([bos, tgt[:, :-1]], dim=1))
        mask = step_mask(batch.target_lengths, B, T, tgt.device)
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=tgt.device)
        loss = nn.functional.cross_entropy(logits[mask], tgt[mask])
        return StepOutput(loss, int(mask.sum()), None, sequence_stats(logits, tgt, mask),
                          "tokens")  # fmt: skip

    # ---- the decoding protocol ----------------------------------------------------------

    def decode_start(self, images: Tensor, lengths: Tensor | None = None):
        state, a, keys = self.encode(images)
        bos = torch.full((a.shape[0],), self.config.bos_token, dtype=torch.long,
                         device=a.device)  # fmt: skip
        return self.decode_step(bos, (state, a, keys))

    def decode_step(self, tokens: Tensor, state: Any):
        rnn_state, a, keys = state
        logits, rnn_state, _ = self.step(tokens, rnn_state, a, keys)
        return logits, (rnn_state, a, keys)

    @staticmethod
    def reorder_state(state: Any, index: Tensor) -> Any:
        rnn_state, a, keys = state
        index = index.to(a.device)
        return (reorder_cell_state(rnn_state, index), a.index_select(0, index),
                keys.index_select(0, index))  # fmt: skip

    @torch.no_grad()
    def attend(self, images: Tensor) -> tuple[list[list[int]], Tensor]:
        """Greedy captions and the attention of each word: (token lists, α (B, T, L))."""
        self.eval()
        state, a, keys = self.encode(images)
        tok = torch.full((a.shape[0],), self.config.bos_token, dtype=torch.long)
        steps, alphas = [], []
        for _ in range(self.config.max_length):
            logits, state, alpha = self.step(tok, state, a, keys)
            tok = logits.argmax(-1)
            steps.append(tok)
            alphas.append(alpha)
            if bool((torch.stack(steps, 1) == self.eos_token).any(1).all()):
                break
        tokens = torch.stack(steps, 1).tolist()
        out = [row[: row.index(self.eos_token)] if self.eos_token in row else row
               for row in tokens]  # fmt: skip
        return out, torch.stack(alphas, 1)

