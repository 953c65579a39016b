"""Fused native CPU kernels for the Elman, GRU and LSTM cells (same parameters as torch.nn).

What lives here: whole-sequence kernels with an explicit BPTT backward (``elman_sequence``,
``gru_sequence``, ``lstm_sequence``), streaming single-step kernels for inference
(``elman_step``, ``gru_step``, ``lstm_step``), ``KernelStreamer`` (a stack of cells stepped in
one native call, state kept in place) and ``available()``. Imports torch only; nothing
else in rnnkit. Layers choose these explicitly (``impl="fused"``); importing this package never
raises, and a failed build shows up as ``available().reason``.

How it is built, and why: one C file (``_native.c`` + ``_cells.h``, no torch headers) is
compiled with gcc on first use in ~4 s and cached under ``~/.cache/rnnkit/kernels`` (or
``$RNNKIT_CACHE_DIR``); a torch C++ extension would need ninja and ~1 min of compiling torch
headers on a 2-core machine. The extension is a plain CPython module taking ints (data
pointers, sizes) through METH_FASTCALL, which costs ~0.1 us per call against ~1 us for ctypes
with pointer argtypes; this matters for the streaming step, where torch's GRUCell costs
20-120 us and the target is 10x less. GEMMs call MKL (``sgemm_``, and ``cblas_sgemm_pack`` /
``cblas_sgemm_compute`` so each step reuses a packed W_hh) through addresses taken from the
libtorch_cpu already loaded by torch, so no BLAS is linked or shipped.

Algorithm (per call): X (T*B, D) @ W_ih^T as one GEMM; per step one recurrent GEMM (two for
GRU with reset_after=False) and one vectorised pass of gate math that writes the activations
it will need in backward in place of the input projection (no per-step temporaries). The
backward sweep produces the gate-gradient matrix dG (T*B, G*H); then dW_hh = dG^T H_prev,
dW_ih = dG^T X and dx = dG W_ih are single GEMMs. Threads: the batch is split across
``torch.get_num_threads()`` OpenMP threads (same libgomp as torch), each running its rows'
whole recurrence with single-threaded GEMMs, so there is no barrier per step; the large GEMMs
use MKL's threads.
"""

from __future__ import annotations

from ._build import Status, cache_dir, native
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
    "lstm_sequence",
    "lstm_step",
]


def available() -> Status:
    """Build (once) and load the native kernels; truthy iff they work, ``.reason`` says why not.

    Example:
        >>> from rnnkit import kernels
        >>> if not kernels.available():
        ...     print(kernels.available().reason)
    """
    return native()[1]
