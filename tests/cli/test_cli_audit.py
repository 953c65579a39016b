"""Issue 17's audit as a test: every prediction command × its bad inputs gets one `error:`
line and exit 2, never a traceback; numeric options are bounded before a run is loaded;
nothing is written out of a run through a symlink; --threads is capped at the cores."""

from __future__ import annotations

import os

import pytest

from clitest import invoke, one_line_error, tiny_sentiment_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{name: a RUN argument}: a valid sentiment run, and runs that are not runs at all."""
    root = tmp_path_factory.mktemp("audit")
    tiny_sentiment_run(root / "sentiment")
    (root / "empty").mkdir()
    (root / "file").write_text("not a run")
    (root / "dev_zero").mkdir()
    os.symlink("/dev/zero", root / "dev_zero" / "config.json")
    (root / "garbage").mkdir()
    (root / "garbage" / "config.json").write_bytes(b"\xff{not json")
    return {p.name: p for p in root.iterdir()} | {"missing": root / "missing"}


# command -> the arguments after RUN; each is run against every damaged RUN below
COMMANDS = {
    "generate": [], "evaluate": [], "classify": ["good film"], "translate": ["ein haus"],
    "forecast": [], "detect-anomalies": ["--quiet"], "inspect": ["--quiet"], "export": [],
    "runs show": [],
    "compose": [], "caption": ["image.png"], "classify-audio": ["a.wav"], "transcribe": ["a.wav"],
}  # fmt: skip
BAD_RUNS = ["missing", "file", "empty", "dev_zero", "garbage"]
NOT_THEIR_TASK = ["generate", "evaluate", "translate", "forecast", "detect-anomalies", "compose"]

# (command, arguments after RUN, the flag the error names): each is refused before the run
# is read, so it also holds for a valid run
BAD_OPTIONS = [
    ("generate", ["--length", "0"], "--length"), ("generate", ["--length", "10000000"], "--length"),
    ("generate", ["--threads", "-1"], "--threads"),
    ("evaluate", ["--threads", "2000000"], "--threads"),
    ("classify", ["good", "--threads", "-1"], "--threads"),
    ("translate", ["ein haus", "--threads", "-1"], "--threads"),
    ("forecast", ["--threads", "-1"], "--threads"),
    ("inspect", ["--steps", "100000"], "--steps"), ("inspect", ["--batch", "0"], "--batch"),
    ("inspect", ["--threads", "-1"], "--threads"),
    ("detect-anomalies", ["--threads", "-1"], "--threads"),
]  # fmt: skip


def test_every_command_and_bad_run_gets_one_line(runs):
    checked = 0
    for command, rest in COMMANDS.items():
        for bad in BAD_RUNS + (["sentiment"] if command in NOT_THEIR_TASK else []):
            result = invoke(*command.split(), runs[bad], *rest)
            try:
                one_line_error(result)
            except AssertionError as err:
                raise AssertionError(f"rnnkit {command} <{bad} run>: {err}") from None
            checked += 1
    assert checked == len(COMMANDS) * len(BAD_RUNS) + len(NOT_THEIR_TASK)


@pytest.mark.parametrize("command, rest, flag", BAD_OPTIONS)
def test_numeric_options_of_prediction_commands_are_bounded(runs, command, rest, flag):
    one_line_error(invoke(command, runs["sentiment"], *rest), flag)


def test_threads_beyond_the_cores_are_capped_with_a_note(runs):
    result = invoke("classify", runs["sentiment"], "good film", "--threads", "100000")
    assert result.exit_code == 0, result.output
    assert f"capped at this machine's {os.cpu_count()} cores" in result.stderr


@pytest.mark.parametrize("command, name", [("inspect", "inspect"),
                                           ("detect-anomalies", "anomalies")])  # fmt: skip
def test_a_symlinked_output_folder_does_not_lead_out_of_the_run(runs, tmp_path, command, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    for p in runs["sentiment"].iterdir():
        os.symlink(p, run / p.name)  # the run's files, and RUN/<name> pointing away
    os.symlink(outside, run / name)
    one_line_error(invoke(command, run, "--quiet"), f"{run / name} is a link out of the run")
    assert list(outside.iterdir()) == []


def test_rows_without_text_are_counted_not_dropped_silently(tmp_path):
    from rnnkit.data.text import DataError
    from rnnkit.tasks.sentiment.options import SentimentOptions
    from rnnkit.tasks.sentiment.task import TASK

    rows = [f"{w} film {i},{'pos' if i % 2 else 'neg'}" for i, w in enumerate(["good", "bad"] * 20)]
    (tmp_path / "s.csv").write_text("text,label\n" + "\n".join(rows + [",pos", "  ,neg"]) + "\n")
    data = TASK.prepare(SentimentOptions(data=str(tmp_path / "s.csv"), steps=1))
    assert data.summary["note"].startswith("2 rows of") and "empty text or label" in data.summary[
        "note"]  # fmt: skip
    (tmp_path / "none.csv").write_text("text,label\n,pos\n,neg\n")
    with pytest.raises(DataError, match=r"\(2 rows, all with one of them empty\)"):
        TASK.prepare(SentimentOptions(data=str(tmp_path / "none.csv"), steps=1))
