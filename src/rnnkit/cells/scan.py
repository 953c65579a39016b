"""Parallel scans for recurrences that are linear in the state: h_t = a_t ⊙ h_{t-1} + b_t.

With no h inside a_t or b_t, the T steps compose associatively, so the whole sequence takes
O(log T) dependent tensor operations instead of T (Blelloch 1990; Martin & Cundy 2018):

- `log_scan`: a_t ∈ (0, 1) and b_t > 0 given as logarithms, the scan done as a cumulative
  sum and a log-cumsum-exp (Heinsen 2023, "Efficient parallelization of a ubiquitous
  sequential computation"): minGRU and minLSTM.
- `linear_scan`: any a_t, b_t (complex included): chunks of steps in sequence, all chunks at
  once, and their end states by recursive doubling (Hillis & Steele 1986), O(chunk + log T)
  depth: the LRU, and the backward of all three.

Both take an initial state h_0 (any sign: its part A_t h_0 is added outside the logarithms),
and `finish` applies per-sequence lengths. Shapes: B batch, T time, N state units.

The cells call them through `chunked_scan`, which runs the sequence in blocks of `block_steps`
steps (about `BLOCK_ELEMENTS` numbers per tensor) and carries the state from block to block,
so the scans' temporaries stay bounded whatever T is. Under autograd it is one
`torch.autograd.Function` whose backward is the adjoint recurrence g_t = ∂L/∂h_t + a_{t+1} g_{t+1},
itself a linear scan run block by block in reverse: it saves a, b, h_0 and h only, about half
what autograd through the scans' own operations saved, and no whole-sequence temporaries.

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

CHUNK = 16  # log_scan's chunk (float32 error ~ 1e-7 · |Σ log a| over one), and linear_scan's
# chunked_scan's block: 2^21 numbers (8 MiB in float32) per (B, block, N) tensor, so one block's
# temporaries are tens of MiB at most; 256 steps at B = 32, N = 256
BLOCK_ELEMENTS = 1 << 21


def block_steps(batch: int, units: int) -> int:
    """Steps per block of `chunked_scan` for (batch, units): BLOCK_ELEMENTS / (B·N), a multiple
    of CHUNK (so log_scan's chunks never straddle two blocks), at least CHUNK."""
    return max(1, BLOCK_ELEMENTS // max(1, batch * units * CHUNK)) * CHUNK


def chunked_scan(a: Tensor, b: Tensor, h0: Tensor, log: bool, block: int | None = None) -> Tensor:
    """h_t = a_t h_{t-1} + b_t for every t, block by block over time.

    log: a, b are log a, log b (B, T, N), scanned by `log_scan` (minGRU, minLSTM); else a
    (B, T, N) or time-invariant (1, 1, N), real or complex, by `linear_scan` (the LRU).
    h0 (B, N). block: steps per block (default `block_steps`). Equal to one scan over the
    whole sequence up to rounding. Returns: h (B, T, N).
    """
    block = block or block_steps(b.shape[0], b.shape[2])
    if torch.is_grad_enabled() and any(t.requires_grad for t in (a, b, h0)):
        return _BlockScan.apply(a, b, h0, log, block)
    return _forward_blocks(a, b, h0, log, block)


def _forward_blocks(a: Tensor, b: Tensor, h0: Tensor, log: bool, block: int) -> Tensor:
    scan = log_scan if log else linear_scan
    varying = a.shape[1] != 1
    hs, h = [], h0
    for s in range(0, b.shape[1], block):
        hs.append(scan(a[:, s : s + block] if varying else a, b[:, s : s + block], h))
        h = hs[-1][:, -1]
    return torch.cat(hs, dim=1) if len(hs) > 1 else hs[0]


class _BlockScan(torch.autograd.Function):
    """`chunked_scan` with the adjoint recurrence as its backward (see the module's doc)."""

    @staticmethod
    def forward(ctx, a, b, h0, log, block):
        h = _forward_blocks(a, b, h0, log, block)
        ctx.save_for_backward(a, b, h0, h)
        ctx.log, ctx.block = log, block
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h):
        a, b, h0, h = ctx.saved_tensors
        log, block, T = ctx.log, ctx.block, b.shape[1]
        varying = a.shape[1] != 1
        # autograd's convention for complex z = a w: ∂L/∂w = conj(a) ∂L/∂z (conj is a no-op
        # on real tensors)
        grad_a = torch.zeros_like(a) if varying else None
        grad_a_sum = torch.zeros_like(a[0, 0]) if not varying else None
        grad_b = torch.empty_like(b)
        g = torch.zeros_like(h0)  # g_{e}: the adjoint just after the block, 0 after step T
        for s in reversed(range(0, T, block)):
            e = min(s + block, T)
            if varying:
                # g_t = ∂L/∂h_t + a_{t+1} g_{t+1}: the block's coefficients are a_{s+1..e}, and
                # a_{e} multiplies the carried g_e (no a_{T+1}: g_{T+1} = 0, 1 is any value)
                nxt = a[:, s + 1 : e + 1]
                if e == T:
                    nxt = torch.cat([nxt, torch.ones_like(a[:, :1])], dim=1)
                coeff = (torch.exp(nxt) if log else nxt).conj()
            else:
                coeff = a.conj()
            gs = linear_scan(coeff.flip(1) if varying else coeff, grad_h[:, s:e].flip(1), g).flip(1)
            prev = torch.cat([(h0 if s == 0 else h[:, s - 1])[:, None], h[:, s : e - 1]], dim=1)
            a_blk = a[:, s:e] if varying else a
            if log:  # ∂/∂log a = a · h_{t-1} · g, ∂/∂log b = b · g
                grad_a[:, s:e] = gs * torch.exp(a_blk) * prev
                grad_b[:, s:e] = gs * torch.exp(b[:, s:e])
            else:
                da = gs * prev.conj()
                if varying:
                    grad_a[:, s:e] = da
                else:
                    grad_a_sum += da.sum(dim=(0, 1))
                grad_b[:, s:e] = gs
            g = gs[:, 0]
        grad_h0 = (torch.exp(a[:, 0]) if log else a[:, 0]).conj() * g
        if not varying:
            grad_a = grad_a_sum.reshape(a.shape)
        return grad_a, grad_b, grad_h0, None, None


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


def linear_scan(a: Tensor, b: Tensor, h0: Tensor, chunk: int = CHUNK) -> Tensor:
    """h_t = a_t h_{t-1} + b_t for every t, a and b (B, T, N) or broadcastable, h_0 (B, N).

    Two levels: every chunk of `chunk` steps from a zero start, all chunks at once, one step at
    a time (`chunk` dependent steps over (B, T / chunk, N) tensors, with the product P_t of the
    a's so far); then the chunks' end states by `doubling_scan` over T / chunk steps; then
    h_t = local_t + P_t · (state before the chunk). Real or complex; a time-invariant a (time
    dimension 1, as the LRU's λ) stays one (B, N) factor. On a CPU this is 3× faster than
    doubling over all T: each of log2(T) doubling rounds rewrites whole (B, T, N) tensors.

    Returns: h (B, T, N).
    """
    B, T, N = b.shape
    C = min(chunk, T)
    K = -(-T // C)
    pad = K * C - T  # a = 1, b = 0 on the padding: only later (dropped) steps read it
    varying = a.shape[1] != 1
    b = torch.cat([b, b.new_zeros(B, pad, N)], dim=1).reshape(B, K, C, N)
    if varying:
        a = torch.cat([a, a.new_ones(a.shape[0], pad, N)], dim=1).reshape(-1, K, C, N)
    step = (lambda j: a[:, :, j]) if varying else (lambda j: a[:, 0])
    h, prod = b[:, :, 0], step(0)
    hs, prods = [h], [prod]
    for j in range(1, C):
        h, prod = step(j) * h + b[:, :, j], step(j) * prod
        hs.append(h)
        prods.append(prod)
    local = torch.stack(hs, dim=2)  # (B, K, C, N): from a zero start
    P = torch.stack(prods, dim=2) if varying else torch.stack(prods, dim=1)[:, None]
    ends = doubling_scan(P[:, :, -1], local[:, :, -1], h0)  # (B, K, N)
    starts = torch.cat([h0[:, None], ends[:, :-1]], dim=1)
    return (local + P * starts[:, :, None]).reshape(B, K * C, N)[:, :T]


def doubling_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """`linear_scan` by recursive doubling (same arguments): after round k, (a_t, b_t) holds
    the composition of the 2^k steps ending at t, so log2(T) rounds give every prefix. A
    time-invariant a is squared each round instead of scanned.

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
