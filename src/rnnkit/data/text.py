"""Text for language models: reading files, tokenizers, and the train/validation split.

- `read_text_file(path)`: a user's UTF-8 text, with one clear `DataError` for every way a
  path can be wrong (missing, a directory, empty, binary, not UTF-8, unreadable).
- `CharTokenizer` / `WordTokenizer`: vocabulary from a text, `encode` / `decode`, JSON
  save/load (`load_tokenizer` reads either kind back).
- `split_blocks(ids, val_fraction, blocks)`: the deterministic train/validation split.

Unknown symbols. The vocabulary is fitted on the whole training text, so training and
validation never meet a symbol it lacks. A *prompt* (or a new evaluation text) may: with
`unknown="drop"` the character tokenizer replaces each unknown character by a known stand-in
when there is one (typographic punctuation by its ASCII twin, "’" -> "'", "—" -> "--"; else
Unicode compatibility decomposition without accents, "é" -> "e", "ﬁ" -> "fi"; else the other
letter case) and drops it otherwise; `unknown="error"` raises instead. An `EncodeReport`
says which characters were replaced or dropped (`rnnkit generate` prints it on stderr).
The word tokenizer maps unknown words to `<unk>`.

Imports: the standard library and torch only.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor


class DataError(ValueError):
    """Bad data supplied by the user. The message is one line: what is wrong, what to do."""


# ---- reading a user's text file ---------------------------------------------------------


def read_text_file(path: str | Path) -> str:
    """The contents of a UTF-8 text file, line endings normalised to "\\n".

    A leading byte-order mark is dropped. Raises `DataError` (one line) when the path is
    missing, a directory, unreadable, empty, binary (has NUL bytes) or not valid UTF-8.

    Example:
        >>> text = read_text_file("my.txt")
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"no such file: {p}")
    if p.is_dir():
        raise DataError(f"{p} is a directory; pass a text file")
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {p}: {err.strerror or err}") from None
    if not raw.strip():
        raise DataError(f"{p} is empty; pass a file with text in it")
    if b"\x00" in raw[: 1 << 20]:
        raise DataError(f"{p} looks binary (it contains NUL bytes); pass a UTF-8 text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{p} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            f"convert it first, e.g. iconv -f latin1 -t utf-8 {p} > {p.stem}.utf8.txt"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---- tokenizers -------------------------------------------------------------------------

# Characters that compatibility decomposition leaves alone but that have an obvious ASCII twin.
_PUNCT_FOLDS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": "--", "\u2212": "-", "\u2026": "...", "\u00a0": " ", "\t": " ",
}  # fmt: skip

UNKNOWN_POLICIES = ("drop", "error")


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


class CharTokenizer:
    """One token per character. Vocabulary: the sorted distinct characters of a text.

    Example:
        >>> tok = CharTokenizer.fit("to be or not to be")
        >>> tok.decode(tok.encode("be not"))
        'be not'
    """

    kind = "char"
    unit = "char"

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if not vocab:
            raise DataError("the vocabulary is empty")
        if any(not isinstance(c, str) or len(c) != 1 for c in vocab) or len(set(vocab)) != len(
            vocab
        ):
            raise DataError("a character vocabulary must be distinct single characters")
        self.vocab = vocab
        self.index = {c: i for i, c in enumerate(vocab)}

    @classmethod
    def fit(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def fold(self, ch: str) -> str | None:
        """A known string standing in for an unknown character, or None."""
        candidates = [_PUNCT_FOLDS.get(ch, "")]
        nfkd = unicodedata.normalize("NFKD", ch)
        candidates.append("".join(c for c in nfkd if not unicodedata.combining(c)))
        for cand in (candidates[0], candidates[1], candidates[1].lower(), candidates[1].upper()):
            if cand and all(c in self.index for c in cand):
                return cand
        return None

    def encode(self, text: str, unknown: str = "error", report: EncodeReport | None = None):
        """Text -> list of ids. `unknown`: "error" raises DataError, "drop" folds or drops."""
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        index = self.index
        try:
            return [index[c] for c in text]
        except KeyError:
            pass
        report = report if report is not None else EncodeReport()
        ids = []
        for c in text:
            i = index.get(c)
            if i is not None:
                ids.append(i)
                continue
            if unknown == "error":
                raise DataError(
                    f"character {c!r} (U+{ord(c):04X}) is not in the model's vocabulary of "
                    f"{self.vocab_size} characters"
                )
            folded = self.fold(c)
            if folded is None:
                report.dropped[c] += 1
            else:
                report.folded[c] = folded
                ids.extend(index[f] for f in folded)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.vocab[i] for i in ids)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "vocab": self.vocab}


# Words (letters/digits with inner apostrophes or hyphens), single punctuation marks, newlines.
_WORD_RE = re.compile(r"\n|\w+(?:['\-]\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = set(".,;:!?)]}'\"") | {"\n"}
_NO_SPACE_AFTER = set("([{") | {"\n"}
UNK = "<unk>"


