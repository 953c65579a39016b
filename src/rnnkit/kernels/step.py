"""Streaming single-step kernels, batch 1-8: for stateful inference, and `step_plan`,
`Recurrent.step`'s native path with or without autograd.

One operator call per step (torch.ops.rnnkit.*_step): both projections and the gate math.
``KernelStreamer`` steps a whole stack in one call of the extension's ``stream_step``, outside
the dispatcher (whose ~2 us a call would be most of a step at H = 64), which also checks x_t.
The steps mirror the Cell contract, ``y_t, state = step(x_t, state, ...)``. Shapes: x_t (B, D),
h and c (B, H), weights as in ``sequence``.

Why a cache: at B <= 8 a step reads every weight once, so the kernel wants W^T packed in strips
(``pack_gates``) and the per-call Python work must be tiny. The first call with a set of weights
validates them and keeps W_ih^T, W_hh^T; later calls only check that each weight is still the
same tensor, storage and version (``_version`` moves on every in-place update such as an
optimizer step), so an updated weight is re-read, never served stale.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import torch

from .sequence import _ACTIVATIONS, lib

_F32 = torch.float32
_F64 = torch.float64
_grad_enabled = torch.is_grad_enabled
_CACHE_SIZE = 16
_cache: dict = {}


class _Prepared:
    """Validated weights of one cell: transposed copies and the biases' pointers."""

    __slots__ = (
        "refs",
        "stamp",
        "wih_t",
        "whh_t",
        "bias",
        "args",
        "D",
        "H",
        "dtype",
        "code",
        "x_stride",
        "h_stride",
    )

    def __init__(self, name, weight_ih, weight_hh, bias_ih, bias_hh, gates):
        H = weight_hh.shape[-1]
        D = weight_ih.shape[-1] if weight_ih.dim() == 2 else -1
        shapes = {
            "weight_ih": (weight_ih, (gates * H, D)),
            "weight_hh": (weight_hh, (gates * H, H)),
            "bias_ih": (bias_ih, (gates * H,)),
            "bias_hh": (bias_hh, (gates * H,)),
        }
        for key, (t, shape) in shapes.items():
            if t is None:
                continue
            if tuple(t.shape) != shape:
                raise ValueError(f"{name}: {key} must have shape {shape}, got {tuple(t.shape)}")
            if t.dtype not in (_F32, _F64) or t.dtype != weight_hh.dtype:
                raise TypeError(
                    f"{name}: {key} is {t.dtype}; weights must all be float32 or all float64"
                )
            if t.device.type != "cpu":
                raise ValueError(f"{name}: fused kernels run on the CPU; {key} is on {t.device}")
        self.refs = (weight_ih, weight_hh, bias_ih, bias_hh)  # keeps ids from being reused
        self.stamp = _stamp(weight_ih, weight_hh, bias_ih, bias_hh)
        with torch.no_grad():
            self.wih_t = pack_gates(weight_ih.detach(), gates)  # (D, G*H)
            self.whh_t = pack_gates(weight_hh.detach(), gates)  # (H, G*H)
            b = [None if t is None else t.detach().contiguous() for t in (bias_ih, bias_hh)]
        self.bias = tuple(b)
        # the pointers, for the KernelStreamer's argument table
        self.args = (
            self.wih_t.data_ptr(),
            self.whh_t.data_ptr(),
            0 if b[0] is None else b[0].data_ptr(),
            0 if b[1] is None else b[1].data_ptr(),
        )
        self.D, self.H, self.dtype = D, H, weight_hh.dtype
        self.code = 0 if self.dtype is _F32 else 1
        self.x_stride, self.h_stride = (D, 1), (H, 1)


