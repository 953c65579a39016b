"""Data: the vocabulary, text and series loaders, data-set registry and installers, synthetic tasks.

Sits beside the import chain: may import config, cells and layers; imported by tasks and cli.
"""

from .registry import DATASETS, Dataset, get_dataset, load_text_source
from .synthetic import (
    ADDING_BASELINE_MSE,
    CopyCurriculum,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)
from .text import DataError, read_text_file, split_blocks
from .vocab import EncodeReport, Vocab, build_tokenizer

__all__ = [
    "ADDING_BASELINE_MSE",
    "DATASETS",
    "CopyCurriculum",
    "adding_problem",
    "copy_memory",
    "copy_memory_baseline",
    "DataError",
    "Dataset",
    "EncodeReport",
    "build_tokenizer",
    "get_dataset",
    "load_text_source",
    "read_text_file",
    "split_blocks",
    "Vocab",
]
