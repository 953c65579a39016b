"""Diagnostics: the unfolded network, gradient flow through time, Jacobian spectra, plots.

Sits beside the import chain: may import cells and layers, is imported by tasks and cli.
"""

from .unfold import Unfolded, unfold

__all__ = ["Unfolded", "unfold"]
