"""Compile the native kernels on first use, cache the shared object, load it.

The extension is one C file (``_native.c`` + ``_cells.h``) with no torch headers, so gcc
builds it in a few seconds. The cache key hashes the sources, the compiler flags, the compiler
version, the Python ABI and the CPU's feature flags (the build uses ``-march=native``), so a
cached object is never loaded on a machine or toolchain it was not built for.

BLAS comes from the torch already in the process: libtorch_cpu exports the Fortran
``sgemm_``/``dgemm_`` (LP64) and, with MKL, ``cblas_sgemm_pack``/``cblas_sgemm_compute``; their
addresses are handed to the extension once. Nothing here raises: failures become a ``Status``
whose ``reason`` says what went wrong.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent
_SOURCES = ("_native.c", "_cells.h")
_BASE_FLAGS = (
    "-O3",
    "-fPIC",
    "-shared",
    "-fopenmp",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-std=gnu11",
)


@dataclass(frozen=True)
class Status:
    """Truthy iff the native kernels are loaded; ``reason`` says why not (or what loaded)."""

    ok: bool
    reason: str

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


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    import platform

    return platform.machine() + platform.processor()


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc and shutil.which(cc.split()[0]):
        return cc
    for name in ("gcc", "cc", "clang"):
        if shutil.which(name):
            return name
    return None


def _compile(cc: str, out: Path) -> str | None:
    """Build into ``out`` atomically; return None or the first line of the error."""
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        return f"Python.h not found in {include} (install the Python development headers)"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        last = ""
        # -march=native makes the gate loops use the widest vectors the CPU has; if the
        # compiler refuses it, a portable build is still correct.
        for arch in (["-march=native"], []):
            cmd = [
                *cc.split(),
                *_BASE_FLAGS,
                *arch,
                f"-I{include}",
                str(_HERE / "_native.c"),
                "-o",
                tmp,
                "-lm",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode == 0:
                os.replace(tmp, out)
                return None
            lines = [ln for ln in proc.stderr.splitlines() if "error" in ln] or [
                ln for ln in proc.stderr.splitlines() if ln.strip()
            ]
            last = lines[0] if lines else f"{cc} exited with {proc.returncode}"
        return f"compiling the native kernels failed: {last}"
    except OSError as exc:
        return f"compiling the native kernels failed: {exc}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _blas_addresses() -> tuple[list[int], str | None]:
    import torch

    lib = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        handle = ctypes.CDLL(str(lib)) if lib.exists() else ctypes.CDLL(None)
    except OSError as exc:
        return [], f"cannot open {lib}: {exc}"

    def addr(name: str) -> int:
        try:
            return ctypes.cast(getattr(handle, name), ctypes.c_void_p).value or 0
        except AttributeError:
            return 0

    names = (
        "sgemm_",
        "dgemm_",
        "cblas_sgemm_pack_get_size",
        "cblas_sgemm_pack",
        "cblas_sgemm_compute",
        "MKL_Set_Num_Threads_Local",
    )
    addrs = [addr(n) for n in names]
    if not addrs[0] or not addrs[1]:
        return addrs, f"{lib.name} exports no sgemm_/dgemm_ (torch built without a Fortran BLAS)"
    return addrs, None


def _key(cc: str) -> str:
    h = hashlib.sha256()
    for name in _SOURCES:
        h.update((_HERE / name).read_bytes())
    try:
        version = subprocess.run(
            [*cc.split(), "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0]
    except (OSError, IndexError):
        version = cc
    for part in (
        " ".join(_BASE_FLAGS),
        version,
        sys.version,
        sysconfig.get_platform(),
        _cpu_flags(),
    ):
        h.update(part.encode())
    return h.hexdigest()[:16]


def _load() -> tuple[ModuleType | None, Status]:
    addrs, err = _blas_addresses()
    if err:
        return None, Status(False, err)
    env_path = os.environ.get("RNNKIT_KERNELS_SO")
    if env_path:
        path = Path(env_path)
    else:
        cc = _compiler()
        if cc is None:
            return None, Status(False, "no C compiler found (install gcc, or set CC)")
        path = cache_dir() / f"_native-{_key(cc)}{importlib.machinery.EXTENSION_SUFFIXES[0]}"
        if not path.exists():
            err = _compile(cc, path)
            if err:
                return None, Status(False, err)
    try:
        loader = importlib.machinery.ExtensionFileLoader("_native", str(path))
        spec = importlib.util.spec_from_file_location("_native", str(path), loader=loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        module.init(*addrs)
    except Exception as exc:  # a broken cache entry or ABI mismatch must not break import
        return None, Status(False, f"loading {path} failed: {exc}")
    packed = "with MKL packed GEMM" if all(addrs[2:5]) else "with plain sgemm_"
    return module, Status(True, f"loaded {path.name} {packed}")


def native() -> tuple[ModuleType | None, Status]:
    """The loaded extension (building it on first call) and its status; never raises."""
    global _module, _status
    if _status is None:
        with _lock:
            if _status is None:
                try:
                    _module, _status = _load()
                except Exception as exc:  # noqa: BLE001 - any failure must become a reason
                    _module, _status = None, Status(False, f"{type(exc).__name__}: {exc}")
    return _module, _status
