"""`import rnnkit` is cheap: torch is imported when a torch-using name is first touched.

The checks that look at sys.modules run in a fresh interpreter, since this one has torch already.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import rnnkit

ROOT = Path(__file__).resolve().parents[1]


def run_python(script: str) -> str:
    """stdout of `script` in a fresh interpreter that imports this checkout's rnnkit."""
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_rnnkit_and_config_does_not_import_torch():
    out = run_python(
        "import rnnkit, rnnkit.config, rnnkit.deps\n"
        "import sys\n"
        "assert 'torch' not in sys.modules, 'torch imported by import rnnkit'\n"
        "assert 'LSTM' in dir(rnnkit) and rnnkit.__version__\n"
        "from rnnkit import LSTM\n"  # the first torch-using name pulls torch in
        "print('torch' in sys.modules, LSTM.__module__)\n"
    )
    assert out.split() == ["True", "rnnkit.layers.builders"]


def test_config_and_deps_import_only_the_standard_library():
    out = run_python(
        "import sys\n"
        "before = set(sys.modules)\n"
        "import rnnkit.config, rnnkit.deps\n"
        "new = {m.partition('.')[0] for m in set(sys.modules) - before}\n"
        "print(*sorted(new - set(sys.stdlib_module_names) - {'rnnkit'}))\n"
    )
    assert out.split() == []


def test_every_public_name_resolves_to_its_submodule():
    assert rnnkit.__all__ == sorted(set(rnnkit.__all__))
    for name in rnnkit.__all__:
        value = getattr(rnnkit, name)
        assert value.__name__ == name, name
        assert value.__module__.startswith("rnnkit."), name
    assert set(rnnkit.__all__) <= set(dir(rnnkit))


def test_subpackages_are_attributes_and_unknown_names_are_attribute_errors():
    assert rnnkit.layers.Recurrent is rnnkit.Recurrent
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = rnnkit.nope
    assert not hasattr(rnnkit, "a.b")


def test_version_is_pyproject_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert rnnkit.__version__ == project["version"]
