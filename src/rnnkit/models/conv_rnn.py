"""A sequence classifier with an optional convolutional front end (LSTM-FCN, Karim et al.
2017, with the convolutions feeding the recurrent layer):

    x (B, T, D) frames -> patches of `patch` frames (B, ceil(T/P), P·D)
    -> [Conv1d k=7, 5, 3 ('same'), each BatchNorm + ReLU, `filters` channels]   (B, T', F)
    -> Recurrent (B, T', W) -> mean over valid steps (B, W)
    [-> concatenated with the front end's mean over valid steps (B, F), the FCN readout]
    -> head (B, C)

With `full_resolution` the convolutions read the frames themselves (B, T, F), as the FCN
does (Wang et al. 2017), and the recurrent layer reads the mean of their features over each
patch of P frames (B, ceil(T/P), F); the readout's front-end mean is over all valid frames.

Patching keeps the recurrent layer's T' small on long series (the cost is linear in T' and
the gradient path shorter); the convolutions see local shape the recurrent layer would need
many steps to assemble. Padded steps are zeroed after every block, so a sequence's output
does not depend on the padding of the batch it is in (BatchNorm's batch statistics aside,
which training only uses).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from ..config import HeadConfig, RNNConfig
from .base import Batch, Head, StepOutput, build_rnn, check_lengths

KERNELS = (7, 5, 3)  # the FCN's (Wang et al. 2017)


@dataclasses.dataclass(frozen=True)
class ConvRNNConfig:
    """features: D per frame; patch: frames per recurrent step; filters: the front end's
    channels (0: no front end, the recurrent layer reads the patches); full_resolution: the
    front end reads every frame and the patches average its features (configs saved before
    it existed: False, the front end reads the concatenated patches); parallel: the
    recurrent layer reads the patches of the input beside the front end rather than its
    features (no effect without a front end); dilation: of the convolutions (1: the FCN's)."""

    features: int
    head: HeadConfig
    rnn: RNNConfig = RNNConfig()
    patch: int = 1
    filters: int = 64
    full_resolution: bool = False
    parallel: bool = False  # the recurrent layer reads the input, not the convolutions
    dilation: int = 1  # of every convolution (receptive field 1 + 12·dilation frames)

    def __post_init__(self) -> None:
        for name in ("features", "patch", "dilation"):
            if getattr(self, name) < 1:
                raise ValueError(f"ConvRNNConfig: {name} must be >= 1, got {getattr(self, name)}")
        if self.filters < 0:
            raise ValueError(f"ConvRNNConfig: filters must be >= 0, got {self.filters}")


class ConvRNN(nn.Module):
    """Call: `logits, state = model(x, state=None, lengths=None)`, x (B, T, D) frames."""

    kind = "conv_rnn"
    config_class = ConvRNNConfig

    def __init__(self, config: ConvRNNConfig):
        super().__init__()
        self.config = config
        self.pool_features = config.full_resolution and config.filters > 0
        width = config.features if self.pool_features else config.patch * config.features
        # (P·D, D, P) 0/1 weights: output channel p·D + d copies frame p's feature d
        eye = torch.eye(config.patch * config.features).reshape(
            -1, config.patch, config.features).transpose(1, 2)  # fmt: skip
        self.register_buffer("patcher", eye.contiguous(), persistent=False)
        blocks = []
        for k in KERNELS if config.filters else ():
            blocks.append(nn.Sequential(
                nn.Conv1d(width, config.filters, k, padding=config.dilation * (k // 2),
                          dilation=config.dilation),
                nn.BatchNorm1d(config.filters), nn.ReLU(),
            ))  # fmt: skip
            width = config.filters
        self.front = nn.ModuleList(blocks)
        self.parallel = config.parallel and config.filters > 0
        if self.parallel:
            width = config.patch * config.features
        self.rnn = build_rnn(config.rnn, width)
        self.head = Head(config.head, self.rnn.output_size + config.filters)

    @classmethod
    def from_config(cls, config: ConvRNNConfig) -> ConvRNN:
        return cls(config)

    def patches(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, D), lengths (B,) -> (B, ceil(T/P), P·D) zero-padded, lengths ceil(L/P)."""
        P = self.config.patch
        if P == 1:
            return x, lengths
        # A stride-P convolution with 0/1 weights on x padded by P-1 zeros: exactly the
        # concatenation of P frames, with no Python arithmetic on T, so a traced/exported
        # graph stays right at every length (a reshape would freeze ceil(T/P) at export).
        c = nn.functional.conv1d(
            nn.functional.pad(x, (0, 0, 0, P - 1)).transpose(1, 2), self.patcher, stride=P
        )
        return c.transpose(1, 2), (lengths + P - 1) // P

    def patch_means(self, c: Tensor, m: Tensor) -> Tensor:
        """Features (B, F, T), valid-frame mask (B, 1, T) -> the mean of each patch's valid
        frames (B, ceil(T/P), F) (0 for a patch with none)."""
        P = self.config.patch
        if P == 1:
            return c.transpose(1, 2)
        # windows of P on the frames padded by P-1 zeros: ceil(T/P) of them, with no Python
        # arithmetic on T (an exported graph stays right at every length)
        sums = nn.functional.avg_pool1d(nn.functional.pad(c, (0, P - 1)), P, stride=P)
        counts = nn.functional.avg_pool1d(nn.functional.pad(m, (0, P - 1)), P, stride=P)
        return (sums / counts.clamp_min(1e-6)).transpose(1, 2)

    def forward(self, x: Tensor, state: Any = None, lengths: Tensor | None = None):
        """x (B, T, D) -> (logits (B, C), final state)."""
        B, T, _ = x.shape
        lengths = check_lengths(lengths, B, T, "ConvRNN")
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=x.device)
        P = self.config.patch
        h, frames = (x, lengths) if self.pool_features else self.patches(x, lengths)
        m = valid(h, frames)  # (B, T or T', 1)
        h = h * m
        pooled = []
        if len(self.front):
            c = h.transpose(1, 2)  # (B, F, T or T')
            for block in self.front:
                c = block(c) * m.transpose(1, 2)
            pooled.append(c.sum(2) / m.sum(1))  # the FCN readout
            if self.parallel:  # the recurrent branch reads the input's patches
                h, frames = self.patches(x * valid(x, lengths), lengths)
                h = h * valid(h, frames)
            elif self.pool_features:
                h = self.patch_means(c, m.transpose(1, 2))
            else:
                h = c.transpose(1, 2)
        serial_pool = self.pool_features and not self.parallel
        steps = (frames + P - 1) // P if serial_pool else frames
        out, state = self.rnn(h, state, steps)
        s = valid(out, steps)
        return self.head(torch.cat([(out * s).sum(1) / s.sum(1), *pooled], 1)), state

    def loss(self, batch: Batch, state: Any = None) -> StepOutput:
        batch = Batch.of(batch)
        out, state = self(batch.inputs, state, batch.lengths)
        loss, count, stats = self.head.loss(out, batch.targets)
        return StepOutput(loss, count, state, stats, "samples")


def valid(h: Tensor, lengths: Tensor) -> Tensor:
    """(B, T, ...) and lengths (B,) -> the mask of valid steps (B, T, 1) in h's dtype."""
    steps = torch.arange(h.shape[1], device=h.device)[None, :] < lengths[:, None]
    return steps[..., None].to(h.dtype)
