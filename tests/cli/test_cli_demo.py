from typer.testing import CliRunner

from rnnkit.cli import app


def test_demo_runs_and_reports_accuracy():
    result = CliRunner().invoke(app, ["demo", "--steps", "5"])
    assert result.exit_code == 0, result.output
    assert "accuracy on fresh sequences" in result.output
    assert "input :" in result.output and "output:" in result.output


def test_demo_rejects_zero_steps():
    result = CliRunner().invoke(app, ["demo", "--steps", "0"])
    assert result.exit_code == 2
