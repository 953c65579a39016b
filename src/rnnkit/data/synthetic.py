"""Synthetic long-range tasks (the adding problem, copy memory, a copy-task curriculum) and
labelled anomalies injected into a real series (`inject`: spikes, level shifts, dropouts).

Each generator takes a torch.Generator so a benchmark is reproducible, and returns
batch-first tensors. The trivial baselines the literature compares against are given:

    adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015): predicting 1 always gives
        MSE = Var(U(0,1) + U(0,1)) = 2/12 ≈ 0.167                   -> ADDING_BASELINE_MSE
    copy memory (Arjovsky et al. 2016): emitting blanks, then a uniform guess over the 8
        symbols, gives cross-entropy 10·log 8 / (T + 20) per step  -> copy_memory_baseline(T)

Imports: torch and numpy only.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import Tensor

ADDING_BASELINE_MSE = 1.0 / 6.0  # Var of the sum of two U(0, 1): what predicting 1 scores


def adding_problem(
    batch: int, T: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """The adding problem as in Le et al. (2015).

    Each step carries a value ~ U(0, 1) and a marker; exactly two markers are 1, one at a
    uniform position in the first half and one in the second half. The target is the sum of
    the two marked values.

    Args:
        batch: B. T: sequence length (>= 2).

    Returns:
        x (B, T, 2) (value, marker) and y (B, 1).

    Example:
        >>> x, y = adding_problem(32, 100, torch.Generator().manual_seed(0))
    """
    if T < 2:
        raise ValueError(f"adding_problem: T must be >= 2, got {T}")
    values = torch.rand(batch, T, generator=generator)
    half = T // 2
    first = torch.randint(0, half, (batch,), generator=generator)
    second = torch.randint(half, T, (batch,), generator=generator)
    markers = torch.zeros(batch, T)
    rows = torch.arange(batch)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)  # (B, T, 2)
    y = (values * markers).sum(dim=1, keepdim=True)  # (B, 1)
    return x, y


COPY_BLANK, COPY_DELIMITER, COPY_SYMBOLS = 0, 9, 8  # Arjovsky et al.: symbols are 1..8


def copy_memory(
    batch: int, T: int, n: int = 10, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """The copy-memory task (Arjovsky et al. 2016): remember n symbols over T blank steps.

    Input: n symbols from {1..8}, T - 1 blanks (0), the delimiter (9), n blanks.
    Target: T + n blanks, then the n symbols. Length T + 2n.

    Returns:
        x (B, T + 2n) and y (B, T + 2n), integer ids in [0, 10).
    """
    if T < 1 or n < 1:
        raise ValueError(f"copy_memory: need T >= 1 and n >= 1, got T={T}, n={n}")
    symbols = torch.randint(1, COPY_SYMBOLS + 1, (batch, n), generator=generator)
    L = T + 2 * n
    x = torch.full((batch, L), COPY_BLANK, dtype=torch.long)
    y = torch.full((batch, L), COPY_BLANK, dtype=torch.long)
    x[:, :n] = symbols
    x[:, n + T - 1] = COPY_DELIMITER
    y[:, -n:] = symbols
    return x, y


def copy_memory_baseline(T: int, n: int = 10) -> float:
    """Cross-entropy per step (nats) of the memoryless strategy: n·log 8 / (T + 2n)."""
    return n * math.log(COPY_SYMBOLS) / (T + 2 * n)


class CopyCurriculum:
    """The binary copy task with a length curriculum, for online learning (Mujika et al. 2018;
    Menick et al. 2021 "SnAp").

    An episode shows L random bits, then an end marker; the network must then output the L
    bits in order while the input is blank. Episodes follow each other in one stream that is
    never reset, so the learner also has to find where episodes start. L starts at `start`
    and grows by one whenever the mean loss of the last `window` episodes falls below
    `threshold` bits per output bit.

    Inputs are 3 channels (bit 0, bit 1, marker); targets are bits, or -1 where there is none.

    Example:
        >>> cur = CopyCurriculum()
        >>> x, y = cur.episode(4, gen)      # x (4, 2L+1, 3), y (4, 2L+1)
        >>> cur.observe(bits_per_output)    # may advance L
    """

    features = 3
    classes = 2

    def __init__(self, start: int = 1, threshold: float = 0.15, window: int = 20):
        if start < 1:
            raise ValueError(f"CopyCurriculum: start must be >= 1, got {start}")
        self.length, self.threshold, self.window = start, threshold, window
        self.recent: list[float] = []
        self.episodes = 0
        self.history: list[tuple[int, int]] = [(0, start)]  # (episode, L) when L changed

    def episode(self, batch: int, generator: torch.Generator | None = None):
        """One episode for B parallel streams: x (B, 2L+1, 3), y (B, 2L+1) long (-1: none)."""
        L = self.length
        bits = torch.randint(0, 2, (batch, L), generator=generator)
        x = torch.zeros(batch, 2 * L + 1, 3)
        x[:, :L, :2] = torch.nn.functional.one_hot(bits, 2).float()
        x[:, L, 2] = 1.0
        y = torch.full((batch, 2 * L + 1), -1, dtype=torch.long)
        y[:, L + 1 :] = bits
        return x, y

    def observe(self, bits_per_output: float) -> bool:
        """Record an episode's mean loss (bits per target); True when L was increased."""
        self.episodes += 1
        self.recent = (self.recent + [bits_per_output])[-self.window :]
        if len(self.recent) == self.window and sum(self.recent) / self.window < self.threshold:
            self.length += 1
            self.recent = []
            self.history.append((self.episodes, self.length))
            return True
        return False


