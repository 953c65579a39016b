"""Forecasting one series, against classical baselines computed in the same run.

    a series (sunspots, co2, nile, or a user's CSV) -> split by time: training part (its last
    val_fraction validates), held-out test part -> scaler fitted on the training part only
    -> windows (B, W, 1) -> LSTM/GRU with a Gaussian head (recursive: the next value; direct:
    the next H) -> best weights on validation MSE; beside it the hybrid (the network
    forecasting a classical model's errors), the better of the two on validation MASE kept
    -> intervals recalibrated on validation
    -> test MAE/RMSE/MSE/MASE per lead time next to persistence, seasonal naive, AR(p) and
       ARIMA from the same origins (rnnkit.models.classical) -> report.html

    options.py     ForecastOptions (torch-free); the Forecaster is rnnkit.models.forecaster
    hybrid.py      the hybrid's classical part: chosen by cross-validation, stored as JSON
    report.py      the report sections and plots
    task.py        the Task: data, model, calibration, evaluation, loading

Python API:

    >>> from rnnkit.tasks import forecast
    >>> run = forecast.train(forecast.Options(data="sunspots"), "runs/sunspots")
    >>> run.results["metrics"]["rnnkit"][0]["mse"], run.results["metrics"]["AR(18)"][0]["mse"]
    >>> f = forecast.load("runs/sunspots")
    >>> ahead = f.future(12)          # 12 steps past the end of the series
    >>> ahead.mean, ahead.lower, ahead.upper
"""

from .. import lazy
from .options import HELP, NAME, ForecastOptions
from .options import ForecastOptions as Options

__getattr__ = lazy(__name__, {"plot_future": "report"})

__all__ = ["HELP", "NAME", "Options", "ForecastOptions", "Forecaster", "train", "load"]
