"""A failed kernel build leaves every other implementation working and says why."""

import os
import subprocess
import sys

SCRIPT = """
import torch, rnnkit
from rnnkit import kernels
status = kernels.available()
assert not status, status
print("REASON", status.reason)
gru = rnnkit.GRU(3, 4)
gru(torch.randn(2, 5, 3))
print("AUTO", gru.impl_used)
try:
    rnnkit.GRU(3, 4, impl="fused")(torch.randn(2, 5, 3))
except ValueError as err:
    print("FUSED", err)
"""


def test_failed_build_is_reported_and_auto_uses_torch(tmp_path):
    env = {**os.environ, "CC": "false", "RNNKIT_CACHE_DIR": str(tmp_path)}
    env.pop("RNNKIT_KERNELS_SO", None)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "REASON compiling the native kernels failed" in out
    assert "AUTO torch" in out
    assert "FUSED Recurrent: impl='fused' cannot run this layer: native kernels unavailable" in out
