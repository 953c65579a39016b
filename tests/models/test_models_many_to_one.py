import pytest
import torch

from _tasks import sign_of_sum
from rnnkit.algorithms import BPTT
from rnnkit.config import HeadConfig, InputConfig, ManyToOneConfig, RNNConfig, TrainConfig
from rnnkit.models import ManyToOne, build_model, model_from_dict, model_to_dict
from rnnkit.training import Trainer


def test_learns_sign_of_sum_of_variable_length_sequences():
    torch.manual_seed(0)
    cfg = ManyToOneConfig(
        InputConfig("frames", features=1),
        HeadConfig("softmax", 2),
        RNNConfig("gru", 32, impl="torch"),
        readout="last",
    )
    model = build_model(cfg)
    train = TrainConfig(steps=400, lr=1e-2, schedule="cosine", progress=False)
    Trainer(model, BPTT(), train).fit(lambda step, g: sign_of_sum(64, g))
    x, y, lengths = sign_of_sum(2000, torch.Generator().manual_seed(99))
    model.eval()
    with torch.no_grad():
        logits, _ = model(x, lengths=lengths)
    accuracy = (logits.argmax(-1) == y).float().mean().item()
    assert accuracy >= 0.98, accuracy


@pytest.mark.parametrize("readout", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_readouts_ignore_padding(readout, bidirectional):
    cfg = ManyToOneConfig(
        InputConfig("frames", features=3),
        HeadConfig("regression", 2),
        RNNConfig("lstm", 8, bidirectional=bidirectional, impl="reference"),
        readout=readout,
    )
    model = ManyToOne(cfg).eval()
    x = torch.randn(2, 6, 3)
    lengths = torch.tensor([4, 6])
    out, _ = model(x, lengths=lengths)
    noisy = x.clone()
    noisy[0, 4:] = 100.0  # garbage past the first sequence's end must not matter
    out2, _ = model(noisy, lengths=lengths)
    assert out.shape == (2, 2)
    torch.testing.assert_close(out, out2)
    alone, _ = model(x[:1, :4], lengths=torch.tensor([4]))
    torch.testing.assert_close(out[:1], alone)


@pytest.mark.parametrize("head", ["softmax", "regression", "gaussian", "multilabel"])
def test_heads_train_and_round_trip(head):
    cfg = ManyToOneConfig(InputConfig("tokens", 5, 4), HeadConfig(head, 3), RNNConfig("gru", 8))
    model = build_model(cfg)
    x = torch.randint(0, 5, (4, 7))
    targets = {
        "softmax": torch.randint(0, 3, (4,)),
        "regression": torch.randn(4, 3),
        "gaussian": torch.randn(4, 3),
        "multilabel": torch.randint(0, 2, (4, 3)).float(),
    }[head]
    out = model.loss((x, targets))
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.count == 4
    again = model_from_dict(model_to_dict(model))
    assert again.config == model.config
