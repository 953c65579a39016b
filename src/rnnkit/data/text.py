"""Text for language models: reading files and the train/validation split; `DataError`.

- `DataError`: bad data supplied by the user, for every loader in rnnkit.data.
- `read_text_file(path)`: a user's UTF-8 text, with one clear `DataError` for every way a
  path can be wrong (missing, a directory, empty, binary, not UTF-8, unreadable).
- `split_blocks(ids, val_fraction, blocks)`: the deterministic train/validation split.

The language model's vocabulary (characters or words) is a `rnnkit.data.vocab.Vocab`, built
by `rnnkit.data.vocab.build_tokenizer`.

Imports: the standard library and torch only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
