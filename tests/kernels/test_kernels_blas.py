"""The kernels' BLAS: what available() reports, and the ATen fallback (RNNKIT_BLAS=aten, what a
torch whose libraries export no sgemm_ runs) passing the kernels' equivalence tests."""

import os
import subprocess
import sys
from pathlib import Path

from rnnkit import kernels
from rnnkit.kernels import _build

# In one interpreter (a torch import costs seconds): the status, then the equivalence tests
# against the naive loops, forward and backward, with and without lengths, every GRU variant.
SCRIPT = """
import sys, pytest
from rnnkit import kernels
print("BLAS", kernels.available().blas)
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-c", {devnull!r}, "--rootdir", {root!r},
                      {tests!r}, "-k", {select!r}]))
"""
SELECT = "lstm_matches_naive or gru_matches_naive or elman_matches_naive and tanh or lengths_zero"


def test_available_says_where_the_gemms_and_the_threads_come_from():
    status = kernels.available()
    assert status.blas in status.reason and status.threads in status.reason
    built_with, backend = _build.torch_backends()
    if built_with != "none":  # a torch with a BLAS: the kernels call it, not the ATen fallback
        assert status.blas.startswith(f"{built_with} (sgemm_ from lib"), status.blas
    if backend.startswith("OpenMP"):  # and run on the OpenMP runtime it loaded
        assert status.threads.startswith(f"{backend} (lib"), status.threads


def test_the_aten_fallback_passes_the_equivalence_tests():
    tests = Path(__file__).with_name("test_kernels.py")
    script = SCRIPT.format(
        devnull=os.devnull, root=str(tests.parent), tests=str(tests), select=SELECT
    )
    env = {**os.environ, "RNNKIT_BLAS": "aten"}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    first = proc.stdout.splitlines()[0]
    assert first.startswith("BLAS ") and first.endswith("(ATen addmm: RNNKIT_BLAS=aten)"), first
    assert " passed" in proc.stdout and "failed" not in proc.stdout, proc.stdout[-500:]
