"""Gradient algorithms: how a batch becomes gradients and parameter updates.

    base    the GradientAlgorithm protocol (read it before adding an algorithm), registry
    bptt    BPTT(): full backpropagation through time
    tbptt   TBPTT(k1, k2): truncated BPTT with the state carried across chunks and batches

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
from .tbptt import TBPTT

__all__ = [
    "ALGORITHMS",
    "BPTT",
    "TBPTT",
    "AlgorithmResult",
    "GradientAlgorithm",
    "build_algorithm",
    "register_algorithm",
]
