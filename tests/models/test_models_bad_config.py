"""Bad configurations fail early, each with one clear ValueError."""

import pytest
import torch

from rnnkit.config import (
    HeadConfig,
    InputConfig,
    ManyToManyConfig,
    ManyToOneConfig,
    OneToManyConfig,
    RNNConfig,
    Seq2SeqConfig,
    TrainConfig,
)
from rnnkit.models import Seq2Seq, beam_search, build_model, greedy, model_from_dict, sample

TOK = InputConfig("tokens", 10, 8)


def s2s(**kw):
    args = dict(target_vocab_size=10, bos_token=8, eos_token=9)
    args.update(kw)
    return Seq2SeqConfig(TOK, **args)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: build_model(ManyToOneConfig(TOK, HeadConfig(), RNNConfig("nope"))),
            "unknown cell",
        ),
        (lambda: RNNConfig("lstm", 0), "hidden_size must be a positive integer"),
        (lambda: RNNConfig("gru", 8, num_layers=0), "num_layers must be a positive integer"),
        (lambda: RNNConfig("gru", 8, dropout=1.5), r"dropout must be in \[0, 1\)"),
        (lambda: s2s(eos_token=None), "eos_token is required"),
        (lambda: s2s(bos_token=12), r"bos_token must be an id in \[0, 10\)"),
        (lambda: s2s(attention="luong"), "attention must be one of"),
        (lambda: s2s(teacher_forcing=2.0), r"teacher_forcing must be in \[0, 1\]"),
        (lambda: s2s(decoder=RNNConfig(bidirectional=True)), "decoder cannot be bidirectional"),
        (lambda: OneToManyConfig(TOK, 10, 8, None), "eos_token is required"),
        (lambda: InputConfig("tokens", 0, 8), "vocab_size must be a positive integer"),
        (lambda: InputConfig("pixels"), "kind must be one of"),
        (lambda: HeadConfig("poisson", 3), "kind must be one of"),
        (lambda: HeadConfig("softmax", 0), "output_size must be a positive integer"),
        (lambda: ManyToOneConfig(TOK, HeadConfig(), readout="median"), "readout must be one of"),
        (
            lambda: ManyToManyConfig(TOK, HeadConfig("regression", 3), tie_weights=True),
            "tie_weights",
        ),
        (lambda: TrainConfig(steps=0), "steps must be a positive integer"),
        (lambda: TrainConfig(optimizer="adamax"), "optimizer must be one of"),
        (lambda: TrainConfig(lr=0), "lr must be > 0"),
        (lambda: TrainConfig(clip="both"), "clip must be one of"),
        (lambda: model_from_dict({"kind": "transformer", "config": {}}), "unknown model kind"),
    ],
)
def test_bad_configuration_fails_early(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_decoding_arguments_fail_early():
    model = Seq2Seq(s2s(encoder=RNNConfig("gru", 8), decoder=RNNConfig("gru", 8)))
    src = torch.randint(0, 10, (2, 5))
    with pytest.raises(ValueError, match="beam_width must be a positive integer"):
        beam_search(model, src, beam_width=0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        sample(model, src, temperature=0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        sample(model, src, top_p=0)
    with pytest.raises(ValueError, match="max_length must be a positive integer"):
        greedy(model, src, max_length=0)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 10\)"):
        greedy(model, src + 20)
