"""Compiler flags of the kernels' C++ extension, shared by setup.py and the developer fallback.

Stdlib only (setup.py loads this file by path, before rnnkit is importable).
"""

from __future__ import annotations

import sys
from pathlib import Path

SOURCES = ("csrc/rnnkit.cpp", "csrc/blas.cpp", "csrc/step.cpp", "csrc/seq_autograd.cpp",
           "csrc/gemm.cpp")
HEADERS = ("csrc/cells.h", "csrc/blas.h", "csrc/vec.h", "csrc/step.h", "csrc/pool.h", "csrc/gemm.h")


def compile_args(parallel_info: str) -> list[str]:
    """C++ flags: fast math that keeps IEEE results for finite inputs, and OpenMP where torch's
    ATen thread pool is OpenMP (at::parallel_for is a header template: without the flag it runs
    serially). parallel_info: torch.__config__.parallel_info()."""
    args = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
    if sys.platform.startswith("linux") and "parallel backend: OpenMP" in parallel_info:
        args.append("-fopenmp")
    return args


def sources(root: Path) -> list[str]:
    """The extension's source files under the package directory ``root`` (rnnkit/kernels)."""
    return [str(root / s) for s in SOURCES]
