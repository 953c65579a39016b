import json
import math
import os
import signal

import pytest
import torch

from _tasks import delayed_echo
from rnnkit.algorithms import BPTT
from rnnkit.atomic import atomic_write_bytes
from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig, TrainConfig
from rnnkit.models import build_model
from rnnkit.training import (
    Callback,
    LambdaCallback,
    RunError,
    Trainer,
    load_run,
    write_run_json,
)
from rnnkit.training import run as run_module


def new_model():
    cfg = ManyToManyConfig(
        InputConfig("tokens", 8, 8), HeadConfig("softmax", 8), RNNConfig("gru", 12, impl="torch")
    )
    return build_model(cfg)


def batches(step, g):
    return delayed_echo(8, g, T=10)


def fit(path, steps=10, callbacks=(), model=None, **kw):
    cfg = TrainConfig(steps=steps, lr=5e-3, progress=False, **kw)
    trainer = Trainer(
        model or new_model(), BPTT(), cfg, path, callbacks, extra={"vocab": "abcdefgh"}
    )
    return trainer, trainer.fit(batches, batches)


def test_run_directory_round_trip(tmp_path):
    trainer, result = fit(tmp_path / "run", steps=10, eval_every=5, log_every=2)
    assert result.status == "completed"
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["checkpoint", "config.json", "metrics.jsonl", "model.safetensors"]
    write_run_json(tmp_path / "run", "vocab", {"chars": "abcdefgh"})
    run = load_run(tmp_path / "run")
    assert not run.model.training and run.extra == {"vocab": "abcdefgh"}
    assert run.read_json("vocab") == {"chars": "abcdefgh"}
    assert run.train_config.steps == 10 and run.algorithm == {"name": "bptt"} and run.step == 10
    x, _ = delayed_echo(2, torch.Generator().manual_seed(0), T=5)
    trainer.model.eval()
    torch.testing.assert_close(run.model(x)[0], trainer.model(x)[0])  # best = last eval here
    train = [m for m in run.metrics if m.get("split") == "train"]
    assert [m["step"] for m in train] == [2, 4, 6, 8, 10]
    assert all("tokens_per_s" in m and "lr" in m for m in train)
    assert [m["step"] for m in run.evals()] == [5, 10]


