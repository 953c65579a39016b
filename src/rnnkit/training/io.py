"""Atomic file writes for run directories; the implementation is rnnkit.atomic (stdlib only),
so data loaders and reports below the training layer use the same code."""

from ..atomic import (
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    fsync_dir,
    read_jsonl,
)

__all__ = [
    "append_jsonl",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_dir",
    "read_jsonl",
]
