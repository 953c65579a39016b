"""Gradient algorithms: how a batch becomes gradients and parameter updates.

    base    the GradientAlgorithm protocol (read it before adding an algorithm), registry
    bptt    BPTT(): full backpropagation through time
    tbptt   TBPTT(k1, k2): truncated BPTT with the state carried across chunks and batches
    rtrl    RTRL(core): exact real-time recurrent learning; RecurrentStep (step Jacobians)
    uoro    UORO(core): unbiased rank-one RTRL (Tallec & Ollivier 2017)
    snap    SnAp(core, level): sparse n-step approximation of RTRL (Menick et al. 2021)
    online  OnlineLearner (one (x_t, y_t) at a time), TruncatedBPTT, Online (Trainer
            adapter, registered as "online"), make_algorithm

Imports: rnnkit.models (the loss contract) and torch; imported by rnnkit.training.
"""

from __future__ import annotations

from .base import (
    ALGORITHMS,
    AlgorithmResult,
    GradientAlgorithm,
    build_algorithm,
    register_algorithm,
)
from .bptt import BPTT
from .online import Online, OnlineAlgorithm, OnlineLearner, TruncatedBPTT, make_algorithm
from .rtrl import RTRL, RecurrentStep
from .snap import SnAp
from .tbptt import TBPTT
from .uoro import UORO

__all__ = [
    "ALGORITHMS",
    "BPTT",
    "RTRL",
    "TBPTT",
    "UORO",
    "Online",
    "OnlineAlgorithm",
    "OnlineLearner",
    "RecurrentStep",
    "SnAp",
    "TruncatedBPTT",
    "make_algorithm",
    "AlgorithmResult",
    "GradientAlgorithm",
    "build_algorithm",
    "register_algorithm",
]