class WordTokenizer:
    """One token per word, punctuation mark or newline; the `max_vocab` most frequent words.

    Other words become `<unk>`. Decoding joins tokens with single spaces (none before closing
    punctuation or after an opening bracket), so spacing is normalised, not restored.

    Example:
        >>> tok = WordTokenizer.fit("To be, or not to be.")
        >>> tok.decode(tok.encode("not to be, or"))
        'not to be, or'
    """

    kind = "word"
    unit = "word"

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if not vocab or vocab[0] != UNK or len(set(vocab)) != len(vocab):
            raise DataError(f"a word vocabulary must be distinct words starting with {UNK}")
        self.vocab = vocab
        self.index = {w: i for i, w in enumerate(vocab)}

    @staticmethod
    def split(text: str) -> list[str]:
        return _WORD_RE.findall(text)

    @classmethod
    def fit(cls, text: str, max_vocab: int = 10000) -> WordTokenizer:
        counts = Counter(cls.split(text))
        counts.pop(UNK, None)
        # most frequent first; ties broken alphabetically so the vocabulary is deterministic
        words = sorted(counts, key=lambda w: (-counts[w], w))[: max(1, max_vocab - 1)]
        return cls([UNK, *words])

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, unknown: str = "drop", report: EncodeReport | None = None):
        """Text -> ids; unknown words -> `<unk>` (`unknown="error"` raises instead)."""
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        ids = []
        for w in self.split(text):
            i = self.index.get(w)
            if i is None:
                if unknown == "error":
                    raise DataError(f"word {w!r} is not in the model's vocabulary")
                if report is not None:
                    report.dropped[w] += 1
                i = 0
            ids.append(i)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        out: list[str] = []
        prev = "\n"
        for i in ids:
            w = self.vocab[i]
            if out and w not in _NO_SPACE_BEFORE and prev not in _NO_SPACE_AFTER:
                out.append(" ")
            out.append(w)
            prev = w
        return "".join(out)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "vocab": self.vocab}


Tokenizer = CharTokenizer | WordTokenizer
TOKENIZERS = {"char": CharTokenizer, "word": WordTokenizer}


def build_tokenizer(kind: str, text: str) -> Tokenizer:
    """Fit a tokenizer of `kind` ("char" or "word") on `text`."""
    if kind not in TOKENIZERS:
        raise DataError(f"unknown tokenizer {kind!r}; choose one of {sorted(TOKENIZERS)}")
    return TOKENIZERS[kind].fit(text)


def save_tokenizer(tokenizer: Tokenizer, path: str | Path) -> None:
    """Write the tokenizer as JSON (atomically: temp file, fsync, rename)."""
    from ..atomic import atomic_write_text

    atomic_write_text(path, json.dumps(tokenizer.to_dict(), ensure_ascii=False, indent=0))


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Read a tokenizer written by `save_tokenizer`; DataError if it is missing or malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cls = TOKENIZERS[data["kind"]]
        return cls(data["vocab"])
    except FileNotFoundError:
        raise DataError(f"no tokenizer file {path}") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        if isinstance(err, DataError):
            raise DataError(f"{path}: {err}") from None
        raise DataError(f"{path} is not a valid tokenizer file ({type(err).__name__})") from None


# ---- the train/validation split ---------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """A token stream cut into training and validation parts.

    Attributes:
        train, val: 1-D int64 tensors of token ids.
        blocks: how many contiguous blocks the stream was cut into.
        val_fraction: the share at the end of each block that went to validation.
    """

    train: Tensor
    val: Tensor
    blocks: int
    val_fraction: float

    def describe(self) -> str:
        return (
            f"{self.blocks} contiguous block(s); the last {self.val_fraction:.0%} of each is "
            f"validation ({len(self.train):,} train / {len(self.val):,} validation tokens)"
        )


def split_blocks(
    ids: Sequence[int] | Tensor, val_fraction: float = 0.1, blocks: int = 10, min_block: int = 0
) -> Split:
    """Deterministic split by contiguous blocks, with no token in both parts.

    The stream is cut into `blocks` equal contiguous blocks (fewer when a block would be shorter
    than `min_block` tokens); the last `val_fraction` of every block is validation. Spreading
    validation over the whole text keeps it representative of a corpus of many works, and
    since each part is a set of whole spans, no training window contains validation text.

    Example:
        >>> s = split_blocks(list(range(100)), 0.1, blocks=2)
        >>> s.val.tolist()
        [45, 46, 47, 48, 49, 95, 96, 97, 98, 99]
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"the validation fraction must be in (0, 1), got {val_fraction}")
    ids = torch.as_tensor(ids, dtype=torch.int64)
    n = len(ids)
    if min_block > 0:
        blocks = min(blocks, max(1, n // min_block))
    blocks = max(1, min(blocks, n // 2 if n >= 2 else 1))
    bounds = [round(k * n / blocks) for k in range(blocks + 1)]
    train, val = [], []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        cut = hi - max(1, round((hi - lo) * val_fraction))
        train.append(ids[lo:cut])
        val.append(ids[cut:hi])
    return Split(torch.cat(train), torch.cat(val), blocks, val_fraction)
