"""The DTW baseline: one-pass connected-word template matching (Vintsyuk 1971, Ney 1984).

Every training voice's isolated recording of each word is a template. An utterance is matched
against sequences of templates in one left-to-right pass over its frames: inside a template a
step stays, advances one or skips one template frame; at each frame the best template end may
start any template (plus a word insertion penalty), and a one-frame silence template absorbs
pauses. Each utterance frame is matched exactly once, so costs compare across hypotheses of
any number of words. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def normalise(frames: np.ndarray) -> np.ndarray:
    """Per-utterance mean removed from each channel (cepstral mean normalisation's analogue
    for log-mel: a fixed channel or voice colouring is a constant offset)."""
    return frames - frames.mean(0, keepdims=True)


def loud_range(frames: np.ndarray, drop: float = 6.0) -> tuple[int, int]:
    """[lo, hi): the frames from the first to the last within `drop` log units of the
    loudest (log-mel frames (T, D)): a recording with its leading and trailing silence cut."""
    energy = np.log(np.exp(frames).sum(1) + 1e-12)
    loud = np.flatnonzero(energy > energy.max() - drop)
    return int(loud[0]), int(loud[-1]) + 1


@dataclass
class TemplateSet:
    """Templates side by side: frames (S, D), the template of each position, start flags."""

    frames: np.ndarray
    owner: np.ndarray  # (S,) template index
    first: np.ndarray  # (S,) bool: a template's first frame
    ends: np.ndarray  # (K,) position of each template's last frame
    words: list[str]  # (K,) "" for silence

    @classmethod
    def build(cls, templates: Sequence[tuple[np.ndarray, str]]) -> TemplateSet:
        frames = np.concatenate([t for t, _ in templates])
        sizes = np.array([len(t) for t, _ in templates])
        ends = np.cumsum(sizes) - 1
        owner = np.repeat(np.arange(len(sizes)), sizes)
        first = np.zeros(len(frames), bool)
        first[ends - sizes + 1] = True
        return cls(frames, owner, first, ends, [w for _, w in templates])


def match(utt: np.ndarray, ts: TemplateSet, penalty: float) -> list[str]:
    """The best word sequence for utterance frames (T, D) (silence dropped)."""
    d = np.sqrt(np.maximum(
        (utt**2).sum(1)[:, None] - 2 * utt @ ts.frames.T + (ts.frames**2).sum(1)[None, :], 0
    ))  # (T, S) Euclidean distances  # fmt: skip
    T, S = d.shape
    second = np.roll(ts.first, 1)  # a template's second frame: no skip from the one before
    inf = np.inf
    D = np.where(ts.first, d[0], inf)
    start = np.zeros(S, dtype=np.int64)
    end_cost, end_word, end_start = np.empty(T), np.empty(T, np.int64), np.empty(T, np.int64)
    for t in range(T):
        if t:
            adv = np.where(ts.first, inf, np.roll(D, 1))
            skip = np.where(ts.first | second, inf, np.roll(D, 2))
            cands = np.stack([D, adv, skip])  # stay, advance, skip
            choice = cands.argmin(0)
            best = cands[choice, np.arange(S)]
            src = np.arange(S) - choice
            new_start = start[src]
            enter = end_cost[t - 1] + penalty  # begin a template after the best word end
            fresh = ts.first & (enter < best)
            best = np.where(fresh, enter, best)
            start = np.where(fresh, t, new_start)
            D = best + d[t]
        k = int(D[ts.ends].argmin())
        end_cost[t], end_word[t], end_start[t] = D[ts.ends[k]], k, start[ts.ends[k]]
    words, t = [], T - 1
    while t >= 0:
        words.append(ts.words[end_word[t]])
        t = end_start[t] - 1
    return [w for w in reversed(words) if w]


def silence_template(frames: Sequence[np.ndarray], share: float = 0.1) -> np.ndarray:
    """One frame: the mean of the quietest `share` of the frames given (1, D)."""
    allf = np.concatenate(frames)
    energy = np.exp(allf).sum(1)
    quiet = allf[energy <= np.quantile(energy, share)]
    return quiet.mean(0, keepdims=True)
