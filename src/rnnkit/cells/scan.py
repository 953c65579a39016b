"""Parallel scans for recurrences that are linear in the state: h_t = a_t ⊙ h_{t-1} + b_t.

With no h inside a_t or b_t, the T steps compose associatively, so the whole sequence takes
O(log T) dependent tensor operations instead of T (Blelloch 1990; Martin & Cundy 2018):

- `log_scan`: a_t ∈ (0, 1) and b_t > 0 given as logarithms, the scan done as a cumulative
  sum and a log-cumsum-exp (Heinsen 2023, "Efficient parallelization of a ubiquitous
  sequential computation"): minGRU and minLSTM.
- `linear_scan`: any a_t, b_t (complex included) by recursive doubling (Hillis & Steele
  1986), log2(T) rounds of O(T) work: the LRU.

Both take an initial state h_0 (any sign: its part A_t h_0 is added outside the logarithms),
and `finish` applies per-sequence lengths. Shapes: B batch, T time, N state units.

Under torch.jit.trace (the ONNX exporter) both scans would be recorded for the example's T
(their chunking and doubling are Python loops over T) and be wrong at any other length, so
the cells' impls take `step_loop` / `complex_step_loop` there instead: the same recurrence as
a TorchScript loop, which the exporter writes as an ONNX Loop over the dynamic length.
Imports: torch only.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

CHUNK = 16  # log_scan's chunk: float32 error ~ 1e-7 · |Σ log a| over one chunk


def log_scan(log_a: Tensor, log_b: Tensor, h0: Tensor, chunk: int = CHUNK) -> Tensor:
    """h_t = a_t h_{t-1} + b_t for every t, from log a, log b (B, T, N) and h_0 (B, N).

    Within each chunk of `chunk` steps, from a zero start, h_t = Σ_{s≤t} (A_t / A_s) b_s with
    A_t = Π a_s over the chunk so far; in log space log A_t + logcumsumexp(log b_s - log A_s),
    which never overflows (Heinsen 2023). The two terms are each of size |log A_t|, which grows
    with the steps as the gates forget, and float32 keeps ~1e-7 of it: over a whole long
    sequence that is 1e-4 at T = 400. Chunking bounds it; the chunks' end states then chain by
    `linear_scan` over T / chunk steps in plain arithmetic (products of a_t ∈ (0, 1) lose no
    precision), and h_0 enters as A_t h_0 outside the logarithms, so it may have any sign.

    Returns: h (B, T, N).
    """
    B, T, N = log_b.shape
    C = min(chunk, T)
    K = -(-T // C)
    pad = K * C - T  # a = b = 1 on the padding: finite, and only later (dropped) steps read it
    log_a = nn.functional.pad(log_a, (0, 0, 0, pad)).reshape(B, K, C, N)
    log_b = nn.functional.pad(log_b, (0, 0, 0, pad)).reshape(B, K, C, N)
    log_A = torch.cumsum(log_a, dim=2)  # (B, K, C, N): within each chunk
    local = torch.exp(log_A + torch.logcumsumexp(log_b - log_A, dim=2))  # from a zero start
    A = torch.exp(log_A)
    ends = linear_scan(A[:, :, -1], local[:, :, -1], h0)  # (B, K, N): state at each chunk's end
    starts = torch.cat([h0[:, None], ends[:, :-1]], dim=1)  # (B, K, N)
    h = local + A * starts[:, :, None]
    return h.reshape(B, K * C, N)[:, :T]


def linear_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """h_t = a_t h_{t-1} + b_t for every t, a and b (B, T, N) or broadcastable, h_0 (B, N).

    Recursive doubling: after round k, (a_t, b_t) holds the composition of the 2^k steps
    ending at t, so log2(T) rounds give every prefix. Real or complex. A time-invariant a
    (time dimension 1, as the LRU's λ) is squared each round instead of scanned.

    Returns: h (B, T, N).
    """
    T = b.shape[1]
    varying = a.shape[1] != 1
    b = torch.cat([a[:, :1] * h0[:, None] + b[:, :1], b[:, 1:]], dim=1)  # h_0 folded into b_1
    shift = 1
    while shift < T:
        # steps t < shift already hold their prefix; later steps compose with the one shift back
        back = a[:, shift:] if varying else a
        b = torch.cat([b[:, :shift], back * b[:, :-shift] + b[:, shift:]], dim=1)
        a = torch.cat([a[:, :shift], a[:, shift:] * a[:, :-shift]], dim=1) if varying else a * a
        shift *= 2
    return b


def finish(h: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
    """(h zero past each length, h at each sequence's own last step): h (B, T, N) ->
    ((B, T, N), (B, N)). Padded steps never reach the final state: it is read at length-1."""
    if lengths is None:
        return h, h[:, -1]
    lengths = lengths.to(h.device)
    t = torch.arange(h.shape[1], device=h.device)
    valid = (t[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
    return h * valid, h[torch.arange(h.shape[0], device=h.device), lengths - 1]


def step_loop(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """h_t = a_t h_{t-1} + b_t one step at a time, a, b (B, T, N), h0 (B, N) -> h (B, T, N).

    A scripted loop: traced into a graph it stays a loop over the input's length."""
    return _scripted("real")(a, b, h0)


def complex_step_loop(lam_re, lam_im, u_re, u_im, h0_re, h0_im) -> tuple[Tensor, Tensor]:
    """h_t = λ h_{t-1} + u_t in complex arithmetic written on real pairs (ONNX has no complex
    type): λ (N,), u (B, T, N), h0 (B, N) as real and imaginary parts -> (h_re, h_im).

    Scripted under torch.jit tracing; plain Python under torch.export (which cannot trace a
    scripted function, and unrolls the loop for the example's T)."""
    loop = _complex_loop if torch.compiler.is_exporting() else _scripted("complex")
    return loop(lam_re, lam_im, u_re, u_im, h0_re, h0_im)


@functools.cache
def _scripted(kind: str):
    # compiled on first use: TorchScript takes ~0.1 s per function, import never pays it
    return torch.jit.script(_real_loop if kind == "real" else _complex_loop)


def _real_loop(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    h = h0
    hs: list[Tensor] = []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        hs.append(h)
    return torch.stack(hs, 1)


def _complex_loop(
    lam_re: Tensor, lam_im: Tensor, u_re: Tensor, u_im: Tensor, h0_re: Tensor, h0_im: Tensor
) -> tuple[Tensor, Tensor]:
    h_re, h_im = h0_re, h0_im
    res: list[Tensor] = []
    ims: list[Tensor] = []
    for t in range(u_re.shape[1]):
        h_re, h_im = (
            lam_re * h_re - lam_im * h_im + u_re[:, t],
            lam_re * h_im + lam_im * h_re + u_im[:, t],
        )
        res.append(h_re)
        ims.append(h_im)
    return torch.stack(res, 1), torch.stack(ims, 1)
