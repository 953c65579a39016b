"""Builds rnnkit's native kernels (rnnkit.kernels._C, the torch.ops.rnnkit operators).

Everything else about the package is in pyproject.toml. torch is a build dependency, taken
from the environment: install with ``pip install --no-build-isolation`` (an isolated build
would fetch a second, multi-GB torch from PyPI).
"""

import importlib.util
from pathlib import Path

import torch
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

ROOT = Path(__file__).resolve().parent
KERNELS = ROOT / "src" / "rnnkit" / "kernels"
_spec = importlib.util.spec_from_file_location("_flags", KERNELS / "_flags.py")
flags = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(flags)

setup(
    ext_modules=[
        CppExtension(
            "rnnkit.kernels._C",
            [str(Path(s).relative_to(ROOT)) for s in flags.sources(KERNELS)],
            extra_compile_args=flags.compile_args(torch.__config__.parallel_info()),
            depends=[str((KERNELS / h).relative_to(ROOT)) for h in flags.HEADERS],
        )
    ],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=False)},
)
