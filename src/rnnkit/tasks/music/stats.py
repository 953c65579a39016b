"""Statistics of four-voice pieces on the 16th-note grid, and their piano rolls.

Every figure is computed the same way for generated pieces and for held-out Bach:

- pitch range per voice: the lowest and highest MIDI pitch, averaged over pieces;
- in key: the fraction of attacks whose pitch class is in the scale of the key music21's
  Krumhansl-Schmuckler analysis finds for the piece;
- voice crossings: the percentage of 16th steps where a voice sounds below the next lower one
  (S < A, A < T or T < B);
- parallel fifths / octaves per 100 beats (quarter notes): two voices that both move, in the
  same direction, from a perfect fifth (or octave/unison, modulo the octave) to the same interval;
- note-duration distance: the total-variation distance between the histograms of note
  durations (in 16ths, 16 and longer in one bin) of the generated set and held-out Bach.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...data.music import HOLD, REST, STEPS_PER_QUARTER, VOICES, grid_score

Grid = Sequence[Sequence[int]]
MAX_DURATION = 16  # 16ths: a whole note and longer share the last bin


def sounding(grid: Grid) -> np.ndarray:
    """(4, T) the pitch sounding in each voice at each step, -1 where it rests."""
    out = np.full((len(grid), len(grid[0])), -1, dtype=np.int64)
    for v, row in enumerate(grid):
        current = -1
        for t, value in enumerate(row):
            current = value if value >= 0 else (-1 if value == REST else current)
            out[v, t] = current
    return out


def durations(grid: Grid) -> list[int]:
    """Every note's duration in 16ths."""
    out = []
    for row in grid:
        length = 0
        for value in row:
            if value >= 0:
                if length:
                    out.append(length)
                length = 1
            elif value == HOLD and length:
                length += 1
            else:
                if length:
                    out.append(length)
                length = 0
        if length:
            out.append(length)
    return out


def in_key_fraction(grid: Grid) -> float:
    attacks = [p for row in grid for p in row if p >= 0]
    if not attacks:
        return float("nan")
    key = grid_score(grid).analyze("key")
    scale = {p.pitchClass for p in key.getPitches()}
    return sum(p % 12 in scale for p in attacks) / len(attacks)


def parallels(snd: np.ndarray) -> tuple[int, int]:
    """(parallel fifths, parallel octaves) between consecutive distinct sonorities."""
    fifths = octaves = 0
    change = [t for t in range(1, snd.shape[1]) if (snd[:, t] != snd[:, t - 1]).any()]
    for t in change:
        a, b = snd[:, t - 1], snd[:, t]
        for i in range(len(a)):
            for j in range(i + 1, len(a)):
                if min(a[i], a[j], b[i], b[j]) < 0:
                    continue
                mi, mj = b[i] - a[i], b[j] - a[j]
                if mi == 0 or mj == 0 or (mi > 0) != (mj > 0):
                    continue
                before, after = (a[i] - a[j]) % 12, (b[i] - b[j]) % 12
                if before == after == 7:
                    fifths += 1
                elif before == after == 0:
                    octaves += 1
    return fifths, octaves


def crossing_steps(snd: np.ndarray) -> int:
    """Steps where some voice sounds below the next lower voice."""
    upper, lower = snd[:-1], snd[1:]
    both = (upper >= 0) & (lower >= 0)
    return int((both & (upper < lower)).any(axis=0).sum())


def duration_histogram(grids: Sequence[Grid]) -> np.ndarray:
    counts = np.zeros(MAX_DURATION, dtype=np.float64)
    for g in grids:
        for d in durations(g):
            counts[min(d, MAX_DURATION) - 1] += 1
    return counts / max(counts.sum(), 1.0)


def piece_statistics(grids: Sequence[Grid]) -> dict[str, Any]:
    """The statistics of a set of pieces (see the module docstring)."""
    ranges = {}
    for v, name in enumerate(VOICES):
        lows, highs = [], []
        for g in grids:
            ps = [p for p in g[v] if p >= 0]
            if ps:
                lows.append(min(ps))
                highs.append(max(ps))
        ranges[name] = [float(np.mean(lows)) if lows else None,
                        float(np.mean(highs)) if highs else None]  # fmt: skip
    steps = sum(len(g[0]) for g in grids)
    beats = steps / STEPS_PER_QUARTER
    fifths = octaves = crossings = 0
    for g in grids:
        snd = sounding(g)
        f, o = parallels(snd)
        fifths, octaves, crossings = fifths + f, octaves + o, crossings + crossing_steps(snd)
    in_key = [x for x in (in_key_fraction(g) for g in grids) if x == x]
    return {
        "pieces": len(grids),
        "beats": beats,
        "range": ranges,
        "in_key": float(np.mean(in_key)) if in_key else None,
        "crossing_percent": 100.0 * crossings / max(steps, 1),
        "parallel_fifths_per_100_beats": 100.0 * fifths / max(beats, 1e-9),
        "parallel_octaves_per_100_beats": 100.0 * octaves / max(beats, 1e-9),
        "duration_histogram": duration_histogram(grids).tolist(),
    }


def tv_distance(p: Sequence[float], q: Sequence[float]) -> float:
    """Total-variation distance between two histograms (0: equal, 1: disjoint)."""
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


def piano_roll(grid: Grid, title: str):
    """A piano-roll figure: one colour per voice, time in quarter notes, MIDI pitch up."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    snd = sounding(grid)
    fig, ax = plt.subplots(figsize=(8.0, 2.8))
    colours = ("tab:red", "tab:orange", "tab:green", "tab:blue")
    for v, (row, colour) in enumerate(zip(grid, colours, strict=False)):
        t = 0
        while t < len(row):
            end = t + 1
            while end < len(row) and row[end] == HOLD:
                end += 1
            if snd[v, t] >= 0:
                ax.broken_barh([(t / STEPS_PER_QUARTER, (end - t) / STEPS_PER_QUARTER - 0.05)],
                               (snd[v, t] - 0.4, 0.8), color=colour)
            t = end
    ax.set_xlabel("quarter notes")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title, fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours]
    ax.legend(handles, VOICES, loc="upper right", fontsize=7, ncol=4)
    return fig
