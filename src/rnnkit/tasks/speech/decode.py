"""CTC decoding and error rates: greedy and prefix-beam decoding, edit distance, CER and WER.

Label 0 is the CTC blank; labels 1..V-1 are characters. Pure numpy and the standard library.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np


def greedy(log_probs: np.ndarray) -> list[int]:
    """The best label per step, repeats collapsed, blanks removed: (T, V) -> labels.

    Example:
        >>> greedy(np.log(np.eye(3)[[1, 1, 0, 1, 2, 2]]))
        [1, 1, 2]
    """
    return collapse(log_probs.argmax(-1).tolist())


def collapse(best: Sequence[int]) -> list[int]:
    """Per-step labels -> repeats merged, blanks (0) removed: the CTC many-to-one map."""
    out, prev = [], 0
    for k in best:
        if k != prev and k != 0:
            out.append(k)
        prev = k
    return out


def _logadd(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def prefix_beam(log_probs: np.ndarray, beam: int = 8, prune: float = -12.0) -> list[int]:
    """CTC prefix beam search (Hannun et al. 2014, without a language model): (T, V) -> labels.

    Each prefix keeps two log-probabilities, of ending in a blank and of ending in its last
    label, so every alignment of a prefix is summed, not only the best one (greedy). Labels
    whose step log-probability is below `prune` are not extended.
    """
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}
    for lp in log_probs:
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        cands = [k for k in range(1, len(lp)) if lp[k] > prune]
        for prefix, (pb, pnb) in beams.items():
            total = _logadd(pb, pnb)
            e = nxt[prefix]  # stay: a blank, or the last label repeated
            e[0] = _logadd(e[0], total + lp[0])
            if prefix:
                e[1] = _logadd(e[1], pnb + lp[prefix[-1]])
            for k in cands:
                ext = nxt[prefix + (k,)]
                if prefix and k == prefix[-1]:  # a repeat needs a blank between
                    ext[1] = _logadd(ext[1], pb + lp[k])
                else:
                    ext[1] = _logadd(ext[1], total + lp[k])
        ranked = sorted(nxt.items(), key=lambda kv: -_logadd(*kv[1]))[:beam]
        beams = {p: (v[0], v[1]) for p, v in ranked}
    return list(max(beams.items(), key=lambda kv: _logadd(*kv[1]))[0])


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1).

    Example:
        >>> edit_distance("kitten", "sitting")
        3
    """
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict:
    """Corpus CER and WER: total edits / total reference characters (words)."""
    ce = sum(edit_distance(r, h) for r, h in zip(refs, hyps, strict=True))
    we = sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps, strict=True))
    chars, words = sum(len(r) for r in refs), sum(len(r.split()) for r in refs)
    exact = sum(r == h for r, h in zip(refs, hyps, strict=True))
    return {"cer": ce / max(chars, 1), "wer": we / max(words, 1),
            "sentence_accuracy": exact / max(len(refs), 1), "n": len(refs)}  # fmt: skip
