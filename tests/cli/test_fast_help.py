"""`rnnkit --help`, `rnnkit train X --help` and shell completion answer without importing torch
(torch alone takes ~1-4 s to import; the CLI's own modules take ~0.1 s)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from typer.testing import CliRunner
from rnnkit.cli import app
result = CliRunner().invoke(app, {args!r})
assert result.exit_code == 0, result.output
print("torch" in sys.modules)
"""


def _torch_imported(args: list[str]) -> bool:
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["train", "--help"], ["train", "sentiment", "--help"]]
)
def test_help_does_not_import_torch(args):
    assert not _torch_imported(args)
