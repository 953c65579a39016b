"""`rnnkit detect-anomalies RUN`: flag what a trained forecaster did not expect.

stdout carries the flagged points (index, value); the progress bar, the evaluation table and
the report path go to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import Threads, progress_bar, run_output_dir, stderr_console, use_threads
from .errors import fail, user_errors


def register(app: typer.Typer) -> None:
    app.command("detect-anomalies")(detect_anomalies)


def detect_anomalies(
    run: Annotated[Path, typer.Argument(help="A run directory from `rnnkit train forecast`.")],
    data: Annotated[
        str | None,
        typer.Option(help="A series (sunspots, co2, nile, or a .csv). Default: the run's own."),
    ] = None,
    target: Annotated[str | None, typer.Option(help="CSV: the column to check.")] = None,
    time: Annotated[
        str | None, typer.Option("--time", help="CSV: a time column (numbers or dates).")
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(help="CSV: a 0/1 column marking true anomalies; scores the flags on it."),
    ] = None,
    level: Annotated[
        float, typer.Option(help="interval/residual: flag outside this interval level, in "
                            "(0, 1); window-discord, window, discord: the interval drawn, "
                            "and the baseline's rule.")
    ] = 0.99,
    method: Annotated[
        str, typer.Option(help="window-discord (flag where both flag; alarms under 2 windows "
                          "apart are one), window (the residual over a quarter window against "
                          "its recent median and MAD), discord (each window of the residual "
                          "against its nearest neighbour elsewhere in the series or the "
                          "training part), interval (outside the forecast's interval) or "
                          "residual (MAD).")
    ] = "window-discord",
    false_alarm_rate: Annotated[
        float | None,
        typer.Option(help="The threshold's false-alarm rate per point on the run's own "
                     "series (window-discord, window, discord: tail fits, the window rule's "
                     "on the training split, the discord rule's on the test part, default "
                     "1e-5; the others: a quantile of the training split instead of the "
                     "--level rule), in (0, 1)."),
    ] = None,
    evaluate: Annotated[
        bool, typer.Option(help="Score on anomalies injected into the held-out part.")
    ] = True,
    trials: Annotated[int, typer.Option(help="Injection trials to pool (1-10,000).")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed for the injections.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Where anomalies.json/.html go. Default: RUN/anomalies.")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    threads: Threads = 0,
) -> None:
    """Flag points a trained forecaster did not expect; score it on injected anomalies."""
    import numpy as np

    from ..data.series import load_series_source
    from ..tasks.anomaly import (
        EVAL_HEADER,
        LABEL_HEADER,
        evaluation_rows,
        label_rows,
        run_detection,
    )
    from .train import _table

    console = stderr_console()
    use_threads(threads)
    out = out if out is not None else run_output_dir(run, "anomalies")
    with user_errors(), progress_bar(console, quiet) as progress:
        if labels is not None and data is None:
            raise fail("--labels names a column of the --data CSV; give --data too")
        extra = () if labels is None else (labels,)
        series = None if data is None else load_series_source(data, target, time, None, extra)
        marks = None
        if series is not None and series.covariates is not None:
            marks = series.covariates[:, 0]
            if not np.isin(marks, (0, 1)).all():
                raise fail(f"--labels {labels}: the column must hold 0 or 1 on every row")
        result = run_detection(run, series, out, level, method, evaluate, trials, seed,
                               progress=lambda w, i, n: progress(f"checking {w}", i, n),
                               labels=marks, false_alarm_rate=false_alarm_rate)  # fmt: skip
    n = len(result.flagged_index)
    console.print(f"{n} point{'s' if n != 1 else ''} flagged")
    for t, v in zip(result.flagged_index[:50], result.flagged_values[:50], strict=True):
        sys.stdout.write(f"{t:g}\t{v:.4g}\n")
    if n > 50:
        console.print(f"... {n - 50} more in {result.out_dir / 'anomalies.json'}")
    if result.labelled is not None:
        console.print(_table(f"against --labels {labels}", list(LABEL_HEADER),
                             label_rows(result.labelled)))  # fmt: skip
    if result.evaluation is not None:
        ev = result.evaluation
        console.print(_table(f"injected anomalies, {ev['trials']} trials on {ev['held_out']}",
                             list(EVAL_HEADER), evaluation_rows(ev)))  # fmt: skip
    console.print(f"report: {result.out_dir / 'anomalies.html'}")
