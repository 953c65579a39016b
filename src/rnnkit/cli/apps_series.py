"""`rnnkit train forecast`, `forecast`, `detect-anomalies`.

Thin: options -> rnnkit.tasks.forecast / anomaly -> a printed table.
Known errors (bad data, bad run directory) are one line on stderr and exit code 2.
stdout carries the run directory (train) or the results (forecast, detect-anomalies).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import default_out as _out
from .common import stderr_console as _console
from .common import train_group as _train_group
from .errors import fail, user_errors

CELLS = {"lstm": "lstm", "gru": "gru", "rnn": "elman", "elman": "elman"}


def register(app: typer.Typer) -> None:
    """Add `train forecast` to the `train` group (created if the app has none yet), and
    `forecast` and `detect-anomalies` to `app`."""
    train = _train_group(app)
    train.command("forecast")(train_forecast)
    app.command("forecast")(forecast)
    app.command("detect-anomalies")(detect_anomalies)


def _cell(cell: str) -> str:
    if cell.lower() not in CELLS:
        raise fail(f"--cell must be lstm, gru or rnn, got {cell!r}")
    return CELLS[cell.lower()]


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise fail(f"--out {out} exists and is not a directory")
    if (out / "config.json").exists() and not overwrite:
        raise fail(f"{out} already holds a run; pass --overwrite or choose another --out")


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(title: str, header, rows) -> Table:
    t = Table(title=title)
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        t.add_row(*[_fmt(v) for v in row])
    return t


# ---- forecasting ------------------------------------------------------------------------


def _order(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    try:
        p, d, q = (int(v) for v in text.split(","))
    except ValueError:
        raise fail(f"--arima-order must be p,d,q (e.g. 9,0,0), got {text!r}") from None
    if min(p, d, q) < 0:
        raise fail(f"--arima-order must be non-negative, got {text!r}")
    return (p, d, q)


def train_forecast(
    dataset: Annotated[
        str,
        typer.Option(
            help="sunspots (1700-2008; test 1921-1987 as in Zhang 2003), co2 (weekly, with "
            "gaps), nile (statsmodels), or a .csv file with --target."
        ),
    ] = "sunspots",
    target: Annotated[str | None, typer.Option(help="CSV: the column to forecast.")] = None,
    time_column: Annotated[
        str | None, typer.Option("--time", help="CSV: a time column (numbers or dates).")
    ] = None,
    period: Annotated[
        int | None, typer.Option(min=1, help="Seasonal period in steps (seasonal naive).")
    ] = None,
    window: Annotated[
        int | None, typer.Option(min=2, help="Context length W. Default: 2 periods, 24-104.")
    ] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Evaluate 1..N steps ahead.")] = 1,
    strategy: Annotated[
        str, typer.Option(help="recursive (feed forecasts back) or direct (N outputs at once).")
    ] = "recursive",
    level: Annotated[float, typer.Option(help="Prediction-interval level, in (0, 1).")] = 0.9,
    frame: Annotated[
        str,
        typer.Option(
            help="absolute (scaled levels), relative (values minus the window's last value: "
            "for trending series) or auto (relative when an ADF test finds a unit root)."
        ),
    ] = "auto",
    cell: Annotated[str, typer.Option(help="Recurrent cell: lstm, gru or rnn (Elman).")] = "lstm",
    hidden: Annotated[int, typer.Option(min=1, help="Hidden units per layer.")] = 32,
    layers: Annotated[int, typer.Option(min=1, help="Stacked recurrent layers.")] = 1,
    dropout: Annotated[float, typer.Option(min=0.0, max=0.95, help="Dropout.")] = 0.0,
    steps: Annotated[int, typer.Option(min=1, help="Training updates (cosine decay).")] = 1500,
    batch: Annotated[int, typer.Option(min=1, help="Windows per batch.")] = 32,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate.")] = 3e-3,
    test_fraction: Annotated[
        float, typer.Option(help="Held-out tail for series without a standard split.")
    ] = 0.2,
    val_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Tail of the training part that picks weights.")
    ] = 0.15,
    arima_order: Annotated[
        str | None, typer.Option(help="ARIMA baseline order p,d,q. Default: chosen from the data.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Run directory. Default: runs/forecast-<date>-<time>.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out directory.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Forecast a series with a recurrent network and Gaussian prediction intervals.

    Prints MAE, RMSE, MSE and MASE on the held-out tail beside persistence, seasonal naive,
    AR and ARIMA fitted in the same run; writes report.html into the run directory.
    """
    from ..data.series import load_series_source
    from ..tasks.forecast import ForecastOptions, metrics_rows, train_forecaster

    if strategy not in ("recursive", "direct"):
        raise fail(f"--strategy must be recursive or direct, got {strategy!r}")
    if not 0 < level < 1:
        raise fail(f"--level must be in (0, 1), got {level}")
    if frame not in ("auto", "absolute", "relative"):
        raise fail(f"--frame must be auto, absolute or relative, got {frame!r}")
    order = _order(arima_order)
    out = _out(out, "forecast")
    _check_out(out, overwrite)
    console = _console()
    with user_errors():
        series = load_series_source(dataset, target, time_column, period)
        if series.gaps_filled:
            console.print(f"{series.gaps_filled} missing values filled by linear interpolation")
        opts = ForecastOptions(
            window=window, horizon=horizon, strategy=strategy, cell=_cell(cell),
            hidden_size=hidden, num_layers=layers, dropout=dropout, steps=steps,
            batch_size=batch, lr=lr, test_fraction=test_fraction, val_fraction=val_fraction,
            level=level, frame=frame, arima_order=order, seed=seed, progress=not quiet,
        )  # fmt: skip
        result = train_forecaster(series, out, opts, overwrite=overwrite, console=console)
    sp = result.split
    console.print(
        f"train {sp['train'][0]:g}-{sp['train'][1]:g}, test {sp['test'][0]:g}-{sp['test'][1]:g}"
        f" ({sp['n_test']} points), window {sp['window']}"
    )
    for h in sorted({1, horizon}):
        console.print(
            _table(
                f"test, {h} step(s) ahead",
                ("method", "MAE", "RMSE", "MSE", "MASE"),
                metrics_rows(result.table, h),
            )  # fmt: skip
        )
    cov = result.coverage
    console.print(
        f"{level:.0%} interval coverage: "
        + ", ".join(f"h={c['h']}: {c['coverage']:.0%}" for c in cov[:5])
    )
    console.print(f"report: {out / 'report.html'}")
    print(out)