def pack_gates(w: torch.Tensor, gates: int) -> torch.Tensor:
    """A (G*H, K) weight as the step kernels read it: (K, G*H), each gate's H columns of w^T
    in strips of one vector (16 float32 or 8 float64 columns), every strip K x width contiguous
    (the last one narrower when H is not a multiple of the width). One stream per strip is
    what the hardware prefetchers follow best (csrc/step.h sp_proj_strips)."""
    GH, K = w.shape
    H, width = GH // gates, 64 // w.element_size()
    full = H // width * width
    parts = []
    for g in range(gates):
        wt = w[g * H : (g + 1) * H].t()  # (K, H)
        if full:
            strips = wt[:, :full].reshape(K, full // width, width).transpose(0, 1)
            parts.append(strips.reshape(-1))
        if full < H:
            parts.append(wt[:, full:].reshape(-1))
    return torch.cat(parts).view(K, GH)


def _ops():
    """torch.ops.rnnkit, loading the kernels first (raises with the reason if unavailable)."""
    lib()
    return torch.ops.rnnkit


def _stamp(weight_ih, weight_hh, bias_ih, bias_hh):
    # Written out (no loop, no generator): this runs on every step and costs ~0.1 us a read.
    return (
        weight_ih.data_ptr(),
        weight_ih._version,
        weight_hh.data_ptr(),
        weight_hh._version,
        0 if bias_ih is None else bias_ih.data_ptr(),
        0 if bias_hh is None else bias_hh.data_ptr(),
    )


def _prepared(name, weight_ih, weight_hh, bias_ih, bias_hh, gates) -> _Prepared:
    key = (id(weight_ih), id(weight_hh), id(bias_ih), id(bias_hh), gates)
    p = _cache.get(key)
    if p is None or p.stamp != _stamp(weight_ih, weight_hh, bias_ih, bias_hh):
        p = _Prepared(name, weight_ih, weight_hh, bias_ih, bias_hh, gates)
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[key] = p
    return p


def _check_io(name, p: _Prepared, x_t, states, weights):
    """Raise unless x_t (B, D) and the states (B, H) fit the weights; returns B."""
    if torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x_t, *states, *weights)
    ):
        raise ValueError(
            f"{name} is for inference and records no autograd history; call it "
            "under torch.no_grad() (use the *_sequence kernels to train)"
        )
    if x_t.dim() != 2 or x_t.shape[1] != p.D:
        raise ValueError(f"{name}: x_t must be (B, {p.D}), got shape {tuple(x_t.shape)}")
    B = x_t.shape[0]
    for i, s in enumerate(states):
        if tuple(s.shape) != (B, p.H):
            raise ValueError(f"{name}: state[{i}] must have shape {(B, p.H)}, got {tuple(s.shape)}")
        if s.dtype != p.dtype or not s.is_contiguous() or s.device.type != "cpu":
            raise ValueError(f"{name}: state[{i}] must be a contiguous {p.dtype} CPU tensor")
    if x_t.dtype != p.dtype or x_t.stride(1) != 1 or x_t.device.type != "cpu":
        raise ValueError(f"{name}: x_t must be a {p.dtype} CPU tensor with contiguous rows")
    return B


def _fast(p: _Prepared, x_t, h) -> bool:
    # The common case in a few attribute reads; anything else goes through _check_io.
    # x_t.stride() == (D, 1) also pins x_t to 2-D; h.stride() == (H, 1) with the shape check
    # makes h contiguous.
    return (
        x_t.dtype is p.dtype
        and h.dtype is p.dtype
        and not _grad_enabled()
        and x_t.stride() == p.x_stride
        and h.stride() == p.h_stride
        and h.shape[0] == x_t.shape[0]
    )


def elman_step(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh, activation="tanh"):
    """One Elman step without autograd.

    Args:
        x_t: (B, D); h: (B, H); weights (H, D), (H, H); biases (H,) or None;
        activation: "tanh", "sigmoid", "relu" or "identity".

    Returns:
        (y_t, h_new): the same new (B, H) tensor twice, as a cell returns (output, state).
    """
    p = _prepared("elman_step", weight_ih, weight_hh, bias_ih, bias_hh, 1)
    if not _fast(p, x_t, h):
        _check_io("elman_step", p, x_t, (h,), (weight_ih, weight_hh, bias_ih, bias_hh))
    act = _ACTIVATIONS.get(activation)
    if act is None:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    out = _ops().elman_step(x_t, h, p.wih_t, p.whh_t, *p.bias, act)
    return out, out


