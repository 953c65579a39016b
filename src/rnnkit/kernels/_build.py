"""Load the kernels' C++ extension (the torch.ops.rnnkit operators) and say what it runs on.

The extension ``rnnkit.kernels._C`` is built when the package is installed (setup.py; an
editable install and ``make test`` build it in place). Importing it registers the operators
with torch's dispatcher; ``ops.py`` adds their fake kernels and autograd formulas.

Developer fallback, for a checkout that was never built (or ``RNNKIT_KERNELS=jit``): the same
source is compiled on first use with ``torch.utils.cpp_extension.load`` (needs ninja and a C++
compiler, ~1 min) into ``cache_dir()``. A cached build that fails to load (truncated, corrupt)
is removed and rebuilt once, with a warning. Nothing here raises: failures become a
``Status`` whose ``reason`` says what went wrong.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from . import _flags

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Status:
    """Truthy iff the kernels are loaded.

    ``reason`` says why not, or what loaded; ``build`` is "extension" (built at install),
    "fallback" (compiled on first use) or None. ``blas``: what torch was built with and, once
    loaded, what the kernels' GEMMs call (e.g. "MKL 2024.2 (sgemm_ from libtorch_cpu.so,
    packed GEMM)", or "... (ATen addmm: RNNKIT_BLAS=aten)"); ``threads``: torch's parallel
    backend and the OpenMP runtime loaded (e.g. "OpenMP 4.5 (libgomp.so.1)").
    """

    ok: bool
    reason: str
    build: str | None = None
    blas: str = ""
    threads: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"Status(ok={self.ok}, reason={self.reason!r})"


_lock = threading.Lock()
_module: ModuleType | None = None
_status: Status | None = None


def cache_dir() -> Path:
    """``$RNNKIT_CACHE_DIR`` or ``$XDG_CACHE_HOME/rnnkit`` (default ``~/.cache/rnnkit``)."""
    root = os.environ.get("RNNKIT_CACHE_DIR")
    if root:
        return Path(root) / "kernels"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "rnnkit" / "kernels"


def torch_backends() -> tuple[str, str]:
    """(BLAS, threading) torch was built with, from torch.__config__ (e.g. "MKL 2024.2",
    "OpenMP 4.5")."""
    import torch

    show, par = torch.__config__.show(), torch.__config__.parallel_info()
    found = re.search(r"BLAS_INFO=(\w+)", show)
    blas = found.group(1) if found else "none"
    if blas == "mkl":
        version = re.search(r"Math Kernel Library Version ([\d.]+)", show)
        blas = "MKL" + (f" {version.group(1)}" if version else "")
    backend = re.search(r"ATen parallel backend: (\w+)", par)
    threads = backend.group(1) if backend else "unknown"
    omp = re.search(r"OpenMP \d+ \(a\.k\.a\. OpenMP ([\d.]+)\)", par)
    if threads == "OpenMP" and omp:
        threads = f"OpenMP {omp.group(1)}"
    return blas, threads


def _fallback_build() -> tuple[ModuleType | None, str]:
    """Compile the extension with torch.utils.cpp_extension.load; (module, note or error)."""
    import torch
    from torch.utils import cpp_extension

    cxx = os.environ.get("CXX", "c++")
    if not shutil.which(cxx.split()[0]):
        return None, f"no C++ compiler {cxx!r} on PATH to build the kernels (install g++)"
    if not cpp_extension.is_ninja_available():
        return None, "building the kernels on first use needs ninja (pip install ninja)"
    tag = f"torch{torch.__version__}-py{sys.version_info[0]}{sys.version_info[1]}"
    where = cache_dir() / re.sub(r"[^\w.+-]", "_", tag)

    def build(again=()):
        where.mkdir(parents=True, exist_ok=True)
        return cpp_extension.load(
            name="rnnkit_kernels",
            sources=_flags.sources(_HERE),
            extra_cflags=[*_flags.compile_args(torch.__config__.parallel_info()), *again],
            build_directory=str(where),
            is_python_module=True,
            verbose=False,
        )

    try:
        return build(), f"compiled on first use in {where}"
    except ImportError as exc:  # a cached .so that cannot load: truncated or corrupt
        message = (
            f"rnnkit: the cached kernels in {where} failed to load ({exc}); rebuilding them"
        )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        print(message, file=sys.stderr)
        shutil.rmtree(where, ignore_errors=True)
    except Exception as exc:  # noqa: BLE001 - a failed build must become a reason
        return None, f"building the kernels failed: {_first_line(exc)}"
    try:
        # a changed flag: torch's loader otherwise takes the build as done in this process
        return build(["-DRNNKIT_REBUILT"]), f"rebuilt in {where} (the cached build was corrupt)"
    except Exception as exc:  # noqa: BLE001
        return None, f"building the kernels failed: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    """The line of a failed build that says why: the compiler's first diagnostic ("...: fatal
    error: Python.h: No such file or directory") where there is one, not the first line of
    torch's message (which is the command line it ran)."""
    lines = str(exc).splitlines()
    for pattern in (r"\berror:", r"error"):
        found = [ln.strip() for ln in lines if re.search(pattern, ln, re.IGNORECASE)]
        if found:
            line = found[0]
            if re.search(r"Python\.h|pyconfig\.h", line):
                line += " (install Python's headers, e.g. apt install python3-dev)"
            return line
    return lines[0] if lines else type(exc).__name__


