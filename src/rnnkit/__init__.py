"""rnnkit: recurrent neural networks on PyTorch — cells, layers, training through time, tools.

Public API (re-exports only). See README.md for a tour.
"""

from .algorithms import BPTT, RTRL, TBPTT, UORO, GradientAlgorithm, OnlineLearner, SnAp
from .cells import Cell, ElmanCell, GRUCell, JordanCell, LSTMCell, build_cell, load_keras_weights
from .config import (
    CellConfig,
    HeadConfig,
    InputConfig,
    ManyToManyConfig,
    ManyToOneConfig,
    OneToManyConfig,
    OneToOneConfig,
    RNNConfig,
    Seq2SeqConfig,
    TrainConfig,
)
from .diagnostics import Unfolded, inspect_layer, inspect_model, unfold
from .layers import GRU, LSTM, RNN, Recurrent, from_torch
from .models import (
    ManyToMany,
    ManyToOne,
    OneToMany,
    OneToOne,
    Seq2Seq,
    beam_search,
    build_model,
    greedy,
    sample,
)
from .training import FitResult, Run, RunError, Streamer, Trainer, load_run, resume

__version__ = "0.1.0"

__all__ = [
    "BPTT",
    "GRU",
    "RTRL",
    "UORO",
    "LSTM",
    "RNN",
    "TBPTT",
    "Cell",
    "CellConfig",
    "ElmanCell",
    "FitResult",
    "GRUCell",
    "GradientAlgorithm",
    "HeadConfig",
    "InputConfig",
    "JordanCell",
    "LSTMCell",
    "ManyToMany",
    "ManyToManyConfig",
    "ManyToOne",
    "ManyToOneConfig",
    "OneToMany",
    "OneToManyConfig",
    "OneToOne",
    "OneToOneConfig",
    "OnlineLearner",
    "RNNConfig",
    "Recurrent",
    "Run",
    "RunError",
    "Seq2Seq",
    "Seq2SeqConfig",
    "SnAp",
    "Streamer",
    "TrainConfig",
    "Trainer",
    "Unfolded",
    "beam_search",
    "build_cell",
    "build_model",
    "from_torch",
    "greedy",
    "inspect_layer",
    "inspect_model",
    "load_keras_weights",
    "load_run",
    "resume",
    "sample",
    "unfold",
]