def gru_step(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after=True):
    """One GRU step without autograd (gates r, z, n; both forms as in ``gru_sequence``).

    Args:
        x_t: (B, D); h: (B, H); weights (3H, D), (3H, H); biases (3H,) or None.

    Returns:
        (y_t, h_new): the same new (B, H) tensor twice.
    """
    p = _prepared("gru_step", weight_ih, weight_hh, bias_ih, bias_hh, 3)
    if not _fast(p, x_t, h):
        _check_io("gru_step", p, x_t, (h,), (weight_ih, weight_hh, bias_ih, bias_hh))
    out = _ops().gru_step(x_t, h, p.wih_t, p.whh_t, *p.bias, bool(reset_after))
    return out, out


def lstm_step(x_t, state, weight_ih, weight_hh, bias_ih, bias_hh):
    """One LSTM step without autograd (gates i, f, g, o; base form).

    Args:
        x_t: (B, D); state: (h, c), each (B, H); weights (4H, D), (4H, H); biases (4H,) or None.

    Returns:
        (y_t, (h_new, c_new)) with y_t the same tensor as h_new.
    """
    h, c = state
    p = _prepared("lstm_step", weight_ih, weight_hh, bias_ih, bias_hh, 4)
    if not (_fast(p, x_t, h) and c.dtype is p.dtype and c.shape == h.shape and c.is_contiguous()):
        _check_io("lstm_step", p, x_t, (h, c), (weight_ih, weight_hh, bias_ih, bias_hh))
    h_new, c_new = _ops().lstm_step(x_t, h, c, p.wih_t, p.whh_t, *p.bias)
    return h_new, (h_new, c_new)


_KINDS = {"elman": (0, 1), "gru": (1, 3), "lstm": (2, 4)}  # kind -> (native code, gates)
_ROW = 19  # int64 per layer in the native argument table (RK_ROW in csrc/step.cpp)
# The row's slot RK_SPLIT: how the layer's step is spread over threads (ALWAYS: over torch's
# threads by at::parallel_for; WORKER: over the caller and the streamer's own worker thread,
# whose address is in slot RK_WORKER). Slots RK_BX, RK_BH: the layer's summed biases.
_SPLIT_SLOT, _WORKER_SLOT, _BX_SLOT, _BH_SLOT = 15, 16, 17, 18
_SPLIT_RULE, _SPLIT_NEVER, _SPLIT_ALWAYS, _SPLIT_WORKER = 0, 1, 2, 3
_MODES = {_SPLIT_NEVER: "one", _SPLIT_ALWAYS: "parallel_for", _SPLIT_WORKER: "worker"}
_SPLIT_ENV = "RNNKIT_STREAM_SPLIT"  # auto (time it), on (parallel_for), worker, off
# Weight elements a step (G*H*(D+H), the largest layer) below which a split is not timed: at
# H = 64 the LSTM (2^15) split was slower on both machines measured (Zen 4: 2.17 vs 1.66 us).
_SPLIT_TIMED_MIN = 1 << 15
_SPLIT_BUDGET_S = 0.004  # the timing's bound, all rounds together
# How long the worker spins after its last step before it sleeps (RK_WORKER_SPIN_US, 200 us,
# in csrc/step.cpp), with a margin: the timing waits this long before its parallel_for rounds.
_WORKER_SPIN_S = 0.0003
# How long a worker round's start waits for the worker to wake (a sleeping thread on an idle
# core of a VM: tens to hundreds of us); past it the round runs, the caller doing late halves.
_WORKER_PRIME_US = 300.0


