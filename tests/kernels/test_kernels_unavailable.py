"""Where the kernels come from: the compiled extension, the developer fallback, or nowhere."""

import os
import subprocess
import sys
import warnings

from rnnkit.kernels import _build

# One interpreter (a torch import costs seconds): first the installed extension with no compiler
# on PATH, then, as in a checkout that was never built, the fallback with no compiler to use.
SCRIPT = """
import os, shutil, torch, rnnkit
from rnnkit import kernels
from rnnkit.kernels import _build
assert not any(shutil.which(c) for c in ("gcc", "cc", "g++", "c++", "clang")), "a compiler"
print("BUILD", kernels.available().build)
gru = rnnkit.GRU(3, 4, impl="auto")
with torch.no_grad():
    gru(torch.randn(2, 5, 3))
print("IMPL", gru.impl_used)
print("STREAM", tuple(gru.streamer().step(torch.randn(1, 3)).shape))
os.environ["RNNKIT_KERNELS"] = "jit"
_build._status = None
print("REASON", kernels.available().reason)
gru = rnnkit.GRU(3, 4)
gru(torch.randn(2, 5, 3))
print("AUTO", gru.impl_used)
try:
    rnnkit.GRU(3, 4, impl="fused")(torch.randn(2, 5, 3))
except ValueError as err:
    print("FUSED", err)
"""


def _run(script, env):
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )


def test_built_extension_needs_no_compiler_and_a_missing_one_is_reported(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "CXX", "RNNKIT_KERNELS")}
    env["PATH"] = str(tmp_path)  # an empty directory: no gcc, cc, g++, clang
    env["RNNKIT_CACHE_DIR"] = str(tmp_path)
    proc = _run(SCRIPT, env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:3] == ["BUILD extension", "IMPL fused", "STREAM (1, 4)"]
    assert lines[3].startswith("REASON no C++ compiler 'c++' on PATH to build the kernels")
    assert lines[4] == "AUTO torch"
    assert lines[5].startswith(
        "FUSED Recurrent: impl='fused' cannot run this layer: native kernels unavailable"
    )


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


def test_a_failed_build_is_reported_by_the_compilers_diagnostic():
    """torch's message starts with the command line it ran; the reason names what went wrong."""
    message = (
        "Error building extension 'rnnkit_kernels': [1/6] /opt/gcc/bin/g++ -MMD -MF blas.o.d "
        "-isystem /usr/include/python3.12 -fPIC -std=c++17 -O3 -c blas.cpp -o blas.o\n"
        "In file included from torch/extension.h:9,\n"
        "/usr/include/python3.12/pyconfig.h:3:12: fatal error: x86_64-linux-gnu/python3.12/"
        "pyconfig.h: No such file or directory\n"
        "compilation terminated.\nninja: build stopped: subcommand failed.\n"
    )
    reason = _build._first_line(RuntimeError(message))
    assert reason.startswith("/usr/include/python3.12/pyconfig.h:3:12: fatal error:")
    assert reason.endswith("(install Python's headers, e.g. apt install python3-dev)")
    assert _build._first_line(RuntimeError("Error building extension 'x': ninja died")) == (
        "Error building extension 'x': ninja died"
    )
