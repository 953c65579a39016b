"""CTC decoding and error rates: greedy and prefix-beam decoding (optionally with an n-gram
language model over the output units), edit distance, CER and WER.

Label 0 is the CTC blank; labels 1..V-1 are the output units (characters or words). Pure
numpy and the standard library.
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


class NgramLM:
    """An n-gram model over label sequences (labels 1..V-1): interpolated absolute
    discounting (Ney et al. 1994; discount 0.75) down to the uniform distribution, so every
    label keeps some probability. Label 0 (the CTC blank, never in a labelling) stands for
    the end of the sequence; contexts before the start are padded with -1.

    Example:
        >>> lm = NgramLM([[1, 2], [1, 2], [1, 3]], order=2, vocab=4)
        >>> lm.logp((1,), 2) > lm.logp((1,), 3), lm.logp((1, 2), 0) > lm.logp((1, 2), 1)
        (True, True)
    """

    def __init__(self, sequences: Sequence[Sequence[int]], order: int, vocab: int,
                 discount: float = 0.75) -> None:  # fmt: skip
        self.order, self.vocab, self.discount = order, vocab, discount
        # counts[k][context of k labels][next label]
        self.counts: list[dict[tuple[int, ...], dict[int, int]]] = [{} for _ in range(order)]
        for seq in sequences:
            padded = [-1] * (order - 1) + list(seq) + [0]
            for i in range(order - 1, len(padded)):
                for k in range(order):
                    nxt = self.counts[k].setdefault(tuple(padded[i - k : i]), {})
                    nxt[padded[i]] = nxt.get(padded[i], 0) + 1
        self.totals = [{c: sum(n.values()) for c, n in level.items()} for level in self.counts]
        self._cache: dict[tuple[tuple[int, ...], int], float] = {}

    def logp(self, prefix: Sequence[int], label: int) -> float:
        """log P(label | the last order-1 labels of prefix); label 0: the end."""
        n = self.order - 1
        ctx = tuple(([-1] * n + list(prefix))[len(prefix) :]) if n else ()
        key = (ctx, label)
        if key not in self._cache:
            p = 1.0 / self.vocab
            for k in range(self.order):
                c = ctx[len(ctx) - k :] if k else ()
                nxt = self.counts[k].get(c)
                if nxt:
                    total = self.totals[k][c]
                    p = (max(nxt.get(label, 0) - self.discount, 0.0)
                         + self.discount * len(nxt) * p) / total  # fmt: skip
            self._cache[key] = math.log(p)
        return self._cache[key]

    def perplexity(self, sequences: Sequence[Sequence[int]]) -> float:
        """exp of the mean negative log-probability per label (the end included)."""
        nll, n = 0.0, 0
        for seq in sequences:
            seq = list(seq)
            for i, label in enumerate([*seq, 0]):
                nll, n = nll - self.logp(seq[:i], label), n + 1
        return math.exp(nll / max(n, 1))


def prefix_beam(log_probs: np.ndarray, beam: int = 8, prune: float = -8.0,
                lm: NgramLM | None = None, weight: float = 0.0,
                bonus: float = 0.0) -> list[int]:  # fmt: skip
    """CTC prefix beam search (Hannun et al. 2014): (T, V) -> labels.

    Each prefix keeps two log-probabilities, of ending in a blank and of ending in its last
    label, so every alignment of a prefix is summed, not only the best one (greedy). A step
    extends prefixes by its `beam` most probable labels at most, and by none whose
    log-probability is below `prune`. With a language model,
    prefixes are ranked by log P_ctc + weight * log P_lm + bonus * length (the bonus offsets
    the LM's preference for short outputs), and the finished prefixes also pay the LM's
    end-of-sequence probability.
    """
    lm_score: dict[tuple[int, ...], float] = {(): 0.0}

    def score(prefix: tuple[int, ...], ctc: float) -> float:
        if lm is None:
            return ctc
        if prefix not in lm_score:
            lm_score[prefix] = lm_score[prefix[:-1]] + lm.logp(prefix[:-1], prefix[-1])
        return ctc + weight * lm_score[prefix] + bonus * len(prefix)

    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}
    for lp in log_probs:
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        top = np.argsort(-lp[1:])[:beam] + 1  # at most `beam` labels a step can extend by
        cands = [int(k) for k in top if lp[k] > prune]
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
        ranked = sorted(nxt.items(), key=lambda kv: -score(kv[0], _logadd(*kv[1])))[:beam]
        beams = {p: (v[0], v[1]) for p, v in ranked}

    def final(kv) -> float:
        end = weight * lm.logp(kv[0], 0) if lm is not None else 0.0
        return score(kv[0], _logadd(*kv[1])) + end

    return list(max(beams.items(), key=final)[0])


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
