"""Fused native CPU kernels for the Elman, GRU and LSTM cells (same parameters as torch.nn).

What lives here: whole-sequence kernels with an explicit BPTT backward (``elman_sequence``,
``gru_sequence``, ``lstm_sequence``), streaming single-step kernels for inference
(``elman_step``, ``gru_step``, ``lstm_step``), ``KernelStreamer`` (a stack of cells stepped in
one native call, state kept in place) and ``available()``. Imports torch only; nothing
else in rnnkit. Layers choose these explicitly (``impl="fused"``); importing this package never
raises, and a failed build shows up as ``available().reason``.

How it is built, and why: the kernels are C++ (``csrc/``) registered as PyTorch operators,
``torch.ops.rnnkit.*`` (typed tensor arguments, fake kernels and autograd in ``ops.py``), so
FakeTensor, torch.export and torch.compile see one real op per layer. The extension is built
when the package is installed (setup.py: an editable install, ``make test`` and a wheel all
carry it); a checkout that was never built compiles it on first use (``_build.py``). GEMMs call
the BLAS torch runs on (``csrc/blas.cpp`` finds its sgemm_/dgemm_: MKL, OpenBLAS, Accelerate;
ATen's addmm where none is found or ``RNNKIT_BLAS=aten``) and the batch split runs on
at::parallel_for, torch's thread pool (OpenMP or native threads); with MKL, W_hh is packed once
per call (``cblas_sgemm_pack``) so each step skips re-packing it. ``available()`` says which
build loaded and on what.

Algorithm (per call): X (T*B, D) @ W_ih^T as one GEMM; per step one recurrent GEMM (two for
GRU with reset_after=False) and one vectorised pass of gate math that writes the activations
it will need in backward in place of the input projection (no per-step temporaries). The
backward sweep produces the gate-gradient matrix dG (T*B, G*H); then dW_hh = dG^T H_prev,
dW_ih = dG^T X and dx = dG W_ih are single GEMMs. Threads: the batch is split across
``torch.get_num_threads()`` threads of torch's pool, each running its rows' whole recurrence
with single-threaded GEMMs, so there is no barrier per step; the large GEMMs use BLAS threads.
"""

from __future__ import annotations

from ._build import Status, cache_dir, load_error, native
from .sequence import elman_sequence, gru_sequence, lstm_sequence
from .step import KernelStreamer, StreamLayer, elman_step, gru_step, lstm_step

__all__ = [
    "KernelStreamer",
    "Status",
    "StreamLayer",
    "available",
    "cache_dir",
    "elman_sequence",
    "elman_step",
    "gru_sequence",
    "gru_step",
    "load_error",
    "lstm_sequence",
    "lstm_step",
]


def available() -> Status:
    """Load (once) the native kernels; truthy iff they work.

    ``.reason`` says why not, or which build loaded ("compiled extension" or the fallback),
    which BLAS library the GEMMs call (or ATen's addmm, and why) and which thread pool and
    OpenMP runtime run the batch split (also ``.blas``, ``.threads``; ``.build`` is
    "extension", "fallback" or None).

    Example:
        >>> from rnnkit import kernels
        >>> if not kernels.available():
        ...     print(kernels.available().reason)
    """
    return native()[1]
