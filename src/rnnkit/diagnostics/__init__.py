"""Diagnostics: the unfolded network, gradient flow through time, Jacobian spectra, plots.

    unfold       unfold, Unfolded: every h_t and dL/dh_t of a batch
    gradient_profile  gradient_profile: ||dL_T / dh_{T-1-k}|| per lag of a token model
    spectra      step_jacobians, jacobian_singular_values, spectral_radius, recurrent_blocks,
                 detect_gradient_problems -> GradientFlow, GradientSpikeDetector
    inspection   inspect_layer / inspect_model -> Inspection (+ PNG plots and inspect.json),
                 gradient_norms, probe_loss

Sits beside the import chain: may import cells, layers, models, algorithms and training;
is imported by tasks and cli.
"""

from .gradient_profile import gradient_profile
from .inspection import Inspection, gradient_norms, inspect_layer, inspect_model, probe_loss
from .spectra import (
    GradientFlow,
    GradientSpikeDetector,
    detect_gradient_problems,
    jacobian_singular_values,
    recurrent_blocks,
    spectral_radius,
    step_jacobians,
)
from .unfold import Unfolded, unfold

__all__ = [
    "GradientFlow",
    "GradientSpikeDetector",
    "Inspection",
    "Unfolded",
    "detect_gradient_problems",
    "gradient_norms",
    "gradient_profile",
    "inspect_layer",
    "inspect_model",
    "jacobian_singular_values",
    "probe_loss",
    "recurrent_blocks",
    "spectral_radius",
    "step_jacobians",
    "unfold",
]