@dataclass(frozen=True)
class StreamLayer:
    """One layer of a KernelStreamer: a cell family, its torch.nn-shaped weights and its option.

    kind: "elman", "gru" or "lstm"; activation is read for Elman, reset_after for GRU.
    """

    kind: str
    weight_ih: torch.Tensor
    weight_hh: torch.Tensor
    bias_ih: torch.Tensor | None = None
    bias_hh: torch.Tensor | None = None
    activation: str = "tanh"
    reset_after: bool = True


def _summed_bias(p: _Prepared, gates: int, ra: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The biases as the step kernels sum them (csrc/step.h step_bias), made once for a
    streamer: bx (G*H) = b_ih + b_hh, except that with reset_after the GRU's b_hn stays apart
    in bh (H); an absent bias counts as zero."""
    H = p.H
    GH = gates * H
    both = 2 * H if ra else GH
    b_ih, b_hh = p.bias
    with torch.no_grad():
        bx = b_ih.clone() if b_ih is not None else torch.zeros(GH, dtype=p.dtype)
        bh = torch.zeros(H, dtype=p.dtype)
        if b_hh is not None:
            bx[:both] += b_hh[:both]
            if ra:
                bh.copy_(b_hh[2 * H :])
    return bx, bh


class KernelStreamer:
    """Stateful streaming inference over a stack of cells: one native call per step.

    This is what ``Recurrent.streamer()`` returns; ``rnnkit.Streamer`` (rnnkit.training) is a
    different thing, streaming any model in Python through its own forward.

    The per-call work of ``elman_step``/``gru_step``/``lstm_step`` (checking the weights are
    unchanged, allocating the new state, one call per layer) is done once here: the weights
    are validated and transposed when the KernelStreamer is built, the state (B, H) of every
    layer is preallocated and updated in place, and ``step`` passes one pointer to the native code,
    which runs all layers with the same step kernels (so results equal theirs exactly).

    The weights are a snapshot: after changing the model's weights, build a new KernelStreamer.
    Records no autograd history. Cost per step: one read of every weight, O(B * G * H * (D + H))
    per layer; state memory B * H (and B * H for the LSTM cell) per layer.

    Args:
        layers: StreamLayer list, bottom-up; layer k's input size is layer k-1's hidden size.
        batch: B, the number of streams stepped together (1-8 is what the kernels are for).
        split: whether each step is spread over two threads (by columns; the results are
            the same either way): False (one thread), True (over torch's threads, an
            at::parallel_for per layer-step), "worker" (over the calling thread and a thread
            of the streamer's own, started with it and joined when it is freed, which spins
            for 200 µs after each step, then sleeps; no OpenMP region a step). None (default):
            RNNKIT_STREAM_SPLIT=on|worker|off if set, else timed here when torch has 2+
            threads and the largest layer reads at least 2^15 weight elements a step: a few
            short rounds of real steps each of the three ways, each step timed, the best
            round median of each (one thread and the worker split taking turns, each worker
            round started with the worker awake and no back-off, then, once the worker has
            stopped spinning, the parallel_for split); about 6 ms in all
            (more on a loaded machine, where a split step can stall for a scheduler slice);
            the state is restored, and the worker thread is kept only if it wins. Whether a
            second core helps depends on its cache (LSTM H = 128, split vs not: Zen 4, each
            core its own L2, 4.0 vs 5.4 us; a 2-core Xeon, 4.7 vs 3.95) and on what else
            runs, so it is measured, not assumed.
            The choice is kept for the streamer's life: ``split`` (bool), ``split_mode``
            ("one", "parallel_for", "worker"), ``split_reason`` (why) and ``split_timing``
            (the timed µs a step, or None) report it. In a forked child a "worker" streamer
            steps on one thread (the worker thread is not forked).

    Example:
        >>> s = KernelStreamer([StreamLayer("gru", w_ih, w_hh, b_ih, b_hh)], batch=1)
        >>> for x_t in stream:          # x_t (1, D)
        ...     y_t = s.step(x_t)       # (1, H), s's buffer: clone it to keep it
    """

    def __init__(self, layers, batch: int = 1, split: bool | str | None = None):
        layers = list(layers)
        if not layers:
            raise ValueError("KernelStreamer: needs at least one layer")
        if batch < 1:
            raise ValueError(f"KernelStreamer: batch must be >= 1, got {batch}")
        self._module = lib()
        self._prepared, self._h, self._c, keep = [], [], [], []
        rows = torch.zeros(len(layers), _ROW, dtype=torch.int64)
        dtype = None
        for k, spec in enumerate(layers):
            if spec.kind not in _KINDS:
                raise ValueError(
                    f"KernelStreamer: layer {k} kind must be one of {sorted(_KINDS)}, "
                    f"got {spec.kind!r}"
                )
            code, gates = _KINDS[spec.kind]
            weights = (spec.weight_ih, spec.weight_hh, spec.bias_ih, spec.bias_hh)
            p = _Prepared(f"KernelStreamer layer {k}", *weights, gates)
            if k and p.D != self._prepared[-1].H:
                raise ValueError(
                    f"KernelStreamer: layer {k} takes inputs of size {p.D} but layer "
                    f"{k - 1} gives {self._prepared[-1].H}"
                )
            if dtype is not None and p.dtype != dtype:
                raise TypeError(f"KernelStreamer: layer {k} is {p.dtype}, layer 0 is {dtype}")
            dtype = p.dtype
            h = torch.zeros(batch, p.H, dtype=dtype)
            c = torch.zeros(batch, p.H, dtype=dtype) if spec.kind == "lstm" else None
            h_new, c_new = torch.empty_like(h), torch.empty_like(h)  # the kernels' scratch
            keep += [h_new, c_new]
            x_slot = (0, 0)  # filled by the native code on every step
            if spec.kind == "elman":
                act = _ACTIVATIONS.get(spec.activation)
                if act is None:
                    raise ValueError(
                        f"KernelStreamer: activation must be one of "
                        f"{sorted(_ACTIVATIONS)}, got {spec.activation!r}"
                    )
                a = (p.code, batch, p.D, p.H, act, *x_slot, h.data_ptr(), *p.args, h_new.data_ptr())
            elif spec.kind == "gru":
                a = (
                    p.code,
                    batch,
                    p.D,
                    p.H,
                    int(bool(spec.reset_after)),
                    *x_slot,
                    h.data_ptr(),
                    *p.args,
                    h_new.data_ptr(),
                )
            else:
                a = (
                    p.code,
                    batch,
                    p.D,
                    p.H,
                    *x_slot,
                    h.data_ptr(),
                    c.data_ptr(),
                    *p.args,
                    h_new.data_ptr(),
                    c_new.data_ptr(),
                )
            rows[k, : 1 + len(a)] = torch.tensor((code, *a), dtype=torch.int64)
            bx, bh = _summed_bias(p, gates, spec.kind == "gru" and bool(spec.reset_after))
            keep += [bx, bh]
            rows[k, _BX_SLOT], rows[k, _BH_SLOT] = bx.data_ptr(), bh.data_ptr()
            self._prepared.append(p)
            self._h.append(h)
            self._c.append(c)
        self._rows, self._scratch = rows, keep
        self._rows_ptr, self._nlayers = rows.data_ptr(), len(layers)
        self._run, self._step = self._module.stream_run, self._module.stream_step
        self._dtype, self._xshape = dtype, (batch, self._prepared[0].D)
        self._y = self._h[-1]
        self.batch, self.kinds = batch, tuple(spec.kind for spec in layers)
        splittable = [
            gates * p.H * (p.D + p.H)
            for spec, p in zip(layers, self._prepared, strict=True)
            for gates in (_KINDS[spec.kind][1],)
            if not (spec.kind == "gru" and not spec.reset_after)  # that step is never split
        ]
        self._worker = None
        self._choose_split(split, max(splittable, default=None))

    def _choose_split(self, split, work: int | None) -> None:
        """Set ``split``, ``split_mode``, ``split_reason`` and ``split_timing``: forced by the
        argument or RNNKIT_STREAM_SPLIT, else timed."""
        self.split_timing = None
        forced = {False: _SPLIT_NEVER, True: _SPLIT_ALWAYS, "worker": _SPLIT_WORKER}
        mode = None
        if split is None:
            env = os.environ.get(_SPLIT_ENV, "").strip().lower()
            if env in ("on", "off", "worker"):
                mode = {"on": _SPLIT_ALWAYS, "off": _SPLIT_NEVER, "worker": _SPLIT_WORKER}[env]
                why = f"{_SPLIT_ENV}={env}"
            elif env not in ("", "auto"):
                raise ValueError(f"{_SPLIT_ENV} must be auto, on, worker or off, got {env!r}")
        elif isinstance(split, str):
            if split != "worker":
                raise ValueError(
                    f"KernelStreamer: split must be None, True, False or 'worker', got {split!r}"
                )
            mode, why = _SPLIT_WORKER, "split='worker'"
        else:
            mode, why = forced[bool(split)], "split=" + str(bool(split))
        if mode is None:
            threads = torch.get_num_threads()
            if threads < 2:
                mode, why = _SPLIT_NEVER, "one thread"
            elif work is None:
                mode, why = _SPLIT_NEVER, "GRU steps with reset_after=False are never split"
            elif work < _SPLIT_TIMED_MIN:
                mode = _SPLIT_NEVER
                why = f"{work} weight elements a step, under {_SPLIT_TIMED_MIN}"
            else:
                self._start_worker()
                best = self._time_split()
                self.split_timing = {
                    "one_thread_us": best[_SPLIT_NEVER] * 1e6,
                    "split_us": best[_SPLIT_ALWAYS] * 1e6,
                    "worker_us": best[_SPLIT_WORKER] * 1e6,
                }
                mode = min(best, key=lambda m: (best[m], m))  # a tie: the fewer threads
                why = "timed: " + ", ".join(
                    f"{name} {best[m] * 1e6:.2f} us" for m, name in _MODES.items()
                ) + " a step"  # fmt: skip
        if mode == _SPLIT_WORKER:
            self._start_worker()
        else:
            self._stop_worker()
        self._set_split(mode)
        self.split, self.split_mode, self.split_reason = mode != _SPLIT_NEVER, _MODES[mode], why

    def _start_worker(self) -> None:
        if self._worker is None:
            self._worker, addr = self._module.stream_worker_new()
            self._rows[:, _WORKER_SLOT] = addr

    def _stop_worker(self) -> None:
        """Forget the worker (its thread is joined when the last reference goes)."""
        self._rows[:, _WORKER_SLOT] = 0
        self._worker = None

    def worker_stats(self) -> tuple[int, int] | None:
        """(steps posted to the worker, second halves it ran), None without one (for tests
        and benchmarks: the caller runs a half itself when the worker is late)."""
        return None if self._worker is None else self._module.stream_worker_stats(self._worker)

    def _set_split(self, mode: int) -> None:
        self._rows[:, _SPLIT_SLOT] = mode

    def _time_split(self) -> dict:
        """Seconds a step by mode (the best of a few short rounds' medians) on zero input; the
        state is restored afterwards. Each worker round starts with the worker awake and the
        caller's back-off cleared (stream_worker_prime): before, a streak of 64 late halves
        (the worker asleep through the other modes' rounds, or descheduled) put the caller on
        one thread for its next 1000 steps, so most worker rounds timed one thread (session
        11, 2-core Xeon, benchmarks/stream_backoff.py, GRU H = 128: 38 of 60 rounds posted
        nothing, none when primed). One thread and the worker split take turns; the
        parallel_for rounds come after both, once the worker has stopped spinning
        (_WORKER_SPIN_S), so that neither's threads spin on a core the other's round uses (a
        precaution: a direct A/B, benchmarks/results/stream.session11.kstream.txt, showed no
        difference at load 1.8). Starts no round past three times _SPLIT_BUDGET_S / 2 after
        the warm-up, and cuts a round short there (a loaded machine can stall a split step for
        a scheduler slice, milliseconds)."""
        saved = [t.clone() for t in (*self._h, *(c for c in self._c if c is not None))]
        x = torch.zeros(self._xshape, dtype=self._dtype)
        step, rows, nl, y = self._step, self._rows_ptr, self._nlayers, self._y
        clock, prime = time.perf_counter, self._module.stream_worker_prime
        deadline = float("inf")

        def per_step(mode: int, n: int) -> float:
            """The median of n steps, each timed (a stalled step moves no median); past the
            deadline, of min(n, 5). A worker round starts with the worker awake and the
            caller's back-off cleared (stream_worker_prime)."""
            if mode == _SPLIT_WORKER:
                prime(self._worker, _WORKER_PRIME_US)
            self._set_split(mode)
            times, t = [], clock()
            while len(times) < n and (len(times) < 5 or t < deadline):
                step(rows, nl, x, y)
                t0, t = t, clock()
                times.append(t - t0)
            return statistics.median(times)

        first = (_SPLIT_NEVER, _SPLIT_WORKER)  # no parallel_for region before these
        with torch.no_grad():
            rough = min(per_step(m, 2) for m in first)  # and warm-up
            deadline = clock() + 3 * _SPLIT_BUDGET_S
            # 5 rounds of up to 50 steps each way; fewer (down to one round of 2) for big steps
            rounds = max(1, min(5, int(_SPLIT_BUDGET_S / (4 * max(rough, 1e-7)))))
            n = max(2, min(50, int(_SPLIT_BUDGET_S / (2 * rounds * max(rough, 1e-7)))))
            best = dict.fromkeys((*first, _SPLIT_ALWAYS), float("inf"))
            for r in range(rounds):
                if r and clock() >= deadline:
                    break
                for mode in first if r % 2 == 0 else first[::-1]:
                    best[mode] = min(best[mode], per_step(mode, n))
            self._set_split(_SPLIT_NEVER)
            time.sleep(_WORKER_SPIN_S)  # the worker's spin ends: it sleeps until posted to
            per_step(_SPLIT_ALWAYS, 2)  # warm-up (the first region may start the threads)
            for r in range(rounds):
                if r and clock() >= deadline:
                    break
                best[_SPLIT_ALWAYS] = min(best[_SPLIT_ALWAYS], per_step(_SPLIT_ALWAYS, n))
            for t, s in zip((*self._h, *(c for c in self._c if c is not None)), saved, strict=True):
                t.copy_(s)
        return best

    @property
    def state(self) -> list:
        """Per-layer states, live: h (B, H), or (h, c) for an LSTM layer."""
        return [h if c is None else (h, c) for h, c in zip(self._h, self._c, strict=True)]

    def reset(self, state=None) -> None:
        """Zero the state, or copy ``state`` (a list as ``self.state`` gives) into it."""
        with torch.no_grad():
            if state is None:
                for t in (*self._h, *(c for c in self._c if c is not None)):
                    t.zero_()
                return
            if len(state) != len(self._h):
                raise ValueError(
                    f"KernelStreamer.reset: expected {len(self._h)} layer states, got {len(state)}"
                )
            for k, (s, h, c) in enumerate(zip(state, self._h, self._c, strict=True)):
                parts = (s,) if c is None else tuple(s)
                mine = (h,) if c is None else (h, c)
                if len(parts) != len(mine) or any(
                    tuple(a.shape) != tuple(b.shape) for a, b in zip(parts, mine, strict=True)
                ):
                    raise ValueError(
                        f"KernelStreamer.reset: state {k} must be {len(mine)} tensor(s) "
                        f"of shape {tuple(h.shape)}"
                    )
                for a, b in zip(parts, mine, strict=True):
                    b.copy_(a)

    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        """Advance every layer by one step on x_t (B, D); return the top layer's h (B, H).

        The returned tensor is the KernelStreamer's own state buffer, overwritten by the next step:
        ``.clone()`` it to keep it.
        """
        # The common case is checked in C (stream_step: None where x_t is not it); the rest
        # goes through _check, which raises with the reason or lets a tensor subclass through.
        y = self._step(self._rows_ptr, self._nlayers, x_t, self._y)
        if y is None:
            self._check(x_t)
            self._run(self._rows_ptr, self._nlayers, x_t.data_ptr(), x_t.stride(0))
            y = self._y
        return y

    def _check(self, x_t):
        if not isinstance(x_t, torch.Tensor) or tuple(x_t.shape) != self._xshape:
            got = tuple(x_t.shape) if isinstance(x_t, torch.Tensor) else type(x_t).__name__
            raise ValueError(f"KernelStreamer.step: x_t must have shape {self._xshape}, got {got}")
        if x_t.dtype != self._dtype or not x_t.is_cpu or x_t.stride(1) != 1:
            raise ValueError(
                f"KernelStreamer.step: x_t must be a {self._dtype} CPU tensor with contiguous rows"
            )
        if x_t.requires_grad and torch.is_grad_enabled():
            raise ValueError(
                "KernelStreamer.step is for inference and records no autograd history; "
                "call it under torch.no_grad() or pass x_t.detach()"
            )


def step_plan(layers, batch: int):
    """The native plan behind `Recurrent.step` (csrc/step.cpp) for a stack of one kernel
    family: (plan, run), where ``run(plan, x_t, state)`` steps every layer and returns
    ``(y_t, state)`` in fresh tensors, with autograd (one node per layer, backward in C++) when
    grad is enabled and x_t, the state or a weight requires grad; None when x_t or the state is
    not the plan's case (batch, dtype, layout, a tensor subclass, tracing); NotImplemented when
    a weight changed since (its data pointer or version): build a new plan.

    Args:
        layers: StreamLayer list, bottom-up, one kind, equal hidden sizes; the weights are the
            live parameters (their gradients are what the backward computes).
        batch: B.
    """
    module = lib()
    kinds = {spec.kind for spec in layers}
    if len(kinds) != 1 or not kinds <= set(_KINDS):
        raise ValueError(f"step_plan: layers must be of one kind of {sorted(_KINDS)}, got {kinds}")
    rows, first, width = [], layers[0], None
    for k, spec in enumerate(layers):
        weights = (spec.weight_ih, spec.weight_hh, spec.bias_ih, spec.bias_hh)
        p = _Prepared(f"step_plan layer {k}", *weights, _KINDS[spec.kind][1])
        if k and not p.D == p.H == width:  # the native plan steps layers of one width
            raise ValueError(f"step_plan: layer {k} must be ({width} -> {width}), like layer 1")
        width = p.H
        if any(b is not None and not b.is_contiguous() for b in weights[2:]):
            raise ValueError(f"step_plan: layer {k}'s biases must be contiguous")
        rows.append((*weights, p.wih_t, p.whh_t))
    if first.kind == "elman":
        opt = _ACTIVATIONS.get(first.activation)
        if opt is None or any(s.activation != first.activation for s in layers):
            raise ValueError(f"step_plan: one activation of {sorted(_ACTIVATIONS)} for all layers")
    else:
        opt = int(bool(first.reset_after))
        if any(bool(s.reset_after) != bool(opt) for s in layers):
            raise ValueError("step_plan: one reset_after for all layers")
    return module.step_plan(_KINDS[first.kind][0], opt, batch, rows), module.plan_step
