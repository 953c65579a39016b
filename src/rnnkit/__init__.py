"""rnnkit: recurrent neural networks on PyTorch — cells, layers, training through time, tools.

Public API (re-exports only). See README.md for a tour.

The names below are imported on first use (PEP 562), so `import rnnkit` and the stdlib-only
modules (`rnnkit.config`, `rnnkit.deps`) do not import torch: `rnnkit --help` and shell
completion answer without paying for it. `from rnnkit import LSTM` works as usual.
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib import metadata

try:  # one version, pyproject's, through the installed metadata
    __version__ = metadata.version("rnnkit")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

# public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(
        ("BPTT", "RTRL", "TBPTT", "UORO", "GradientAlgorithm", "OnlineLearner", "SnAp"),
        "algorithms",
    ),
    **dict.fromkeys(
        (
            "Cell",
            "ElmanCell",
            "GRUCell",
            "JordanCell",
            "LRUCell",
            "LSTMCell",
            "MinGRUCell",
            "MinLSTMCell",
            "build_cell",
        ),
        "cells",
    ),
    "load_keras_weights": "cells",
    **dict.fromkeys(
        (
            "CellConfig",
            "HeadConfig",
            "InputConfig",
            "ManyToManyConfig",
            "ManyToOneConfig",
            "OneToManyConfig",
            "OneToOneConfig",
            "RNNConfig",
            "Seq2SeqConfig",
            "TrainConfig",
        ),
        "config",
    ),
    **dict.fromkeys(("Unfolded", "inspect_layer", "inspect_model", "unfold"), "diagnostics"),
    **dict.fromkeys(("GRU", "LSTM", "RNN", "Recurrent", "from_torch"), "layers"),
    **dict.fromkeys(
        (
            "ManyToMany",
            "ManyToOne",
            "OneToMany",
            "OneToOne",
            "Seq2Seq",
            "beam_search",
            "build_model",
            "greedy",
            "sample",
        ),
        "models",
    ),
    **dict.fromkeys(
        ("FitResult", "Run", "RunError", "Streamer", "Trainer", "load_run", "resume"), "training"
    ),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Import a public name's submodule on first use; `rnnkit.<subpackage>` works as well."""
    submodule = f"{__name__}.{name}"
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    elif name.isidentifier() and not name.startswith("_") and importlib.util.find_spec(submodule):
        # `import rnnkit; rnnkit.layers.Recurrent` worked when everything was imported eagerly
        value = importlib.import_module(submodule)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
