"""A missing optional package is one line naming the install command, before any work starts."""

import importlib.util
import tomllib
from pathlib import Path

import pytest
import typer

from rnnkit.cli.errors import user_errors
from rnnkit.deps import MissingDependency, require

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def hide(monkeypatch, *modules):
    """Make `modules` look uninstalled to find_spec, whatever this machine has."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in modules else real(name, *a)
    )


def test_installed_modules_pass():
    require("json", "importlib.util", extra="apps")


def test_missing_module_names_the_extra_and_the_pinned_package(monkeypatch):
    hide(monkeypatch, "sklearn")
    pin = next(
        r
        for r in tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["apps"]
        if r.startswith("scikit-learn")
    )
    with pytest.raises(MissingDependency) as err:
        require("json", "sklearn", what="the bag-of-words baseline")
    message = str(err.value)
    assert message == (
        "the bag-of-words baseline needs scikit-learn (not installed); install with: "
        f"pip install 'rnnkit[apps]' (or only what is missing: pip install '{pin}')"
    )
    assert "\n" not in message


def test_without_an_extra_only_the_packages_are_named():
    with pytest.raises(MissingDependency) as err:
        require("no_such_a", "no_such_b.sub", extra=None, what="x")
    assert str(err.value) == (
        "x needs no_such_a, no_such_b (not installed); "
        "install with: pip install no_such_a no_such_b"
    )


def test_cli_reports_it_as_a_user_error(capsys):
    with pytest.raises(typer.Exit) as exit_, user_errors():
        require("no_such_module", what="train sentiment")
    assert exit_.value.exit_code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: train sentiment needs no_such_module") and err.count("\n") == 1
