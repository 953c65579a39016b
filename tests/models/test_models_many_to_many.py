import torch

from _tasks import DELAY, delayed_echo
from rnnkit.algorithms import BPTT
from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig, TrainConfig
from rnnkit.models import ManyToMany, build_model, sample
from rnnkit.training import Streamer, Trainer


def echo_model(hidden=32):
    cfg = ManyToManyConfig(
        InputConfig("tokens", 8, 16),
        HeadConfig("softmax", 8),
        RNNConfig("lstm", hidden, impl="torch"),
    )
    return build_model(cfg)


def test_learns_delayed_echo():
    torch.manual_seed(0)
    model = echo_model()
    cfg = TrainConfig(steps=300, lr=1e-2, progress=False)
    Trainer(model, BPTT(), cfg).fit(lambda step, g: delayed_echo(32, g))
    x, y = delayed_echo(500, torch.Generator().manual_seed(7))
    model.eval()
    with torch.no_grad():
        logits, _ = model(x)
    accuracy = (logits.argmax(-1)[:, DELAY:] == y[:, DELAY:]).float().mean().item()
    assert accuracy >= 0.98, accuracy


def test_state_continues_a_stream_and_streamer_matches_whole_sequence():
    model = echo_model(8).eval()
    x = torch.randint(0, 8, (3, 12))
    whole, _ = model(x)
    a, s = model(x[:, :5])
    b, _ = model(x[:, 5:], s)
    torch.testing.assert_close(torch.cat([a, b], 1), whole)
    streamer = Streamer(model)
    steps = [streamer.step(x[:, t]) for t in range(12)]
    torch.testing.assert_close(torch.stack(steps, 1), whole)
    streamer.reset()
    torch.testing.assert_close(streamer.feed(x[:, :4]), whole[:, :4])


def test_lengths_mask_the_loss_and_generation_runs():
    model = echo_model(8)
    x = torch.randint(0, 8, (2, 6))
    y = torch.randint(0, 8, (2, 6))
    full = model.loss((x, y, torch.tensor([3, 6])))
    assert full.count == 9
    out = sample(model, x[:, :2], max_length=5, top_k=3, generator=torch.Generator().manual_seed(0))
    assert out.tokens.shape == (2, 5)


def test_tied_weights_share_the_embedding():
    cfg = ManyToManyConfig(
        InputConfig("tokens", 8, 16),
        HeadConfig("softmax", 8),
        RNNConfig("gru", 16),
        tie_weights=True,
    )
    model = ManyToMany(cfg)
    assert model.head.linear.weight is model.input.embedding.weight
