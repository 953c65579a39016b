"""Trainer flushes subnormal floats during fit by default, and restores the setting after."""

import pytest
import torch

from _tasks import delayed_echo
from rnnkit.algorithms import BPTT
from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig, TrainConfig
from rnnkit.models import build_model
from rnnkit.training import Callback, Trainer


def _subnormals_flushed() -> bool:
    return torch.tensor([1e-39]).mul(1.0).item() == 0.0


class _Seen(Callback):
    def __init__(self):
        self.flushed = []

    def on_step_end(self, trainer, logs):
        self.flushed.append(_subnormals_flushed())


@pytest.mark.parametrize("before", [False, True])
@pytest.mark.parametrize("flush", [True, False])
def test_fit_flushes_subnormals_when_asked_and_restores_the_setting(flush, before):
    cfg = ManyToManyConfig(
        InputConfig("tokens", 8, 8), HeadConfig("softmax", 8), RNNConfig("gru", 6, impl="torch")
    )
    seen = _Seen()
    kw = {} if flush else {"flush_denormal": False}
    trainer = Trainer(build_model(cfg), BPTT(), TrainConfig(steps=2, progress=False),
                      callbacks=[seen], **kw)  # fmt: skip
    torch.set_flush_denormal(before)
    try:
        trainer.fit(lambda step, g: delayed_echo(8, g, T=5))
        assert seen.flushed == [flush or before] * 2
        assert _subnormals_flushed() == before
    finally:
        torch.set_flush_denormal(False)
