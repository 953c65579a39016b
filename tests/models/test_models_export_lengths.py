"""torch.export of a whole model with per-sequence lengths (models/base.py check_lengths)."""

import pytest
import torch
from torch.export import Dim

from rnnkit import kernels
from rnnkit.config import HeadConfig, InputConfig, ManyToOneConfig, RNNConfig
from rnnkit.models.many_to_one import ManyToOne


class _Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, lengths):
        return self.model(x, lengths=lengths)[0]


def test_a_fused_sequence_classifier_exports_with_lengths_and_keeps_their_check():
    assert kernels.available(), kernels.available().reason
    torch.manual_seed(0)
    rnn = RNNConfig("gru", 8, bidirectional=True, impl="fused")
    cfg = ManyToOneConfig(InputConfig("frames", features=3), HeadConfig("softmax", 4), rnn, "mean")
    model = _Logits(ManyToOne(cfg).eval())
    batch, time = Dim("batch", min=1, max=64), Dim("time", min=2, max=512)
    example = (torch.randn(3, 6, 3), torch.tensor([6, 2, 4]))
    ep = torch.export.export(model, example, dynamic_shapes=({0: batch, 1: time}, {0: batch}))
    for B, T in ((5, 11), (1, 3), (8, 40)):  # neither batch nor length nor lengths of export
        x, lengths = torch.randn(B, T, 3), torch.randint(1, T + 1, (B,))
        torch.testing.assert_close(ep.module()(x, lengths), model(x, lengths), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"lengths must be in \[1, 11\]"):
        model(torch.randn(2, 11, 3), torch.tensor([12, 1]))  # eager: the same error as before
    with pytest.raises(RuntimeError, match="assertion"):
        ep.module()(torch.randn(2, 11, 3), torch.tensor([12, 1]))  # exported: still checked
