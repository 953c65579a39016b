"""One vocabulary for every text task: tokens <-> ids, how a text splits, JSON round trip.

`Vocab(tokens, mode, specials)`: id i is `tokens[i]`; the reserved `specials` come first, in
the fixed order <pad>, <unk>, <bos>, <eos> (each task keeps the ones it needs, so a task's ids
are the same in every run). `mode` says how `encode` splits a text:

| mode    | a token is                                                   | used by             |
| ------- | ------------------------------------------------------------ | ------------------- |
| "char"  | one character                                                | text (default)      |
| "word"  | a word (inner ' or -), one punctuation mark, or a newline;   | text, translate     |
|         | case kept                                                    |                     |
| "lower" | a lower-cased word (one inner ', as in it's), ! or ?; other  | sentiment           |
|         | punctuation is left out                                      |                     |

Words are Unicode words: letters, digits and combining marks of any script ("très bon café"
-> très, bon, café; "हिन्दी" stays one word). `encode` also takes a text already split into
tokens (translation splits its own). `fit` keeps the most frequent tokens; the text model's
recipe is `build_tokenizer`.

Unknown symbols. A vocabulary fitted on the training text never misses a symbol of it; a
prompt or a new text may. With `unknown="drop"` (the default) a "char" vocabulary replaces
an unknown character by a known stand-in when there is one (typographic punctuation by its
ASCII twin, "’" -> "'", "—" -> "--"; else Unicode compatibility decomposition without
accents, "é" -> "e", "ﬁ" -> "fi"; else the other letter case); any other unknown token is
<unk> when the vocabulary has it and is dropped otherwise. `unknown="error"` raises instead.
An `EncodeReport` says what was replaced or dropped (`rnnkit generate` prints it on stderr).

Imports: the standard library and rnnkit.data.text (DataError).
"""

from __future__ import annotations

import functools
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .text import DataError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
MODES = ("char", "word", "lower")
UNKNOWN_POLICIES = ("drop", "error")


@functools.cache
def _marks() -> str:
    """A regex class body of every combining mark (Unicode category M).

    Python's \\w leaves them out, which would cut "हिन्दी" at its vowel signs and a decomposed
    "café" before its accent. Built on first use (~0.1 s), not at import.
    """
    ranges, start, prev = [], None, None
    for cp in range(sys.maxunicode + 1):
        if unicodedata.category(chr(cp))[0] == "M":
            if start is None:
                start = cp
            prev = cp
        elif start is not None:
            ranges.append(f"\\U{start:08x}-\\U{prev:08x}")
            start = None
    return "".join(ranges)


@functools.cache
def _splitter(mode: str) -> re.Pattern:
    word = rf"[\w{_marks()}]"  # a word character, as \w means it, plus combining marks
    if mode == "word":
        return re.compile(rf"\n|{word}+(?:['\-]{word}+)*|[^\w\s]")
    # "lower": [a-z0-9]+(?:'[a-z]+)?|[!?] of ASCII text, for every script ([^\W_] is \w but _)
    alnum, alpha = rf"(?:[^\W_]|[{_marks()}])", rf"(?:[^\W\d_]|[{_marks()}])"
    return re.compile(rf"{alnum}+(?:'{alpha}+)?|[!?]")


def split(text: str, mode: str) -> list[str]:
    """`text` cut into the tokens of `mode` (see the module docstring).

    Example:
        >>> split("C'est très bon, non ?", "word")
        ["C'est", 'très', 'bon', ',', 'non', '?']
        >>> split("It's NOT good!", "lower")
        ["it's", 'not', 'good', '!']
    """
    if mode == "char":
        return list(text)
    if mode == "lower":
        text = text.lower()
    elif mode != "word":
        raise DataError(f"unknown tokenising mode {mode!r}; choose one of {', '.join(MODES)}")
    return _splitter(mode).findall(text)


# Characters that compatibility decomposition leaves alone but that have an obvious ASCII twin.
_PUNCT_FOLDS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": "--", "\u2212": "-", "\u2026": "...", "\u00a0": " ", "\t": " ",
}  # fmt: skip
# decoding words: no space before closing punctuation or after an opening bracket
_NO_SPACE_BEFORE = set(".,;:!?)]}'\"") | {"\n"}
_NO_SPACE_AFTER = set("([{") | {"\n"}


