"""The captioner (Show, Attend and Tell): it learns, decodes greedily and by beam search
through the decoding protocol, and rebuilds from its config."""

from __future__ import annotations

import json

import pytest
import torch

from rnnkit.models import (
    Captioner,
    CaptionerConfig,
    beam_search,
    greedy,
    model_from_dict,
    model_to_dict,
)


def tiny_model(cell: str = "lstm") -> Captioner:
    torch.manual_seed(0)
    return Captioner(CaptionerConfig(vocab_size=9, bos_token=2, eos_token=3, height=8, width=16,
                                     filters=4, blocks=2, cell=cell, hidden=16, embedding=8,
                                     attention=8, max_length=5))  # fmt: skip


@pytest.mark.parametrize("cell", ["lstm", "gru", "mingru"])
def test_captioner_learns_and_decodes(cell):
    model = tiny_model(cell)
    images = torch.rand(4, 1, 8, 16)
    targets = torch.tensor([[4, 5, 3], [6, 3, 0], [7, 8, 3], [5, 3, 0]])
    batch = (images, targets, None, torch.tensor([3, 2, 3, 2]))
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    first = float(model.loss(batch).loss.detach())
    for _ in range(60):
        opt.zero_grad()
        model.loss(batch).loss.backward()
        opt.step()
    model.eval()
    assert float(model.loss(batch).loss.detach()) < first / 5
    want = [[4, 5], [6], [7, 8], [5]]
    assert greedy(model, images).to_lists() == want
    assert beam_search(model, images, beam_width=3).to_lists() == want
    tokens, alphas = model.attend(images)
    assert tokens == want and alphas.shape[0] == 4 and alphas.shape[2] == 2 * 4
    assert torch.allclose(alphas.sum(-1), torch.ones(alphas.shape[:2]))
    with pytest.raises(ValueError, match="images must be"):
        model.loss((torch.rand(4, 3, 8, 16), targets))


def test_beam_of_one_is_greedy():
    model = tiny_model().eval()
    images = torch.rand(6, 1, 8, 16)
    assert beam_search(model, images, beam_width=1).to_lists() == greedy(model, images).to_lists()


def test_rebuilds_from_its_json_config_and_checks_it():
    model = tiny_model("gru")
    again = model_from_dict(json.loads(json.dumps(model_to_dict(model))))
    assert again.config == model.config and isinstance(again, Captioner)
    with pytest.raises(ValueError, match="divisible"):
        CaptionerConfig(vocab_size=9, bos_token=2, eos_token=3, height=10, width=16, blocks=2)
    with pytest.raises(ValueError, match="cell must be one of"):
        CaptionerConfig(vocab_size=9, bos_token=2, eos_token=3, cell="rnn")