# ---- anomalies injected into a series ---------------------------------------------------

ANOMALY_KINDS = ("spike", "level shift", "dropout")


@dataclasses.dataclass
class Injected:
    values: np.ndarray  # (K, N)
    labels: np.ndarray  # (K, N) bool
    kind: np.ndarray  # (K, N) int: -1 clean, else index into ANOMALY_KINDS
    events: list[tuple[int, str, int, int]]  # (trial, kind, start, stop)


def inject(
    values: np.ndarray,
    start: int,
    trials: int,
    sigma: float,
    seed: int = 0,
    per_kind: int = 2,
    spike_size: float = 5.0,
    shift_size: float = 3.0,
    min_gap: int = 3,
) -> Injected:
    """`trials` copies of `values`, each with `per_kind` spikes, level shifts and dropouts at
    random non-overlapping places in [start, N). Segments last 3-8 points."""
    rng = np.random.default_rng(seed)
    N = len(values)
    out = np.repeat(np.asarray(values, dtype=np.float64)[None], trials, 0)
    kind = np.full((trials, N), -1)
    events = []
    for k in range(trials):
        taken = np.zeros(N, dtype=bool)
        taken[:start] = True
        plan = [
            (j, 1 if j == 0 else int(rng.integers(3, 9))) for j in range(3) for _ in range(per_kind)
        ]
        rng.shuffle(plan)
        for j, length in plan:
            free = [
                s for s in range(start, N - length + 1)
                if not taken[max(0, s - min_gap) : s + length + min_gap].any()
            ]  # fmt: skip
            if not free:
                continue
            s = int(rng.choice(free))
            seg = slice(s, s + length)
            before = out[k, seg].copy()
            if j == 0:
                out[k, seg] += rng.choice([-1.0, 1.0]) * spike_size * sigma
            elif j == 1:
                out[k, seg] += rng.choice([-1.0, 1.0]) * shift_size * sigma
            else:
                out[k, seg] = 0.0
            material = np.abs(out[k, seg] - before) >= sigma
            taken[seg] = True
            if material.any():
                kind[k, s : s + length][material] = j
                events.append((k, ANOMALY_KINDS[j], s, s + length))
    return Injected(out, kind >= 0, kind, events)
