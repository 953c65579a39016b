"""Translation data: German-English phrase pairs from the Ding dictionary, number words.

- `parse_dictionary_line(line)`: one line of Debian's trans-de-en (`de | de … :: en | en …`)
  -> aligned (german, english) phrase pairs (see the function for the rules).
- `load_dictionary_pairs()`: every pair in /usr/share/trans/de-en (~392k).
- `phrase_pairs(...)`: the translation task: short pairs whose words are all frequent, as
  token lists, split deterministically by a hash of the German side.
- `number_pairs(...)`: a generated task, English number words -> German number words
  (num2words), split by a hash of the number.
- `fit_vocab(token lists)`: a `Vocab` with <pad>, <unk>, <bos>, <eos>.
- the word-by-word baseline: `build_lexicon(data, splits)`, `word_by_word(lexicon, tokens, data)`.

Imports: the standard library, rnnkit.data.text (DataError) and rnnkit.data.vocab.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .text import DataError
from .vocab import SPECIALS, Vocab

DICTIONARY_PATH = Path("/usr/share/trans/de-en")
DICTIONARY_INSTALL = "apt-get update && apt-get install -y trans-de-en"
NUM2WORDS_INSTALL = "pip install num2words"

# {gender} [domain] (gloss) <variant spelling>; innermost first so nesting comes out too
_ANNOTATION = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]|\([^()]*\)|<[^<>]*>")
_BRACKETS = set("{}[]()<>")
# a word (with inner hyphens/apostrophes) or one punctuation mark
_TOKEN = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Words and punctuation marks: `"Wie geht's?"` -> `["Wie", "geht's", "?"]`."""
    return _TOKEN.findall(text)


def detokenize(tokens: Iterable[str]) -> str:
    """Tokens joined by single spaces (the form BLEU and exact match compare)."""
    return " ".join(tokens)


def _clean(phrase: str) -> str | None:
    """First alternative of a `;` list, annotations stripped; None if nothing clean is left."""
    text = phrase.split(";")[0]
    while True:
        stripped = _ANNOTATION.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    text = " ".join(text.split())
    if not text or _BRACKETS & set(text):
        return None  # unbalanced annotation: the phrase cannot be trusted
    return text


def parse_dictionary_line(line: str) -> list[tuple[str, str]]:
    """Aligned (german, english) phrase pairs from one dictionary line.

    A line is `de_1 | de_2 | … :: en_1 | en_2 | …`; segment k on the left translates segment
    k on the right (headword, plural, example phrases …). Lines whose sides have different
    numbers of segments are skipped, as are comments. Each segment may list synonyms
    separated by `;`: the first is kept. Annotations `{…} […] (…) <…>` are removed.

    Example:
        >>> parse_dictionary_line("Aalsuppe {f} [cook.] | Aalsuppen {pl} :: eel soup | eel soups")
        [('Aalsuppe', 'eel soup'), ('Aalsuppen', 'eel soups')]
    """
    if line.startswith("#") or " :: " not in line:
        return []
    de, en = line.rstrip("\n").split(" :: ", 1)
    de_parts, en_parts = de.split(" | "), en.split(" | ")
    if len(de_parts) != len(en_parts):
        return []
    pairs = []
    for d, e in zip(de_parts, en_parts, strict=True):
        d_clean, e_clean = _clean(d), _clean(e)
        if d_clean and e_clean:
            pairs.append((d_clean, e_clean))
    return pairs


def dictionary_path() -> Path:
    """The dictionary file: $RNNKIT_DE_EN if set, else /usr/share/trans/de-en."""
    return Path(os.environ.get("RNNKIT_DE_EN") or DICTIONARY_PATH)


def load_dictionary_pairs(path: str | Path | None = None) -> list[tuple[str, str]]:
    """Every aligned phrase pair of the Ding dictionary, in file order.

    Raises:
        DataError: the dictionary is not installed (the message has the install command).
    """
    path = Path(path) if path is not None else dictionary_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"the German-English dictionary {path} is not installed; install it with: "
            f"{DICTIONARY_INSTALL}"
        ) from None
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        pairs.extend(parse_dictionary_line(line))
    return pairs


# ---- splits -----------------------------------------------------------------------------

SPLITS = ("train", "val", "test")


def split_of(key: str, val_percent: int = 10, test_percent: int = 10) -> str:
    """The split ("train", "val" or "test") from a stable hash of `key`: same key, same split."""
    bucket = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:4], "big") % 100
    if bucket < test_percent:
        return "test"
    if bucket < test_percent + val_percent:
        return "val"
    return "train"


@dataclass(frozen=True)
class PairSplits:
    """Token-list pairs per split. `describe()` gives one line for reports."""

    train: list[tuple[list[str], list[str]]]
    val: list[tuple[list[str], list[str]]]
    test: list[tuple[list[str], list[str]]]
    source: str

    def describe(self) -> str:
        return (
            f"{self.source}: {len(self.train):,} train / {len(self.val):,} val / "
            f"{len(self.test):,} test pairs"
        )


