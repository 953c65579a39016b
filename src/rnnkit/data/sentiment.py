"""Sentiment data: the VADER rater-scored sentences, a user's CSV, splits and word ids.

- `load_vader(corpus="movies")`: (text, label) examples from the vaderSentiment 3.3.2 source
  archive (`hutto_ICWSM_2014/<corpus>_GroundTruth.txt`: id, mean rater score -4..+4, text;
  latin-1). Label = sign of the score ("negative"/"positive"); zero scores are dropped.
- `load_csv(path, text_column, label_column)`: a user's labelled sentences.
- `split_examples(examples)`: deterministic train/val/test split by a hash of the text.
- `load_source(spec)`: a VADER corpus name or a CSV file, split: what `--data` names.
- `words(text)`: the lower-cased word tokens both the network and the baseline read.
- `fit_vocab(texts)`: a `Vocab` of words from the training split only (<pad> 0, <unk> 1).

Imports: the standard library, rnnkit.data.text (DataError), rnnkit.data.registry,
rnnkit.data.translation (split_of), rnnkit.data.vocab.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from .registry import data_dir, get_dataset
from .text import DataError
from .translation import split_of
from .vocab import PAD, UNK, Vocab, split

VADER_VERSION = "3.3.2"
CORPORA = {
    "movies": "movieReviewSnippets",
    "tweets": "tweets",
    "amazon": "amazonReviewSnippets",
    "nyt": "nytEditorialSnippets",
}
_INNER = f"vaderSentiment-{VADER_VERSION}/additional_resources/hutto_ICWSM_2014.tar.gz"


@dataclass(frozen=True)
class Example:
    text: str
    label: str


def vader_archive() -> Path:
    """Where the source archive is expected: $RNNKIT_VADER if set, else the data cache.

    The data cache is $RNNKIT_DATA/vader-movies (default ~/.cache/rnnkit/data/vader-movies),
    where `rnnkit datasets install vader-movies` and scripts/install.sh put it.
    """
    env = os.environ.get("RNNKIT_VADER")
    if env:
        return Path(env)
    return data_dir() / "vader-movies" / f"vaderSentiment-{VADER_VERSION}.tar.gz"


def vader_install_hint() -> str:
    return get_dataset("vader-movies").install_hint()


def load_vader(corpus: str = "movies", archive: str | Path | None = None) -> list[Example]:
    """Rater-scored sentences from the VADER archive, labelled by the sign of the score.

    Args:
        corpus: "movies" (10,605 Pang & Lee snippets), "tweets", "amazon" or "nyt".
        archive: the vaderSentiment source .tar.gz (default: `vader_archive()`).

    Raises:
        DataError: unknown corpus, or the archive is missing or unreadable (the message has
            the install command).
    """
    if corpus not in CORPORA:
        raise DataError(f"unknown VADER corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    path = Path(archive) if archive is not None else vader_archive()
    if not path.is_file():
        raise DataError(
            f"the VADER sentiment data is not installed ({path} is missing); install it with: "
            f"{vader_install_hint()}"
        )
    member = f"hutto_ICWSM_2014/{CORPORA[corpus]}_GroundTruth.txt"
    try:
        with tarfile.open(path) as outer:
            inner_bytes = outer.extractfile(_INNER).read()
        with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
            raw = inner.extractfile(member).read()
    except (tarfile.TarError, KeyError, AttributeError, OSError) as err:
        raise DataError(
            f"{path} is not a readable vaderSentiment {VADER_VERSION} source archive ({err}); "
            f"reinstall it with: {vader_install_hint()}"
        ) from None
    return parse_ground_truth(raw.decode("latin-1"))


def parse_ground_truth(text: str) -> list[Example]:
    """Lines `id<TAB>score<TAB>sentence` -> examples labelled by the score's sign; 0 dropped.

    Example:
        >>> parse_ground_truth("1\\t2.3\\tGreat fun.\\n2\\t0\\tA film.\\n3\\t-1.5\\tDull.")
        [Example(text='Great fun.', label='positive'), Example(text='Dull.', label='negative')]
    """
    out = []
    for line in text.splitlines():
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        try:
            score = float(parts[1])
        except ValueError:
            continue
        if score != 0 and parts[2].strip():
            out.append(Example(parts[2].strip(), "positive" if score > 0 else "negative"))
    return out


def load_csv(path: str | Path, text_column: str = "text", label_column: str = "label"):
    """Labelled sentences from a CSV file with a header row (rows without a text or a label
    are skipped: `read_csv_examples` counts them)."""
    return read_csv_examples(path, text_column, label_column)[0]


def read_csv_examples(
    path: str | Path, text_column: str = "text", label_column: str = "label"
) -> tuple[list[Example], int]:
    """(labelled sentences from a CSV file with a header row, rows skipped for an empty text
    or label).

    Raises:
        DataError: missing/unreadable file, a missing column (the message lists the columns
            there are), no usable rows, or fewer than two labels.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory; pass a CSV file") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; save the CSV as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    if not columns:
        raise DataError(f"{path} is empty; expected a CSV with a header row")
    for option, name in (("--text-column", text_column), ("--label-column", label_column)):
        if name not in columns:
            raise DataError(
                f"{path} has no column {name!r} ({option}); its columns are: "
                f"{', '.join(repr(c) for c in columns)}"
            )
    examples, skipped = [], 0
    try:
        for row in reader:
            t, lab = (row.get(text_column) or "").strip(), (row.get(label_column) or "").strip()
            if t and lab:
                examples.append(Example(t, lab))
            else:
                skipped += 1
    except csv.Error as err:
        raise DataError(f"{path} is not valid CSV (line {reader.line_num}: {err})") from None
    if not examples:
        raise DataError(
            f"{path} has no rows with both a {text_column!r} and a {label_column!r} value "
            f"({skipped:,} rows, all with one of them empty)"
        )
    if len({e.label for e in examples}) < 2:
        raise DataError(
            f"{path}: column {label_column!r} holds a single label "
            f"({examples[0].label!r}); a classifier needs at least two"
        )
    return examples, skipped


