"""`rnnkit forecast RUN`: a trained forecast run, N steps past the end of its series (or of
a new CSV with the same columns, `--data`).

stdout carries the forecast as tab-separated rows; the plot path goes to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import Threads, stderr_console, use_threads
from .errors import fail, user_errors


def register(app: typer.Typer) -> None:
    app.command("forecast")(forecast)


def forecast(
    run: Annotated[Path, typer.Argument(help="A run directory from `rnnkit train forecast`.")],
    horizon: Annotated[
        int | None,
        typer.Option(help="Steps past the end of the series (1-10,000). Default: 12, or fewer "
                     "when the run forecasts fewer (a direct or hybrid run: its --horizon)."),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write the plot here (folders are created). Default: RUN/forecast.png."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Forecast past the end of this CSV instead (the run's target, time "
                     "and covariate columns; at least a window of rows)."),
    ] = None,
    threads: Threads = 0,
) -> None:
    """Forecast the next N steps after the series the run was trained on, with intervals."""
    from ..models.forecaster import HybridForecaster
    from ..tasks import forecast as task

    use_threads(threads)
    with user_errors():
        fc = task.load(run)
        if data is not None:
            fc.use_data(data)
        # a direct head reaches its width, no further; a hybrid as far as its network alone
        hybrid = isinstance(fc, HybridForecaster)
        if horizon is None:
            horizon = fc.default_horizon()
        f = fc.future(horizon)
        if hybrid and horizon > fc.head_horizon:
            stderr_console().print(
                f"note: this hybrid corrects the classical forecast for {fc.head_horizon} "
                f"step(s); these {horizon} steps are its network-alone forecast")
    plot = plot if plot is not None else run / "forecast.png"
    if plot.is_dir():
        raise fail(f"--plot {plot} is a directory; give a file name, e.g. {plot / 'forecast.png'}")
    try:
        plot.parent.mkdir(parents=True, exist_ok=True)
        tmp = plot.with_name(f".{plot.name}.tmp.png")
        task.plot_future(f).savefig(tmp, dpi=110, bbox_inches="tight")
        tmp.replace(plot)
    except OSError as err:
        raise fail(f"--plot {plot}: cannot write there ({err.strerror or err})") from None
    lo_name, hi_name = f"lower {f.level:.0%}", f"upper {f.level:.0%}"
    sys.stdout.write(f"{f.index_label}\tforecast\t{lo_name}\t{hi_name}\n")
    for t, m, lo, hi in zip(f.index, f.mean, f.lower, f.upper, strict=True):
        sys.stdout.write(f"{t:g}\t{m:.4g}\t{lo:.4g}\t{hi:.4g}\n")
    stderr_console().print(f"plot: {plot}")