def forecast(
    run: Annotated[Path, typer.Argument(help="A run directory from `rnnkit train forecast`.")],
    horizon: Annotated[int, typer.Option(min=1, help="Steps past the end of the series.")] = 12,
    plot: Annotated[
        Path | None, typer.Option(help="Write the plot here. Default: RUN/forecast.png.")
    ] = None,
) -> None:
    """Forecast the next N steps after the series the run was trained on, with intervals."""
    from ..tasks.forecast import forecast_run, plot_future

    with user_errors():
        f = forecast_run(run, horizon)
    plot = plot if plot is not None else run / "forecast.png"
    fig = plot_future(f)
    tmp = plot.with_name(f".{plot.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(plot)
    lo_name, hi_name = f"lower {f.level:.0%}", f"upper {f.level:.0%}"
    sys.stdout.write(f"{f.index_label}\tforecast\t{lo_name}\t{hi_name}\n")
    for t, m, lo, hi in zip(f.index, f.mean, f.lower, f.upper, strict=True):
        sys.stdout.write(f"{t:g}\t{m:.4g}\t{lo:.4g}\t{hi:.4g}\n")
    _console().print(f"plot: {plot}")


# ---- anomaly detection ------------------------------------------------------------------


def detect_anomalies(
    run: Annotated[Path, typer.Argument(help="A run directory from `rnnkit train forecast`.")],
    data: Annotated[
        str | None,
        typer.Option(help="A series (sunspots, co2, nile, or a .csv). Default: the run's own."),
    ] = None,
    target: Annotated[str | None, typer.Option(help="CSV: the column to check.")] = None,
    time_column: Annotated[
        str | None, typer.Option("--time", help="CSV: a time column (numbers or dates).")
    ] = None,
    level: Annotated[float, typer.Option(help="Flag outside this interval level.")] = 0.99,
    method: Annotated[
        str, typer.Option(help="interval (outside the forecast's interval) or residual (MAD).")
    ] = "interval",
    evaluate: Annotated[
        bool, typer.Option(help="Score on anomalies injected into the held-out part.")
    ] = True,
    trials: Annotated[int, typer.Option(min=1, help="Injection trials to pool.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed for the injections.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Where anomalies.json/.html go. Default: RUN/anomalies.")
    ] = None,
) -> None:
    """Flag points a trained forecaster did not expect; score it on injected anomalies."""
    from ..data.series import load_series_source
    from ..tasks.anomaly import EVAL_HEADER, evaluation_rows, run_detection

    if method not in ("interval", "residual"):
        raise fail(f"--method must be interval or residual, got {method!r}")
    if not 0 < level < 1:
        raise fail(f"--level must be in (0, 1), got {level}")
    with user_errors():
        series = None if data is None else load_series_source(data, target, time_column)
        result = run_detection(run, series, out, level, method, evaluate, trials, seed)
    console = _console()
    n = len(result.flagged_index)
    console.print(f"{n} point{'s' if n != 1 else ''} flagged")
    for t, v in zip(result.flagged_index[:50], result.flagged_values[:50], strict=True):
        sys.stdout.write(f"{t:g}\t{v:.4g}\n")
    if n > 50:
        console.print(f"... {n - 50} more in {result.out_dir / 'anomalies.json'}")
    if result.evaluation is not None:
        ev = result.evaluation
        console.print(
            _table(
                f"injected anomalies, {ev['trials']} trials on {ev['held_out']}",
                EVAL_HEADER,
                evaluation_rows(ev),
            )  # fmt: skip
        )
    console.print(f"report: {result.out_dir / 'anomalies.html'}")