@dataclass(frozen=True)
class ExampleSplits:
    train: list[Example]
    val: list[Example]
    test: list[Example]
    source: str
    skipped: int = 0  # rows of the file without a text or a label

    def describe(self) -> str:
        return (
            f"{self.source}: {len(self.train):,} train / {len(self.val):,} val / "
            f"{len(self.test):,} test sentences"
        )

    def parts(self) -> tuple[list[Example], list[Example], list[Example]]:
        return self.train, self.val, self.test

    def limited(self, limit: int | None) -> ExampleSplits:
        """The first `limit` examples of each split (tiny runs)."""
        if limit is None:
            return self
        return ExampleSplits(self.train[:limit], self.val[:limit], self.test[:limit], self.source,
                             self.skipped)  # fmt: skip


def _order_key(text: str) -> bytes:
    # files are often sorted by label; a hash order makes any prefix a fair sample
    return hashlib.sha1(b"order:" + text.encode("utf-8")).digest()


def split_examples(
    examples: Iterable[Example], source: str, val_percent: int = 10, test_percent: int = 10
) -> ExampleSplits:
    """Deterministic split by a hash of each sentence: duplicates land in the same split.

    Each split is in a fixed hash order (not file order), so `limited(n)` is a fair sample.
    """
    out: dict[str, list[Example]] = {"train": [], "val": [], "test": []}
    for e in sorted(examples, key=lambda e: _order_key(e.text)):
        out[split_of(e.text, val_percent, test_percent)].append(e)
    if not out["train"] or not out["test"]:
        raise DataError(
            f"{source}: too few sentences to split into train and test "
            f"({sum(len(v) for v in out.values())} in all)"
        )
    return ExampleSplits(out["train"], out["val"], out["test"], source)


def load_source(
    spec: str | None, text_column: str = "text", label_column: str = "label",
    limit: int | None = None,
) -> ExampleSplits:
    """The examples `spec` names (a VADER corpus, default movies, or a CSV file), split
    deterministically; `limit` keeps the first N of each split."""
    if spec is None or (spec in CORPORA and not Path(spec).exists()):
        corpus = spec or "movies"
        source = f"VADER {corpus} (vaderSentiment {VADER_VERSION})"
        splits = split_examples(load_vader(corpus), source)
    else:
        examples, skipped = read_csv_examples(spec, text_column, label_column)
        splits = replace(split_examples(examples, spec), skipped=skipped)
    return splits.limited(limit)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (with ! and ?), the unit both models read (Vocab mode "lower").

    Example:
        >>> words("It's NOT good!")
        ["it's", 'not', 'good', '!']
        >>> words("Très bon café!")
        ['très', 'bon', 'café', '!']
    """
    return split(text, "lower")


def fit_vocab(texts: Iterable[str], min_count: int = 1, max_size: int = 20000) -> Vocab:
    """The classifier's words from the training sentences only: <pad> 0, <unk> 1, then words
    seen at least `min_count` times, most frequent first, `max_size` ids in all."""
    return Vocab.fit(texts, "lower", (PAD, UNK), min_count, max_size)
