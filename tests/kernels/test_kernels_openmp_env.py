"""The `rnnkit` command shortens OpenMP's spin-wait before torch (and libgomp, which reads it
once) is imported, and keeps a value the user set."""

import os
import subprocess
import sys

# Stops the interpreter at the first import of torch (so no torch import is paid for), printing
# what libgomp would read then (`import rnnkit.cli` itself imports no torch).
SCRIPT = """
import os, sys
class AtTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            print(os.environ.get("GOMP_SPINCOUNT"), flush=True)
            os._exit(0)
sys.meta_path.insert(0, AtTorch())
from rnnkit.cli import main  # what the `rnnkit` script and `python -m rnnkit` import first
import torch  # what every command then imports
"""


def _at_torch(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env={**base, **env}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_cli_sets_a_short_spin_before_torch_loads():
    assert _at_torch() == "10000"
    assert _at_torch(GOMP_SPINCOUNT="300000") == "300000"
