"""The Task pattern: options declared once (bounds, inheritance, budgets), the run record of
every version, and the driver's refusals."""

from __future__ import annotations

import json
import math

import pytest

from clitest import invoke, one_line_error
from rnnkit.record import SCHEMA, run_record
from rnnkit.tasks.driver import task_names
from rnnkit.tasks.options import OptionError, TrainOptions, opt, options


@options
class ToyOptions(TrainOptions):
    hidden: int = 7  # a new default; help and bounds come from TrainOptions
    cell: str = opt("gru", choices=("gru",))
    window: int = opt(3, "Frames per step.", ge=1, le=100)
    epochs: float | None = 2.0


def test_redeclared_fields_keep_their_help_and_bounds():
    fields = {f.name: f for f in ToyOptions.__dataclass_fields__.values()}
    assert fields["hidden"].default == 7
    assert fields["hidden"].metadata["help"] == TrainOptions.__dataclass_fields__[
        "hidden"].metadata["help"]  # fmt: skip
    assert fields["cell"].metadata["choices"] == ("gru",) and fields["cell"].metadata["help"]
    with pytest.raises(OptionError, match=r"^hidden must be >= 1, got 0$"):
        ToyOptions(hidden=0)
    with pytest.raises(OptionError, match="cell must be one of gru, got 'lstm'"):
        ToyOptions(cell="lstm")


@pytest.mark.parametrize(
    "field, value, needle",
    [("lr", math.inf, "finite"), ("lr", math.nan, "finite"), ("lr", 11.0, "<= 10"),
     ("seed", 2**64, "<= 4294967295"), ("seed", -1, ">= 0"), ("hidden", True, "integer"),
     ("hidden", 2.5, "integer"), ("minutes", 0.0, "> 0"), ("window", 10**30, "<= 100"),
     ("threads", 0, ">= 1"), ("data", 3, "a string")],
)  # fmt: skip
def test_every_field_is_checked_where_it_is_declared(field, value, needle):
    with pytest.raises(OptionError, match=needle) as err:
        ToyOptions(**{field: value})
    assert err.value.field == field


def test_a_budget_is_required_and_the_first_one_reached_wins():
    with pytest.raises(OptionError, match="budget"):
        ToyOptions(epochs=None)
    assert ToyOptions().total_steps(steps_per_epoch=10) == 20
    assert ToyOptions(steps=5).total_steps(10) == 5
    assert ToyOptions(epochs=0.01).total_steps(10) == 1
    assert ToyOptions(epochs=None, minutes=1.0).total_steps(10) >= 10**9


def test_run_record_reads_every_schema():
    now = {"schema": SCHEMA, "task": "sentiment", "options": {"hidden": 8}, "data": {}}
    assert run_record(now) is now
    nested = run_record({"text": {"options": {"cell": "lstm"}, "data": {"source": "x"}}})
    assert (nested["schema"], nested["task"], nested["options"]) == (1, "text", {"cell": "lstm"})
    flat = run_record({"task": "sequence-classify", "data": {"name": "GunPoint"}})
    assert (flat["schema"], flat["task"]) == (1, "sequence_classify")
    assert run_record({})["task"] is None


def test_a_run_from_0_1_gets_one_line_naming_the_version(tmp_path):
    run = tmp_path / "old"
    invoke_ok = invoke("train", "sentiment", "--limit", "40", "--hidden", "4", "--embedding",
                       "4", "--steps", "2", "--threads", "1", "--quiet", "--out", run)  # fmt: skip
    assert invoke_ok.exit_code == 0, invoke_ok.output
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["extra"]["schema"] == SCHEMA and cfg["extra"]["machine"]["cpus"] >= 1
    cfg["extra"] = {"sentiment": {"options": cfg["extra"]["options"], "data": {}}}
    (run / "config.json").write_text(json.dumps(cfg))
    one_line_error(invoke("classify", run, "good"), "written by rnnkit 0.1")
    one_line_error(invoke("train", "sentiment", "--out", run, "--steps", "1"), "--overwrite")


def test_every_application_package_is_a_train_command():
    result = invoke("train", "--help")
    assert result.exit_code == 0
    for name in task_names():
        assert name.replace("_", "-") in result.stdout


def test_threads_beyond_the_cores_are_capped_with_a_note(tmp_path):
    result = invoke("train", "sentiment", "--limit", "40", "--hidden", "4", "--embedding", "4",
                    "--steps", "1", "--threads", "4096", "--quiet", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert "capped at this machine's" in result.stderr
    import torch

    torch.set_num_threads(1)  # the suite's setting (conftest)


def test_the_data_step_runs_on_the_threads_asked_for(tmp_path, monkeypatch):
    """--threads holds from the data step on: sequence-classify's automatic settings train
    candidate models there (session 11 found them on torch's default threads)."""
    import torch

    from rnnkit.tasks.sentiment.task import SentimentTask

    seen = []
    prepare = SentimentTask.prepare

    def spy(self, options):
        seen.append(torch.get_num_threads())
        return prepare(self, options)

    monkeypatch.setattr(SentimentTask, "prepare", spy)
    torch.set_num_threads(2)
    try:
        result = invoke("train", "sentiment", "--limit", "40", "--hidden", "4", "--embedding",
                        "4", "--steps", "1", "--threads", "1", "--quiet", "--out", tmp_path / "r")
    finally:
        torch.set_num_threads(1)  # the suite's setting (conftest)
    assert result.exit_code == 0, result.output
    assert seen == [1]


def test_a_data_file_is_recorded_by_its_absolute_path(tmp_path, monkeypatch):
    rows = ["text,label"] + [f"good film {i},pos" for i in range(30)] + [
        f"dull film {i},neg" for i in range(30)]  # fmt: skip
    (tmp_path / "reviews.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "sentiment", "--data", "reviews.csv", "--hidden", "4",
                    "--embedding", "4", "--steps", "2", "--threads", "1", "--quiet",
                    "--out", "run")  # fmt: skip
    assert result.exit_code == 0, result.output
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["extra"]["options"]["data"] == str(tmp_path.resolve() / "reviews.csv")
