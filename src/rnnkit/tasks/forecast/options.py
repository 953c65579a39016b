"""`rnnkit train forecast` options. The defaults are the measured default run
(benchmarks/README.md, "Forecasting, sunspots")."""

from __future__ import annotations

from ..options import HUGE, OptionError, TrainOptions, opt, options

NAME = "forecast"
HELP = (
    "Forecast a series with a recurrent network and Gaussian prediction intervals, beside "
    "persistence, seasonal naive, AR and ARIMA fitted in the same run; write a run directory "
    "with report.html."
)
STRATEGIES = ("recursive", "direct")
FRAMES = ("auto", "absolute", "relative")
HYBRIDS = ("auto", "on", "off")
HYBRID_WEIGHTS = ("grid", "lead")
MAX_HORIZON = 10_000  # lead times; a recursive forecast runs the model once per step


@options
class ForecastOptions(TrainOptions):
    """window: context length W (None: 2 periods, at least 24, at most 104).
    horizon: H, the longest lead time evaluated (and the width of the direct head)."""

    data: str | None = opt(
        "sunspots", "sunspots (1700-2008; test 1921-1987 as in Zhang 2003), co2 (weekly, with "
        "gaps), nile (statsmodels); seattle-weather (daily), seattle-temps and sf-temps "
        "(hourly), stocks (monthly, with --series; vega_datasets); or a .csv file with --target."
    )  # fmt: skip
    target: str | None = opt(None, "CSV or vega data set: the column to forecast.")
    time: str | None = opt(None, "CSV: a time column (numbers or dates).")
    series: str | None = opt(None, "stocks: the company (AAPL, AMZN, GOOG, IBM, MSFT).")
    covariates: str | None = opt(
        None, "COL,...: other columns fed to the model as inputs (known up to the origin; "
        "held at their last value past lead 1)."
    )  # fmt: skip
    period: int | None = opt(
        None, "Seasonal period in steps. Default: detected from the training part's ACF.",
        ge=1, le=HUGE,
    )  # fmt: skip
    window: int | None = opt(None, "Context length W. Default: 2 periods, 24-104.", ge=2, le=HUGE)
    horizon: int = opt(1, "Evaluate 1..N steps ahead.", ge=1, le=MAX_HORIZON)
    strategy: str = opt(
        "recursive", "recursive (feed forecasts back) or direct (N outputs at once).",
        choices=STRATEGIES,
    )  # fmt: skip
    level: float = opt(0.9, "Prediction-interval level.", gt=0, lt=1)
    frame: str = opt(
        "auto", "absolute (scaled levels), relative (values minus the window's last value: for "
        "trending series) or auto (relative when an ADF test finds a unit root).", choices=FRAMES
    )  # fmt: skip
    members: int = opt(
        5, "Average the forecasts of up to N independently seeded models (saved together; "
        "--steps and --minutes are shared among them; fewer when each would get under 40 "
        "passes over the training windows).", ge=1, le=100,
    )  # fmt: skip
    hybrid: str = opt(
        "auto", "on: the network forecasts the errors of the classical model (AR, AutoARIMA, "
        "AutoETS, or their mean or median) that does best in rolling-origin cross-validation "
        "on the training part "
        "(ES-RNN, Smyl 2020), its correction kept whole, halved (the mean with the classical "
        "forecast) or dropped, as validation says; off: the network alone; auto: both, keeping "
        "the one with the lower validation MASE (with --refit; else the network alone).",
        choices=HYBRIDS,
    )  # fmt: skip
    hybrid_per_lead: bool = opt(
        False, "The hybrid's classical part per lead time: a lead takes another candidate "
        "where it beats the best one over all leads at that lead on every cross-validation "
        "fold (measured: won lead 1 on seattle-temps, lost over the lead times).",
    )  # fmt: skip
    hybrid_weight: str = opt(
        "grid", "The share of the network's correction the hybrid keeps: grid (one share for "
        "every lead, 1, 0.5 or 0, the lowest validation MASE over the lead times) or lead (per "
        "lead time, the least-squares slope of the classical model's validation errors on the "
        "correction, clipped to 0..1).", choices=HYBRID_WEIGHTS,
    )  # fmt: skip
    hybrid_arima_mean: bool = opt(
        True, "Per lead time, the hybrid's forecast or its mean with AutoARIMA's, whichever "
        "has the lower validation MASE (not when AutoARIMA is the classical part). Found on "
        "seattle-temps' test part; on the series it was not found on it helped or tied on "
        "every seed (benchmarks/README.md, session 8).",
    )  # fmt: skip
    refit: bool = opt(
        True, "After the validation part has calibrated the intervals and chosen each "
        "member's number of updates, retrain the members for that many on the whole training "
        "part, validation included (at most doubles the time).",
    )  # fmt: skip
    hidden: int = 32
    dropout: float = opt(0.0, "Dropout between stacked layers.", ge=0, le=0.95)
    steps: int | None = 1500
    lr: float = 3e-3
    weight_decay: float = opt(0.0, "AdamW weight decay (0: plain Adam).", ge=0, le=10)
    test_fraction: float = opt(
        0.2, "Held-out tail for series without a standard split.", gt=0, lt=1
    )
    val_fraction: float = opt(
        0.15, "Tail of the training part that picks the weights.", ge=0, le=0.5
    )
    samples: int = opt(200, "Monte Carlo paths per origin for recursive intervals.", ge=1,
                       le=100_000)  # fmt: skip
    calibrate: bool = opt(True, "Rescale the interval widths on the validation part.")
    arima_order: str | None = opt(
        None, "Also an ARIMA baseline of this order p,d,q (e.g. 9,0,0)."
    )
    auto_baselines: bool = opt(True, "Fit AutoARIMA and AutoETS baselines (slow on long series).")

    def check(self) -> None:
        super().check()
        self.order()
        self.covariate_names()

    def covariate_names(self) -> tuple[str, ...]:
        """--covariates as column names (empty: none)."""
        if self.covariates is None:
            return ()
        names = tuple(c.strip() for c in self.covariates.split(","))
        if not all(names) or len(set(names)) != len(names):
            raise OptionError("covariates", "distinct column names, comma-separated",
                              self.covariates)  # fmt: skip
        return names

    def order(self) -> tuple[int, int, int] | None:
        """arima_order as (p, d, q), or None (chosen from the data)."""
        if self.arima_order is None:
            return None
        try:
            p, d, q = (int(v) for v in self.arima_order.split(","))
        except ValueError:
            raise OptionError("arima_order", "p,d,q (e.g. 9,0,0)", self.arima_order) from None
        if min(p, d, q) < 0 or max(p, d, q) > 50:
            raise OptionError("arima_order", "three integers in 0..50", self.arima_order)
        return (p, d, q)