def test_not_a_run_and_corrupted_weights_raise_run_error(tmp_path):
    with pytest.raises(RunError, match="not a directory"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a run directory"):
        load_run(tmp_path / "empty")
    fit(tmp_path / "run", steps=2)
    (tmp_path / "run" / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(RunError, match="corrupted"):
        load_run(tmp_path / "run")
    (tmp_path / "run" / "config.json").write_text("{not json")
    with pytest.raises(RunError, match="not valid JSON"):
        load_run(tmp_path / "run")
    assert issubclass(RunError, ValueError)


def test_existing_run_is_not_overwritten_silently(tmp_path):
    fit(tmp_path / "run", steps=2)
    with pytest.raises(RunError, match="already holds a run"):
        fit(tmp_path / "run", steps=2)


def test_failure_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    trainer, _ = fit(tmp_path / "run", steps=4)
    good = load_run(tmp_path / "run", weights="checkpoint")
    calls = {"n": 0}
    real = run_module.atomic_write_bytes

    def crash_on_state(path, data):
        calls["n"] += 1
        if str(path).endswith("trainer.pt"):
            real(path, data[: len(data) // 2])  # half a file, then the machine "dies"
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(run_module, "atomic_write_bytes", crash_on_state)
    trainer.state.step = 99
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint()
    after = load_run(tmp_path / "run", weights="checkpoint")
    assert after.step == 4 and calls["n"] >= 2
    for (n, a), (_, b) in zip(
        good.model.state_dict().items(), after.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), n
    assert not [p for p in (tmp_path / "run" / "checkpoint").iterdir() if p.name.startswith(".")]


def test_atomic_write_failure_leaves_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def boom(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    def poison(trainer, logs):
        if trainer.step == 6:
            with torch.no_grad():
                trainer.model.head.linear.bias.fill_(math.nan)

    trainer, result = fit(
        tmp_path / "run",
        steps=20,
        checkpoint_every=5,
        callbacks=[LambdaCallback(on_step_end=poison)],
    )
    assert result.status == "diverged" and not result.ok
    assert "non-finite" in result.message and "step 5" in result.message
    assert result.step == 6
    run = load_run(tmp_path / "run", weights="checkpoint")
    assert run.step == 5
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    assert any(m.get("event") == "diverged" for m in run.metrics)


def test_early_stopping_and_best_weights(tmp_path):
    class Worse(Callback):
        """Feeds evaluations that never improve after the first."""

    trainer = Trainer(
        new_model(),
        BPTT(),
        TrainConfig(steps=50, lr=1e-9, eval_every=2, patience=2, progress=False),
        tmp_path / "run",
    )
    result = trainer.fit(
        batches, lambda i, g: delayed_echo(4, torch.Generator().manual_seed(i), T=10)
    )
    # lr ~ 0: the val loss cannot improve by much; patience 2 stops it after 3 evals or soon
    assert result.status in ("early_stopped", "completed")
    assert result.best_step is not None


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    def interrupt(trainer, logs):
        if trainer.step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    trainer, result = fit(
        tmp_path / "run", steps=50, callbacks=[LambdaCallback(on_step_end=interrupt)]
    )
    assert result.status == "interrupted" and result.step == 3
    assert load_run(tmp_path / "run", weights="checkpoint").step == 3
    assert "resume" in result.message


def test_callbacks_can_add_to_eval_records_and_stop(tmp_path):
    def add_sample(trainer, record):
        record["sample"] = "hello"

    def stop(trainer, logs):
        trainer.should_stop = trainer.step >= 4

    _, result = fit(
        tmp_path / "run",
        steps=50,
        eval_every=2,
        callbacks=[LambdaCallback(on_eval_end=add_sample, on_step_end=stop)],
    )
    assert result.status == "stopped" and result.step == 4
    evals = load_run(tmp_path / "run").evals()
    assert evals and all(e["sample"] == "hello" for e in evals)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in lines)


def test_time_budget_stops(tmp_path):
    _, result = fit(tmp_path / "run", steps=10_000, time_minutes=0.005)
    assert result.status == "time_budget" and 0 < result.step < 10_000


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import os
    import stat

    from rnnkit.atomic import atomic_write_text

    atomic_write_text(tmp_path / "a.txt", "hello")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~mask


def test_run_task_names_the_command_that_made_it():
    from rnnkit.training.run import Run

    def run(extra):
        return Run(None, None, None, None, None, extra, [], None)

    assert run({"task": "forecast", "data": "sunspots"}).task == "forecast"
    assert run({"text": {"vocab": []}}).task == "text"
    assert run({}).task is None


def test_sigterm_is_handled_like_ctrl_c_and_handlers_are_restored(tmp_path):
    def terminate(trainer, logs):
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    _, result = fit(tmp_path / "run", steps=50, callbacks=[LambdaCallback(on_step_end=terminate)])
    assert result.status == "interrupted" and result.step == 2
    assert "SIGTERM" in result.message and "checkpoint saved" in result.message
    assert load_run(tmp_path / "run", weights="checkpoint").step == 2
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_a_second_signal_aborts_at_once():
    from rnnkit.training import StopSignals

    with pytest.raises(KeyboardInterrupt), StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.name == "SIGTERM"
        os.kill(os.getpid(), signal.SIGINT)


def test_checkpoint_keeps_the_0_1_0_layout(tmp_path):
    # runs checkpointed by 0.1.0 must resume: trainer.pt is one flat dict with these keys
    fit(tmp_path / "run", steps=4, eval_every=2)
    ckpt = load_run(tmp_path / "run", weights="checkpoint").checkpoint
    state = torch.load(ckpt / "trainer.pt", weights_only=True)
    assert set(state) == {
        "step", "epoch", "batch_in_epoch", "epoch_rng", "elapsed", "items", "best",
        "best_step", "bad_evals", "last_val", "optimizer", "scheduler", "schedule", "rng",
        "carry", "window",
    }  # fmt: skip
    assert state["step"] == 4 and state["best_step"] in (2, 4)


def test_time_schedule_decays_the_rate_over_the_trainers_elapsed_time(tmp_path):
    seen = []  # (elapsed after the step, lr the step used)
    log = LambdaCallback(on_step_end=lambda t, logs: seen.append((t.elapsed, logs["lr"])))
    _, result = fit(
        None, steps=10**9, time_minutes=0.01, schedule="cosine", schedule_over="time",
        min_lr_ratio=0.1, callbacks=[log],
    )  # fmt: skip
    assert result.status == "time_budget" and len(seen) > 10
    budget = 0.01 * 60

    def cosine(elapsed):
        frac = min(elapsed / budget, 1.0)
        return 5e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    assert seen[0][1] == pytest.approx(5e-3)  # no time used when the first step starts
    for (before, _), (_, lr) in zip(seen, seen[1:], strict=False):
        assert lr == pytest.approx(cosine(before), rel=1e-9)
    assert all(b <= a for (_, a), (_, b) in zip(seen, seen[1:], strict=False))  # it decays
    assert seen[-1][0] >= budget  # the run went on to the end of the budget
    # The last step's rate comes from the time before it, and one slow step on a loaded
    # machine can start well before the end; the schedule itself must reach lr·min_lr_ratio.
    assert cosine(budget) == pytest.approx(0.1 * 5e-3) and seen[-1][1] < seen[0][1]


def test_time_schedule_needs_a_time_budget_and_a_fractional_schedule():
    with pytest.raises(ValueError, match="schedule_over='time' needs time_minutes"):
        TrainConfig(schedule="cosine", schedule_over="time")
    with pytest.raises(ValueError, match="schedule_over='time' works with schedule"):
        TrainConfig(schedule="step", schedule_over="time", time_minutes=1)
    with pytest.raises(ValueError, match="schedule_over"):
        TrainConfig(schedule_over="epochs")


def test_machine_info_describes_this_machine():
    from rnnkit import __version__
    from rnnkit.training import machine_info

    info = machine_info()
    json.dumps(info)  # JSON-ready
    assert info["cpus"] == os.cpu_count() and info["torch_threads"] == torch.get_num_threads()
    assert info["rnnkit"] == __version__ and info["torch"] == torch.__version__
    assert len(info["load_average"]) == 3 and info["python"].count(".") == 2
    assert info["kernels"] == "fused" or info["kernels"].startswith("unavailable: ")
