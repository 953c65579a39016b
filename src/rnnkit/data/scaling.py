"""Scaling real-valued data: `StandardScaler`, fitted on the training part only.

The scaler is saved as JSON in a run directory, so a reloaded model reads its inputs and
writes its outputs in the data's units.

Imports: numpy, the standard library, rnnkit.data.text (DataError).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .text import DataError


@dataclasses.dataclass
class StandardScaler:
    """Per-channel (x - mean) / std, fitted on training data only; JSON round trip.

    Example:
        >>> sc = StandardScaler.fit(train_values)       # (N,) or (N, D)
        >>> z = sc.transform(values); back = sc.inverse(z)
        >>> write_run_json(run_dir, "scaler", sc.to_dict())
    """

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, values: np.ndarray) -> StandardScaler:
        v = np.asarray(values, dtype=np.float64)
        v = v.reshape(-1, 1) if v.ndim == 1 else v.reshape(-1, v.shape[-1])
        if not len(v):
            raise DataError("cannot fit a scaler on no data")
        mean = np.nanmean(v, axis=0)
        std = np.nanstd(v, axis=0)
        std = np.where(std > 1e-12, std, 1.0)  # a constant channel is only centred
        return cls([float(m) for m in mean], [float(s) for s in std])

    def transform(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        if v.ndim == 1 and len(mean) == 1:
            return (v - mean[0]) / std[0]
        return (v - mean) / std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        if len(mean) == 1:
            return v * std[0] + mean[0]
        return v * std + mean

    def inverse_scale(self, values: np.ndarray) -> np.ndarray:
        """Back to data units for spreads (standard deviations): no shift."""
        return np.asarray(values, dtype=np.float64) * np.asarray(self.std)[0]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "standard", "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StandardScaler:
        try:
            if data.get("kind") != "standard":
                raise ValueError(f"unknown scaler kind {data.get('kind')!r}")
            mean = [float(m) for m in data["mean"]]
            std = [float(s) for s in data["std"]]
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise DataError(f"scaler.json is not a valid scaler ({err})") from None
        if len(mean) != len(std) or not mean or min(std) <= 0:
            raise DataError("scaler.json is not a valid scaler (mean/std mismatch)")
        return cls(mean, std)
