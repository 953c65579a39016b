"""Where the kernels come from: the compiled extension, the developer fallback, or nowhere."""

import os
import subprocess
import sys
import warnings

from rnnkit.kernels import _build

FAILED = """
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

NO_COMPILER = """
import shutil, torch, rnnkit
from rnnkit import kernels
assert not any(shutil.which(c) for c in ("gcc", "cc", "g++", "c++", "clang")), "a compiler"
status = kernels.available()
print("BUILD", status.build)
gru = rnnkit.GRU(3, 4, impl="auto")
with torch.no_grad():
    gru(torch.randn(2, 5, 3))
print("IMPL", gru.impl_used)
s = gru.streamer()
print("STREAM", tuple(s.step(torch.randn(1, 3)).shape))
"""


def _run(script, env):
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )


def test_failed_build_is_reported_and_auto_uses_torch(tmp_path):
    # the compiled extension ignored and the fallback's compiler failing
    env = {**os.environ, "RNNKIT_KERNELS": "jit", "CXX": "false", "RNNKIT_CACHE_DIR": str(tmp_path)}
    proc = _run(FAILED, env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "REASON building the kernels failed" in out
    assert "AUTO torch" in out
    assert "FUSED Recurrent: impl='fused' cannot run this layer: native kernels unavailable" in out


def test_built_extension_runs_with_no_compiler_on_path(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "CXX", "RNNKIT_KERNELS")}
    env["PATH"] = str(tmp_path)  # an empty directory: no gcc, cc, g++, clang
    proc = _run(NO_COMPILER, env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["BUILD", "extension", "IMPL", "fused", "STREAM", "(1,", "4)"]


def test_a_corrupt_cached_build_is_rebuilt_with_a_warning(tmp_path, monkeypatch, capsys):
    """The fallback's cached .so fails to import: the cache is removed and built once more."""
    from torch.utils import cpp_extension

    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(tmp_path))
    calls = []

    def load(**kwargs):
        calls.append(kwargs["extra_cflags"])
        where = tmp_path / "kernels"
        if len(calls) == 1:
            (next(where.iterdir()) / "rnnkit_kernels.so").write_bytes(b"\x7fELF truncated")
            raise ImportError("rnnkit_kernels.so: file too short")
        assert not list(where.rglob("*.so"))  # the corrupt cache is gone before the rebuild
        return "module"

    monkeypatch.setattr(cpp_extension, "load", load)
    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: True)
    monkeypatch.setattr(_build.shutil, "which", lambda name: "/usr/bin/" + name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module, note = _build._fallback_build()
    assert module == "module" and "rebuilt" in note
    assert len(calls) == 2 and calls[1][-1] == "-DRNNKIT_REBUILT"
    assert any("failed to load" in str(w.message) for w in caught)
    assert "rebuilding them" in capsys.readouterr().err
