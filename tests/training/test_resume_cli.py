"""`rnnkit train <task> --resume RUN`: an interrupted run, resumed, ends bit-identical to the
same run not interrupted; a resumed run keeps its options and may get a new budget."""

import json
import signal

from clitest import invoke, one_line_error
from rnnkit.tasks.sentiment.task import TASK
from rnnkit.training.run import latest_checkpoint

TINY = ["--limit", "80", "--hidden", "8", "--embedding", "8", "--eval-every", "4", "--quiet"]


def weights(run_dir) -> bytes:
    return (latest_checkpoint(run_dir) / "model.safetensors").read_bytes()


def interrupt_at(monkeypatch, step: int) -> None:
    """Ctrl-C while the batch of `step` is made (the step still trains, then the run stops)."""
    batches = TASK.batches

    def with_ctrl_c(options, data):
        train, val = batches(options, data)

        def make(s, gen):
            if s == step:
                signal.raise_signal(signal.SIGINT)
            return train(s, gen)

        return make, val

    monkeypatch.setattr(TASK, "batches", with_ctrl_c)


def test_an_interrupted_run_resumed_equals_the_run_not_interrupted(tmp_path, monkeypatch):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert invoke("train", "sentiment", *TINY, "--steps", 12, "--out", straight).exit_code == 0
    with monkeypatch.context() as m:
        interrupt_at(m, 5)
        result = invoke("train", "sentiment", *TINY, "--steps", 12, "--out", stopped)
    assert result.exit_code == 130, result.output
    assert f"resume with: rnnkit train sentiment --resume {stopped}" in result.output
    assert latest_checkpoint(stopped).name.startswith("step-000000006-")
    result = invoke("train", "sentiment", "--resume", stopped, "--quiet")
    assert result.exit_code == 0, result.output
    assert weights(stopped) == weights(straight)  # the same bytes: bit-identical parameters
    a, b = (json.loads((d / "results.json").read_text()) for d in (straight, stopped))
    assert a["model"] == b["model"] and b["fit"]["steps"] == 12
    events = [json.loads(x).get("event") for x in (stopped / "metrics.jsonl").open()]
    assert events.count("resumed") == 1 and events.count("interrupted") == 1

    # a new budget extends it; the options stay the run's own
    result = invoke("train", "sentiment", "--resume", stopped, "--steps", 14, "--quiet")
    assert result.exit_code == 0, result.output
    config = json.loads((stopped / "config.json").read_text())
    assert config["extra"]["options"]["steps"] == 14 and config["extra"]["options"]["hidden"] == 8
    assert json.loads((stopped / "results.json").read_text())["fit"]["steps"] == 14
    one_line_error(invoke("train", "sentiment", "--resume", stopped, "--hidden", 4), "--hidden")
    one_line_error(invoke("train", "text", "--resume", stopped), "rnnkit train sentiment --resume")
    one_line_error(invoke("train", "sentiment", "--resume", stopped, "--out", tmp_path), "--out")
    one_line_error(invoke("train", "sentiment", "--resume", tmp_path / "none"), "none")