def _by_split(pairs: Iterable[tuple[list[str], list[str]]], key, source: str) -> PairSplits:
    out: dict[str, list] = {s: [] for s in SPLITS}
    for src, tgt in pairs:
        out[split_of(key(src, tgt))].append((src, tgt))
    return PairSplits(out["train"], out["val"], out["test"], source)


def phrase_pairs(
    min_words: int = 2,
    max_words: int = 5,
    vocab_limit: int = 8000,
    path: str | Path | None = None,
    limit: int | None = None,
) -> PairSplits:
    """The German->English phrase task from the Ding dictionary.

    Keeps pairs with `min_words`..`max_words` tokens on both sides, no `/` alternatives
    ("abbestellen/kündigen"), and only words among the `vocab_limit` most frequent of their
    side (so a model trained in minutes can have seen every word). Duplicate pairs are
    dropped. The split hashes the German phrase, so a source never appears in two splits.
    `limit` keeps the first pairs of each split (tiny runs in tests).
    """
    raw = load_dictionary_pairs(path)
    seen: set[tuple[str, str]] = set()
    cand: list[tuple[list[str], list[str]]] = []
    for de, en in raw:
        if "/" in de or "/" in en or (de, en) in seen:
            continue
        seen.add((de, en))
        src, tgt = tokenize(de), tokenize(en)
        if min_words <= len(src) <= max_words and min_words <= len(tgt) <= max_words:
            cand.append((src, tgt))
    de_counts = Counter(w for s, _ in cand for w in s)
    en_counts = Counter(w for _, t in cand for w in t)
    de_keep = {w for w, _ in _most_common(de_counts, vocab_limit)}
    en_keep = {w for w, _ in _most_common(en_counts, vocab_limit)}
    kept = [(s, t) for s, t in cand if de_keep.issuperset(s) and en_keep.issuperset(t)]
    splits = _by_split(kept, lambda s, t: " ".join(s), "Ding de-en dictionary phrases")
    if limit is not None:
        splits = PairSplits(
            splits.train[:limit], splits.val[:limit], splits.test[:limit], splits.source
        )
    return splits


def _most_common(counts: Counter, k: int) -> list[tuple[str, int]]:
    # ties broken alphabetically: the selection must not depend on dict order
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def number_words(n: int, lang: str) -> str:
    """`n` in words (num2words); DataError naming the install command if it is missing."""
    try:
        from num2words import num2words
    except ImportError:
        raise DataError(
            f"the number-words task needs num2words; install it with: {NUM2WORDS_INSTALL}"
        ) from None
    return num2words(n, lang=lang)


def number_tokens(text: str) -> list[str]:
    """English number words as tokens: words, hyphens and commas are separate tokens."""
    return re.findall(r"[^\W\d_]+|[-,]", text.lower())  # letters of any script, - and ,


def number_pairs(
    low: int = 0, high: int = 9999, source_lang: str = "en", target_lang: str = "de"
) -> PairSplits:
    """English number words (word tokens) -> German number words (characters).

    Every n in [low, high] once; the split hashes n, so test numbers are never seen in
    training: the model must learn how the words compose. German number words are single
    compounds ("dreihundertvierundzwanzig"), hence characters on the target side.

    Example:
        >>> number_pairs(0, 99).train[0]
        (['zero'], ['n', 'u', 'l', 'l'])
    """
    if low < 0 or high < low:
        raise DataError(f"number range must satisfy 0 <= low <= high, got {low}..{high}")
    pairs = []
    for n in range(low, high + 1):
        src = number_tokens(number_words(n, source_lang))
        tgt = list(number_words(n, target_lang))
        pairs.append((src, tgt, n))
    out: dict[str, list] = {s: [] for s in SPLITS}
    for src, tgt, n in pairs:
        out[split_of(f"n{n}")].append((src, tgt))
    return PairSplits(
        out["train"], out["val"], out["test"], f"number words {source_lang}->{target_lang}"
    )


# ---- vocabulary -------------------------------------------------------------------------


def fit_vocab(sequences: Iterable[Sequence[str]]) -> Vocab:
    """A side's vocabulary from its training token lists: <pad> 0, <unk> 1, <bos> 2, <eos> 3,
    then every token, most frequent first (ties alphabetical).

    Example:
        >>> v = fit_vocab([["ein", "Haus"], ["ein", "Boot"]])
        >>> v.encode(["ein", "Auto"]), v.tokens_of(v.encode(["ein", "Haus"]))
        ([4, 1], ['ein', 'Haus'])
    """
    return Vocab.fit(sequences, "word", SPECIALS)


# ---- the word-by-word dictionary baseline ------------------------------------------------

# how target tokens join into a string: words with spaces, characters without
JOIN = {"de-en": " ", "numbers": ""}
# words the number baseline leaves out: German writes no "and", hyphen or comma
_NUMBER_SKIP = {"and", "-", ","}


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
