"""The README's tour works when pasted: every ```python block runs, in order, in one namespace."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_a_tour():
    assert len(python_blocks()) >= 2


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runs/ written by the tour land in a scratch directory
    namespace: dict = {}
    for i, block in enumerate(python_blocks()):
        try:
            exec(compile(block, f"README.md block {i}", "exec"), namespace)
        except Exception as err:  # noqa: BLE001 - report which block broke
            pytest.fail(f"README block {i} failed: {type(err).__name__}: {err}")