BLAS_CHOICES = ("", "auto", "aten")  # RNNKIT_BLAS: "aten" runs every GEMM through ATen's addmm


def _load() -> tuple[ModuleType | None, Status]:
    blas, threads = torch_backends()
    choice = os.environ.get("RNNKIT_BLAS", "")
    if choice not in BLAS_CHOICES:
        warnings.warn(
            f"rnnkit: RNNKIT_BLAS={choice!r} is not 'auto' or 'aten'; ignored",
            RuntimeWarning,
            stacklevel=3,
        )
    mode = os.environ.get("RNNKIT_KERNELS", "")
    if mode == "off":
        return None, Status(False, "disabled by RNNKIT_KERNELS=off", None, blas, threads)
    module, note = None, ""
    if mode != "jit":
        try:
            module = importlib.import_module("._C", __package__)
            build, note = "extension", f"compiled extension {Path(module.__file__).name}"
        except ImportError as exc:
            note = f"the compiled extension did not load ({exc}); "
    if module is None:
        module, more = _fallback_build()
        build = "fallback"
        if module is None:
            return None, Status(False, note + more, None, blas, threads)
        note = more
    library, fallback, packed, openmp, _ = module.info()
    if library:
        blas += f" (sgemm_ from {library}{', packed GEMM' if packed else ''})"
    else:
        blas += f" (ATen addmm: {fallback})"
    if openmp:
        threads += f" ({openmp})"
    steps = ""
    if hasattr(module, "gemm_configure"):
        steps = f"; step GEMMs {module.gemm_configure(-1)[1]}"
    reason = f"{note}; BLAS {blas}, threads {threads}{steps}"
    return module, Status(True, reason, build, blas, threads)


def native() -> tuple[ModuleType | None, Status]:
    """The loaded extension (building the fallback on first call) and its status; never raises."""
    global _module, _status
    if _status is None:
        with _lock:
            if _status is None:
                try:
                    _module, _status = _load()
                    if _module is not None:
                        from . import ops  # noqa: F401 - fake kernels and autograd
                except Exception as exc:  # noqa: BLE001 - any failure must become a reason
                    _module, _status = None, Status(False, f"{type(exc).__name__}: {exc}")
    return _module, _status


def load_error() -> str:
    """Why the kernels are unavailable, "" when they load: what code that torch.compile traces
    asks (a constant for dynamo, which cannot trace the loading itself)."""
    return native()[1].reason if not native()[1] else ""


# What torch.compiler.assume_constant_result sets; set by hand because that import pulls in
# all of dynamo (~10 s on a loaded 2-core machine) at `import rnnkit`.
load_error._dynamo_marked_constant = True  # type: ignore[attr-defined]
