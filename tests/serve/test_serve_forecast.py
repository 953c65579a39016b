"""`rnnkit serve`'s /forecast: the default horizon is the run's own, and a direct model asked
for more steps than it forecasts gets one 4xx line. The app is called in process over ASGI
(the route and error handlers `rnnkit serve` mounts; no server, no training)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi import FastAPI

from asgitest import post
from rnnkit.data.scaling import StandardScaler
from rnnkit.models.forecaster import DEFAULT_HORIZON, Forecaster
from rnnkit.serve.app import Limits, Served, add_error_handlers
from rnnkit.serve.endpoints import add_forecast

WINDOW = 6
SERIES = {"values": list(np.sin(np.arange(40) / 3.0)), "index": list(range(40)),
          "n_train": 30, "n_end": 40}  # fmt: skip


class Zero(torch.nn.Module):
    """A Gaussian head of `width` steps that forecasts mean 0, log-variance 0."""

    def __init__(self, width: int):
        super().__init__()
        self.width = width

    def forward(self, x, state=None):
        return torch.zeros(*x.shape[:2], 2 * self.width), state


def forecaster(strategy: str, head: int) -> Forecaster:
    scaler = StandardScaler([0.0], [1.0])
    return Forecaster(Zero(head), scaler, WINDOW, strategy, 0.9, head, samples=4,
                      series=SERIES)  # fmt: skip


def app_for(fc: Forecaster) -> FastAPI:
    app = FastAPI()
    add_error_handlers(app)
    add_forecast(app, Served("forecast", Path("run"), fc, Limits(), threading.Lock()))
    return app


@pytest.mark.parametrize("values", [None, SERIES["values"][:20]])
def test_a_direct_runs_default_is_its_own_horizon_and_more_is_one_4xx(values):
    app = app_for(forecaster("direct", 3))
    extra = {} if values is None else {"values": values}
    status, reply = post(app, "/forecast", extra)  # the run's own 3 steps, not 12
    assert status == 200 and len(reply["mean"]) == len(reply["upper"]) == 3, reply
    status, reply = post(app, "/forecast", {"horizon": 2, **extra})
    assert status == 200 and len(reply["mean"]) == 2
    status, reply = post(app, "/forecast", {"horizon": 5, **extra})
    assert status == 422 and set(reply) == {"error"} and "\n" not in reply["error"]
    assert "at most 3 steps" in reply["error"], reply


def test_a_recursive_runs_default_is_the_stored_one():
    status, reply = post(app_for(forecaster("recursive", 1)), "/forecast", {})
    assert status == 200 and len(reply["mean"]) == DEFAULT_HORIZON == 12
    # a direct head wider than the default still gives the default unasked, and its width asked
    app = app_for(forecaster("direct", 20))
    assert len(post(app, "/forecast", {})[1]["mean"]) == DEFAULT_HORIZON
    assert len(post(app, "/forecast", {"horizon": 20})[1]["mean"]) == 20
