"""The hybrid's classical part: the baseline the network corrects (after ES-RNN, Smyl 2020, the
M4 winner, where exponential smoothing normalises each series and an RNN forecasts what it
leaves).

    candidates (AR(p), AutoARIMA, AutoETS: the fitted models among the baselines, the naive
    ones hold no model of the series to correct; and the mean and the median of their
    forecasts, `COMBINE`) scored by time-series cross-validation on
    the training part: fold k (k = 0..FOLDS-1) fits on the part before the k-th block of
    n_val points counted back from the end of the training part (fold 0: the validation tail)
    and forecasts every origin of that block; fold 0 searches the state-space models'
    specification, the earlier folds refit its parameters (one fit, not a search: on hourly
    series the search takes minutes) -> the one with the lowest MASE averaged over the
    lead times and the folds -> the same method refitted on the whole training part -> its
    forecasts c_o(1..H) from every origin o, and its one-step errors e[t] = y[t] - c_{t-1}(1)

With --hybrid-per-lead, a lead time where another candidate beats the best one on every fold
takes that candidate (the per-lead choice, scored on the same folds; off by default: on
seattle-temps it won lead 1 but lost over the lead times, benchmarks/README.md).

One validation tail could not separate the candidates (nile: 12 points; seattle-temps: one
season, where the ranking of AutoETS and AutoARIMA flips in the next); several origins can.
Where no single model stays best, a combination hedges between them.

A `Classical` is JSON (`spec`): a run stores it in classical.json, so `forecast RUN` and
`--data new.csv` recompute its forecasts on any series (the state-space models are refiltered
with their fitted parameters, as the baselines forecast their test origins).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...models import classical as cm
from ...models.forecaster import truth_matrix
from ..metrics import mase_scale, metrics, origins_for


@dataclass(frozen=True)
class Classical:
    """A fitted classical forecaster. spec: {"kind": ar | sarimax | ets | combination |
    per_lead, and what that kind needs (AR parameters; state-space settings and parameters; a
    combination's "how" (mean | median) and "parts", each {"name", "spec"} of a Classical; a
    per-lead choice's "parts" and "leads", lead h + 1 forecast by parts[leads[h]])}."""

    name: str
    spec: dict[str, Any]

    def forecasts(self, values: np.ndarray, origins: np.ndarray, H: int) -> np.ndarray:
        """Mean forecasts c_o(1..H) from each origin o, using values[:o + 1] -> (M, H)."""
        values = np.asarray(values, dtype=np.float64)
        if self.spec["kind"] == "combination":
            parts = [Classical(**part).forecasts(values, origins, H) for part in self.spec["parts"]]
            return COMBINE[self.spec["how"]](np.stack(parts), axis=0)
        if self.spec["kind"] == "per_lead":  # lead h from part leads[h] (past them: the last)
            leads = self.spec["leads"][:H] + self.spec["leads"][-1:] * max(0, H - len(
                self.spec["leads"]))  # fmt: skip
            out = np.empty((len(origins), H))
            for i in sorted(set(leads)):
                cols = [h for h in range(H) if leads[h] == i]
                pred = Classical(**self.spec["parts"][i]).forecasts(values, origins, cols[-1] + 1)
                out[:, cols] = pred[:, cols]
            return out
        if self.spec["kind"] == "ar":
            return cm.ar_forecast(np.asarray(self.spec["params"]), values, origins, H)
        return cm.state_space_forecasts(_results(self.spec, values[: int(origins[-1]) + 1]),
                                        values, origins, H)  # fmt: skip

    def errors(self, values: np.ndarray) -> np.ndarray:
        """One-step errors e[t] = y[t] - c_{t-1}(1) for every t (e[0] = 0) -> (N,)."""
        e = np.zeros(len(values))
        if len(values) > 1:
            e[1:] = values[1:] - self.forecasts(values, np.arange(len(values) - 1), 1)[:, 0]
        return e


def _model(spec: dict[str, Any], y: np.ndarray):
    """The (unfitted) state-space model of `spec` on y."""
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    if spec["kind"] == "sarimax":
        return SARIMAX(y, order=tuple(spec["order"]), seasonal_order=tuple(spec["seasonal"]),
                       trend=spec["trend"], concentrate_scale=True)  # fmt: skip
    return ExponentialSmoothing(y, trend=spec["trend"], damped_trend=spec["damped"],
                                seasonal=spec["seasonal"])  # fmt: skip


def _results(spec: dict[str, Any], y: np.ndarray):
    """The state-space model of `spec` on y, filtered with the fitted parameters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _model(spec, y).filter(np.asarray(spec["params"]))


def refit(c: Classical, train: np.ndarray) -> Classical:
    """c's specification (AutoARIMA's orders, AutoETS's form) with its parameters fitted on
    train (its last FIT_POINTS points, as the search): one fit where the search made up to
    eight; ValueError when it fails."""
    y = np.asarray(train[-cm.FIT_POINTS :], dtype=np.float64)
    with warnings.catch_warnings(), cm.one_blas_thread():
        warnings.simplefilter("ignore")
        res = _model(c.spec, y).fit(disp=False, maxiter=50 if c.spec["kind"] == "sarimax" else 100)
    if not np.all(np.isfinite(res.params)):
        raise ValueError(f"{c.name}: the refit failed")
    return _state_space(res, c.name)


def _state_space(res, name: str) -> Classical:
    m = res.model
    if hasattr(m, "damped_trend"):  # ExponentialSmoothing
        spec = {"kind": "ets", "trend": bool(m.trend), "damped": bool(m.damped_trend),
                "seasonal": int(m.seasonal_periods) if m.seasonal else None}  # fmt: skip
    else:
        spec = {"kind": "sarimax", "order": list(m.order), "seasonal": list(m.seasonal_order),
                "trend": m.trend}  # fmt: skip
    return Classical(name, {**spec, "params": [float(p) for p in res.params]})


def fitters(period: int | None, auto: bool) -> dict[str, Callable[[np.ndarray], Classical]]:
    """The candidate methods, each train (N,) -> a fitted Classical; the slow state-space ones
    only with `auto` (as the baselines)."""
    def ar(train: np.ndarray) -> Classical:
        params, p = cm.fit_ar(train, period=period)
        return Classical(f"AR({p})", {"kind": "ar", "params": [float(v) for v in params]})

    out: dict[str, Callable[[np.ndarray], Classical]] = {"AR": ar}
    if auto:
        out["AutoARIMA"] = lambda t: _state_space(*cm.auto_arima(t, period))
        out["AutoETS"] = lambda t: _state_space(*cm.auto_ets(t, period))
    return out


FOLDS = 3  # rolling origins of the cross-validation (each costs one fit per candidate)


def fold_starts(n_fit: int, n_train: int) -> list[int]:
    """The fits' ends, fold 0 first: n_fit, n_fit - n_val, ... (n_val = n_train - n_fit), while
    at least half of the training part is left to fit on."""
    n_val = n_train - n_fit
    return [s for s in (n_fit - k * n_val for k in range(FOLDS)) if s >= max(n_train // 2, 2)]


def combination(how: str, parts: list[Classical]) -> Classical:
    """The forecast combination `how` (COMBINE) of the fitted `parts`, as one Classical."""
    name = f"{how}({', '.join(c.name for c in parts)})"
    parts_json = [{"name": c.name, "spec": c.spec} for c in parts]
    return Classical(name, {"kind": "combination", "how": how, "parts": parts_json})


def choose(
    values: np.ndarray, n_fit: int, n_train: int, H: int, period: int | None, auto: bool,
    per_lead: bool = False,
) -> tuple[Classical, Classical, dict[str, float]]:
    """The method with the lowest cross-validated MASE over leads 1..H (`fold_starts`; fold k
    fitted on values[:s_k], scored from the origins in [s_k, s_k + n_val)) -> (it fitted on
    values[:n_fit], the same method refitted on values[:n_train], {candidate name: MASE
    averaged over the folds}). The candidates: the fitted methods (`fitters`; one that fails
    on any fold is dropped) and, with at least two of them, their mean and median forecast
    (COMBINE: a combination is scored on every fold from its parts' forecasts there, at no
    extra fit), and (`per_lead`) the per-lead choice (`per_lead_choice`): lead h from the
    best candidate over all leads, unless others have a lower MASE at lead h on every fold
    (then the lowest of those over the folds: one fold's win at one lead is noise, a win on
    every fold is not). An AutoARIMA may lead one step ahead and a combination further out;
    the hybrid's network then reads the lead-1 part's one-step errors. Fold 0 searches the
    specification, the earlier folds refit it (`refit`)."""
    n_val = n_train - n_fit
    fits = fitters(period, auto)
    fitted: dict[str, Classical] = {}
    preds: dict[str, list[np.ndarray]] = {label: [] for label in fits}
    folds = fold_starts(n_fit, n_train)
    for k, start in enumerate(folds):
        origins = origins_for(start, start + n_val)
        for label, fit in fits.items():
            if label not in preds:
                continue
            try:
                c = fit(values[:start]) if k == 0 or fitted[label].spec["kind"] == "ar" else (
                    refit(fitted[label], values[:start]))  # fmt: skip
                pred = c.forecasts(values, origins, H)
            except (ValueError, np.linalg.LinAlgError):  # a failed fit is not a candidate
                del preds[label]
                continue
            if not np.all(np.isfinite(pred)):
                del preds[label]
                continue
            preds[label].append(pred)
            if k == 0:
                fitted[label] = c
    base = list(preds)
    if len(base) > 1:
        for how, combine in COMBINE.items():
            preds[f"{how} of all"] = [combine(np.stack([preds[b][k] for b in base]), axis=0)
                                      for k in range(len(folds))]  # fmt: skip
            fitted[f"{how} of all"] = combination(how, [fitted[b] for b in base])
    scores, lead_mase = {}, {}
    for label, per_fold in preds.items():
        mase = []
        for k, start in enumerate(folds):
            origins = origins_for(start, start + n_val)
            truth = truth_matrix(values, origins, H, start + n_val)
            rows = metrics(per_fold[k], truth, mase_scale(values[:start]))
            mase.append([r["mase"] for r in rows])
        lead_mase[label] = np.asarray(mase)  # (folds, H)
        scores[fitted[label].name] = float(np.mean(mase))
    labels = list(preds)
    overall = min(labels, key=lambda label: scores[fitted[label].name])
    leads = []  # lead h: the overall best, unless another candidate beats it there on every fold
    for h in range(H):
        better = [i for i, b in enumerate(labels)
                  if np.all(lead_mase[b][:, h] < lead_mase[overall][:, h])]  # fmt: skip
        leads.append(min(better, key=lambda i: lead_mase[labels[i]][:, h].mean()) if better
                     else labels.index(overall))  # fmt: skip
    used = sorted(set(leads))
    if per_lead and len(used) > 1:
        chosen = [labels[i] for i in used]
        fitted["per lead"] = per_lead_choice([fitted[b] for b in chosen],
                                             [used.index(i) for i in leads])  # fmt: skip
        scores[fitted["per lead"].name] = float(np.mean([lead_mase[labels[i]][:, h]
                                                         for h, i in enumerate(leads)]))
    best = min([label for label in [*preds, "per lead"] if label in fitted],
               key=lambda label: scores[fitted[label].name])
    refits: dict[str, Classical] = {}

    def refitted(label: str) -> Classical:  # the method of `label` fitted on values[:n_train]
        if label in fits:
            if label not in refits:
                refits[label] = fits[label](values[:n_train])
            return refits[label]
        how = label.split(" ")[0]  # "mean of all", "median of all"
        return combination(how, [refitted(b) for b in base])

    if best == "per lead":
        return fitted[best], per_lead_choice([refitted(labels[i]) for i in used],
                                             [used.index(i) for i in leads]), scores
    return fitted[best], refitted(best), scores


def per_lead_choice(parts: list[Classical], leads: list[int]) -> Classical:
    """Lead h + 1 forecast by parts[leads[h]] (past len(leads): the last lead's part), as one
    Classical; its one-step errors are those of the lead-1 part."""
    name = "per lead(" + ", ".join(
        f"h={h + 1}" + (f"-{h + n}" if n > 1 else "") + f": {parts[i].name}"
        for h, i, n in _runs(leads)) + ")"  # fmt: skip
    return Classical(name, {"kind": "per_lead", "leads": list(leads),
                            "parts": [{"name": c.name, "spec": c.spec} for c in parts]})


def _runs(leads: list[int]) -> list[tuple[int, int, int]]:
    """(first lead index, part, length) of each run of equal entries."""
    out: list[tuple[int, int, int]] = []
    for h, i in enumerate(leads):
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i, out[-1][2] + 1)
        else:
            out.append((h, i, 1))
    return out


# forecast combinations tried as candidates: the M4 competition found a combination of simple
# methods (the mean of SES, Holt and damped exponential smoothing, its "Comb" benchmark) hard
# to beat, and the median is the combination robust to one bad part (Makridakis, Spiliotis &
# Assimakopoulos 2020, "The M4 Competition: 100,000 time series and 61 forecasting methods")
COMBINE = {"mean": np.mean, "median": np.median}
