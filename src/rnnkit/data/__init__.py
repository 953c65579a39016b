"""Data: tokenisers, text and series loaders, data-set registry and installers, synthetic tasks.

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
from .text import (
    CharTokenizer,
    DataError,
    WordTokenizer,
    build_tokenizer,
    load_tokenizer,
    read_text_file,
    save_tokenizer,
    split_blocks,
)

__all__ = [
    "ADDING_BASELINE_MSE",
    "DATASETS",
    "CopyCurriculum",
    "adding_problem",
    "copy_memory",
    "copy_memory_baseline",
    "CharTokenizer",
    "DataError",
    "Dataset",
    "WordTokenizer",
    "build_tokenizer",
    "get_dataset",
    "load_text_source",
    "load_tokenizer",
    "read_text_file",
    "save_tokenizer",
    "split_blocks",
]
