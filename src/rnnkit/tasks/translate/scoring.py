"""Translation scores (sacrebleu BLEU and chrF, exact match) and the word-by-word baseline."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ...data.translation import PairSplits, load_dictionary_pairs, tokenize

# how target tokens join into a string: words with spaces, characters without
JOIN = {"de-en": " ", "numbers": ""}
# words the number baseline leaves out: German writes no "and", hyphen or comma
_NUMBER_SKIP = {"and", "-", ","}


def translation_metrics(hyps: Sequence[str], refs: Sequence[str], bleu: bool = True) -> dict:
    """sacrebleu corpus BLEU and chrF (default settings, 13a tokenisation), exact match.

    BLEU counts word 4-grams over the corpus: it is 0 for outputs that are single words
    (the numbers data), so `bleu=False` reports None there; chrF still applies.

    Example:
        >>> translation_metrics(["a small house"], ["a small house"])["exact_match"]
        1.0
    """
    from ...deps import require

    if len(hyps) != len(refs) or not refs:
        raise ValueError("translation_metrics: need equal, non-empty lists")
    require("sacrebleu", what="BLEU and chrF")
    import sacrebleu

    # both sides are space-joined tokens, compared alike: no detokenisation warning needed
    score = sacrebleu.corpus_bleu(list(hyps), [list(refs)], force=True) if bleu else None
    chrf = sacrebleu.corpus_chrf(list(hyps), [list(refs)])
    exact = sum(int(h == r) for h, r in zip(hyps, refs, strict=True)) / len(refs)
    return {
        "bleu": None if score is None else score.score,
        "bleu_signature": None if score is None else str(score.format(signature=True)),
        "chrf": chrf.score,
        "exact_match": exact,
        "n": len(refs),
    }


def most_frequent(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """word -> its most frequent translation among (word, translation) pairs (ties: A-Z).

    Example:
        >>> most_frequent([("Haus", "house"), ("Haus", "home"), ("Haus", "house")])
        {'Haus': 'house'}
    """
    counts: dict[str, Counter] = {}
    for w, t in pairs:
        counts.setdefault(w, Counter())[t] += 1
    return {w: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for w, c in counts.items()}


def build_lexicon(data: str, splits: PairSplits) -> dict[str, str]:
    """The baseline's word lexicon.

    de-en: every one-word-to-one-word entry of the whole dictionary (the phrases have at
    least `min_words` words, so no test pair is among them): the dictionary translation of
    each word. numbers: the training pairs whose source is one word ("seven" -> "sieben",
    "forty" -> "vierzig").
    """
    if data == "numbers":
        return most_frequent([(s[0], "".join(t)) for s, t in splits.train if len(s) == 1])
    single = []
    for de, en in load_dictionary_pairs():
        d, e = tokenize(de), tokenize(en)
        if len(d) == 1 and len(e) == 1:
            single.append((d[0], e[0]))
    return most_frequent(single)


def word_by_word(lexicon: dict[str, str], tokens: Sequence[str], data: str) -> str:
    """Translate each word on its own; unknown words are copied (names, numbers)."""
    out = []
    for w in tokens:
        if data == "numbers" and w in _NUMBER_SKIP:
            continue
        t = lexicon.get(w) or lexicon.get(w.lower()) or lexicon.get(w.capitalize()) or w
        out.append(t)
    return JOIN[data].join(out)
