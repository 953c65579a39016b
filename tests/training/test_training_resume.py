import os

import pytest
import torch

from _tasks import delayed_echo
from rnnkit.algorithms import BPTT, TBPTT
from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig, TrainConfig
from rnnkit.models import build_model
from rnnkit.training import LambdaCallback, Trainer, load_run, resume, stream_batches


def new_model():
    torch.manual_seed(0)
    cfg = ManyToManyConfig(
        InputConfig("tokens", 8, 8),
        HeadConfig("softmax", 8, dropout=0.2),  # dropout: the RNG state must be restored too
        RNNConfig("gru", 16, impl="reference"),  # "torch" builds its nn.GRU lazily, drawing RNG
    )
    return build_model(cfg)


def params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for n in a:
        assert torch.equal(a[n], b[n]), n


def echo_batches(step, g):
    return delayed_echo(8, g, T=10)


TRAIN = dict(lr=5e-3, schedule="cosine", warmup_steps=3, eval_every=5, progress=False)


def test_stop_and_resume_gives_identical_parameters(tmp_path):
    straight = Trainer(new_model(), BPTT(), TrainConfig(steps=20, **TRAIN), tmp_path / "a")
    straight.fit(echo_batches, echo_batches)

    stop_at_8 = LambdaCallback(on_step_end=lambda t, logs: setattr(t, "should_stop", t.step == 8))
    first = Trainer(
        new_model(), BPTT(), TrainConfig(steps=20, **TRAIN), tmp_path / "b", [stop_at_8]
    )
    assert first.fit(echo_batches, echo_batches).step == 8
    result = resume(tmp_path / "b", echo_batches, echo_batches)
    assert result.status == "completed" and result.step == 20
    assert_same(
        params(straight.model), params(load_run(tmp_path / "b", weights="checkpoint").model)
    )
    # metrics.jsonl holds every step once
    steps = [m["step"] for m in load_run(tmp_path / "b").metrics if m.get("split") == "train"]
    assert steps == sorted(set(steps))


def test_resume_with_stateful_tbptt_over_epochs_of_an_iterable(tmp_path):
    tokens = torch.randint(0, 8, (8 * 6 * 5 + 1,), generator=torch.Generator().manual_seed(3))
    data = stream_batches(tokens, batch_size=8, seq_len=6)  # 5 batches per epoch
    cfg = dict(lr=5e-3, progress=False)
    straight = Trainer(new_model(), TBPTT(3, 5), TrainConfig(steps=13, **cfg), tmp_path / "a")
    straight.fit(data)
    # stopped by Ctrl-C at step 7, in the middle of the second epoch
    stop_at_7 = LambdaCallback(on_step_end=lambda t, logs: t.step == 7 and os.kill(os.getpid(), 2))
    first = Trainer(
        new_model(), TBPTT(3, 5), TrainConfig(steps=13, **cfg), tmp_path / "b", [stop_at_7]
    )
    assert first.fit(data).status == "interrupted"
    resumed = Trainer.from_run(tmp_path / "b")
    assert resumed.fit(data, resume=True).step == 13
    assert resumed.epoch == straight.epoch == 2
    assert_same(params(straight.model), params(resumed.model))
    assert torch.equal(resumed.algorithm.carry_state(), straight.algorithm.carry_state())


def test_a_resumed_run_continues_where_it_was_on_the_time_schedule(tmp_path):
    import math

    cfg = TrainConfig(
        steps=10**9, time_minutes=1.0, lr=5e-3, schedule="cosine", schedule_over="time",
        progress=False,
    )  # fmt: skip
    stop_at_30 = LambdaCallback(on_step_end=lambda t, logs: setattr(t, "should_stop", t.step == 30))
    first = Trainer(new_model(), BPTT(), cfg, tmp_path / "run", [stop_at_30])
    assert first.fit(echo_batches).step == 30
    seen = {}

    def record(t, logs):
        seen.setdefault("lr", logs["lr"])
        t.should_stop = True

    resumed = Trainer.from_run(
        tmp_path / "run",
        callbacks=[LambdaCallback(on_fit_start=lambda t: seen.setdefault("elapsed", t.elapsed),
                                  on_step_end=record)],
    )  # fmt: skip
    assert resumed.fit(echo_batches, resume=True).step == 31
    assert seen["elapsed"] == pytest.approx(first.elapsed) and seen["elapsed"] > 0
    frac = seen["elapsed"] / 60
    assert seen["lr"] == pytest.approx(5e-3 * 0.5 * (1 + math.cos(math.pi * frac)), rel=1e-9)


def test_resume_over_a_shuffled_dataloader_restores_the_rng_last(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    x, y = delayed_echo(40, torch.Generator().manual_seed(1), T=10)
    data = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)  # draws from torch's RNG
    cfg = TrainConfig(steps=12, lr=5e-3, progress=False)
    straight = Trainer(new_model(), BPTT(), cfg, tmp_path / "a")
    straight.fit(data)
    stop_at_7 = LambdaCallback(on_step_end=lambda t, logs: setattr(t, "should_stop", t.step == 7))
    assert Trainer(new_model(), BPTT(), cfg, tmp_path / "b", [stop_at_7]).fit(data).step == 7
    resumed = Trainer.from_run(tmp_path / "b")
    assert resumed.fit(data, resume=True).step == 12
    assert_same(params(straight.model), params(resumed.model))


def test_resume_without_a_checkpoint_is_refused_and_keeps_the_saved_weights(tmp_path):
    import shutil

    from rnnkit.training import RunError

    cfg = TrainConfig(steps=6, lr=5e-3, progress=False)
    Trainer(new_model(), BPTT(), cfg, tmp_path / "run").fit(echo_batches, echo_batches)
    shutil.rmtree(tmp_path / "run" / "checkpoint")  # as if killed before the first checkpoint
    saved = [(tmp_path / "run" / n).read_bytes() for n in ("model.safetensors", "metrics.jsonl")]
    with pytest.raises(RunError, match="has no checkpoint to resume"):
        resume(tmp_path / "run", echo_batches, echo_batches)
    assert saved == [(tmp_path / "run" / n).read_bytes() for n in ("model.safetensors",
                                                                    "metrics.jsonl")]  # fmt: skip
    fresh = Trainer(new_model(), BPTT(), cfg, tmp_path / "new")  # an empty run: starts fresh
    assert fresh.fit(echo_batches, resume=True).step == 6