@dataclass
class EncodeReport:
    """What `encode` did with symbols outside the vocabulary."""

    folded: dict[str, str] = field(default_factory=dict)  # unknown char -> the known text used
    dropped: Counter = field(default_factory=Counter)  # unknown char (or word) -> count

    def message(self) -> str | None:
        """A one-line note for the user, or None when every symbol was known."""
        parts = []
        if self.folded:
            parts.append(
                "replaced " + ", ".join(f"{k!r}->{v!r}" for k, v in sorted(self.folded.items()))
            )
        if self.dropped:
            parts.append(
                "dropped "
                + ", ".join(f"{k!r}" + (f" x{n}" if n > 1 else "") for k, n in self.dropped.items())
            )
        return "; ".join(parts) if parts else None


class Vocab:
    """Tokens <-> ids, with reserved specials first and a mode that says how a text splits.

    Attributes:
        tokens: id -> token (V entries; the first `len(specials)` are the specials).
        index: token -> id.
        mode: "char", "word" or "lower" (module docstring).
        specials: the reserved tokens this vocabulary has, in the order of `SPECIALS`.
        pad, unk, bos, eos: the id of that special, or None when the vocabulary lacks it.

    Example:
        >>> v = Vocab.fit(["ein Haus", "ein Boot"], "word", specials=(PAD, UNK, BOS, EOS))
        >>> v.encode("ein Auto"), v.decode(v.encode("ein Haus"))
        ([4, 1], 'ein Haus')
    """

    def __init__(self, tokens: Sequence[str], mode: str = "word", specials: Sequence[str] = ()):
        tokens, specials = list(tokens), tuple(specials)
        if mode not in MODES:
            raise DataError(f"unknown tokenising mode {mode!r}; choose one of {', '.join(MODES)}")
        if specials != tuple(s for s in SPECIALS if s in specials):
            raise DataError(f"specials must be distinct and in the order {', '.join(SPECIALS)}")
        if not tokens:
            raise DataError("the vocabulary is empty")
        rest = tokens[len(specials) :]
        if tuple(tokens[: len(specials)]) != specials or set(rest) & set(SPECIALS):
            raise DataError(f"a vocabulary must start with its specials {specials} and only them")
        if len(set(tokens)) != len(tokens):
            raise DataError("a vocabulary must be distinct tokens")
        if mode == "char" and any(not isinstance(c, str) or len(c) != 1 for c in rest):
            raise DataError("a character vocabulary must be distinct single characters")
        self.tokens, self.mode, self.specials = tokens, mode, specials
        self.index = {t: i for i, t in enumerate(tokens)}
        self.pad, self.unk, self.bos, self.eos = (self.index.get(s) for s in SPECIALS)

    @classmethod
    def fit(
        cls,
        texts: Iterable[str | Sequence[str]],
        mode: str = "word",
        specials: Sequence[str] = (),
        min_count: int = 1,
        max_size: int | None = None,
    ) -> Vocab:
        """The specials, then the tokens seen at least `min_count` times, most frequent first
        (ties alphabetical, so a vocabulary never depends on dict order); at most `max_size`
        in all. Each text is a string (split by `mode`) or a list of tokens.
        """
        counts = Counter(t for text in texts for t in cls._tokens_of_text(text, mode))
        for s in SPECIALS:
            counts.pop(s, None)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [t for t, c in ranked if c >= min_count]
        if max_size is not None:
            kept = kept[: max(0, max_size - len(specials))]
        return cls([*specials, *kept], mode, specials)

    @staticmethod
    def _tokens_of_text(text: str | Sequence[str], mode: str) -> Sequence[str]:
        return split(text, mode) if isinstance(text, str) else text

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    @property
    def unit(self) -> str:
        """What one token counts as in reports (nats per char / per word)."""
        return "char" if self.mode == "char" else "word"

    def fold(self, ch: str) -> str | None:
        """A known string standing in for an unknown character, or None."""
        candidates = [_PUNCT_FOLDS.get(ch, "")]
        nfkd = unicodedata.normalize("NFKD", ch)
        candidates.append("".join(c for c in nfkd if not unicodedata.combining(c)))
        for cand in (candidates[0], candidates[1], candidates[1].lower(), candidates[1].upper()):
            if cand and all(c in self.index for c in cand):
                return cand
        return None

    def encode(
        self,
        text: str | Sequence[str],
        unknown: str = "drop",
        report: EncodeReport | None = None,
    ) -> list[int]:
        """A text (split by `mode`) or a list of tokens -> ids.

        Args:
            unknown: "drop" folds, maps to <unk> or drops an unknown token (module docstring);
                "error" raises DataError.
            report: collects what was folded or dropped (an unknown word mapped to <unk>
                counts as dropped).
        """
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        tokens, index = self._tokens_of_text(text, self.mode), self.index
        try:
            return [index[t] for t in tokens]
        except KeyError:
            pass
        report = report if report is not None else EncodeReport()
        ids = []
        for t in tokens:
            i = index.get(t)
            if i is not None:
                ids.append(i)
                continue
            if unknown == "error":
                if self.mode == "char":
                    raise DataError(
                        f"character {t!r} (U+{ord(t):04X}) is not in the model's vocabulary of "
                        f"{len(self)} characters"
                    )
                raise DataError(f"word {t!r} is not in the model's vocabulary")
            folded = self.fold(t) if self.mode == "char" else None
            if folded is not None:
                report.folded[t] = folded
                ids.extend(index[f] for f in folded)
                continue
            report.dropped[t] += 1
            if self.unk is not None:
                ids.append(self.unk)
        return ids

    def tokens_of(self, ids: Iterable[int], strip: bool = True) -> list[str]:
        """Ids -> tokens; with `strip`, stops at <eos> and leaves out <pad> and <bos>."""
        out = []
        for i in ids:
            i = int(i)
            if strip and i == self.eos:
                break
            if strip and i in (self.pad, self.bos):
                continue
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else UNK)
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text. Characters are joined as they are; words with single spaces (none
        before closing punctuation or after an opening bracket), so spacing is normalised."""
        tokens = self.tokens_of(ids)
        if self.mode == "char":
            return "".join(tokens)
        out: list[str] = []
        prev = "\n"
        for w in tokens:
            if out and w not in _NO_SPACE_BEFORE and prev not in _NO_SPACE_AFTER:
                out.append(" ")
            out.append(w)
            prev = w
        return "".join(out)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "specials": list(self.specials), "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        """A vocabulary from `to_dict`, or from one of the layouts rnnkit 0.1.0 wrote (same ids):

        - text's tokenizer.json: {"kind": "char" | "word", "vocab": [...]}; words start <unk>;
        - sentiment's vocab.json "words": {"tokens": ["<pad>", "<unk>", ...]} (mode "lower");
        - translate's vocab.json "source"/"target": {"tokens": ["<pad>", "<unk>", "<bos>",
          "<eos>", ...]}.
        """
        try:
            if "mode" in data:
                return cls(data["tokens"], data["mode"], data["specials"])
            if "kind" in data:
                kind = data["kind"]
                return cls(data["vocab"], kind, (UNK,) if kind == "word" else ())
            tokens = data["tokens"]
            if tokens[:4] == list(SPECIALS):
                return cls(tokens, "word", SPECIALS)
            return cls(tokens, "lower", (PAD, UNK))
        except (KeyError, TypeError, AttributeError) as err:
            raise DataError(f"not a vocabulary ({type(err).__name__}: {err})") from None

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """A vocabulary from a JSON file holding `to_dict()` (a text run's tokenizer.json);
        DataError if the file is missing or malformed."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise DataError(f"no vocabulary file {path}") from None
        except DataError as err:
            raise DataError(f"{path}: {err}") from None
        except (OSError, ValueError) as err:
            kind = type(err).__name__
            raise DataError(f"{path} is not a valid vocabulary file ({kind})") from None


TOKENIZERS = ("char", "word")


def build_tokenizer(kind: str, text: str) -> Vocab:
    """The text model's vocabulary of `text`.

    "char": every distinct character, in code-point order, no specials. "word": <unk> and the
    9,999 most frequent words (mode "word").
    """
    if kind == "char":
        return Vocab(sorted(set(text)), "char")
    if kind == "word":
        return Vocab.fit([text], "word", (UNK,), max_size=10000)
    raise DataError(f"unknown tokenizer {kind!r}; choose one of {list(TOKENIZERS)}")
