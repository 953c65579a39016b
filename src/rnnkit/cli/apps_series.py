"""`rnnkit train sequence-classify`.

Thin: options -> rnnkit.tasks.sequence_classify -> a printed table.
Known errors (bad data, bad run directory) are one line on stderr and exit code 2.
stdout carries the run directory.
"""

from __future__ import annotations

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
    """Add `train sequence-classify` to the `train` group (created if the app has none yet)."""
    train = _train_group(app)
    train.command("sequence-classify")(train_sequence_classify)


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


# ---- sequence classification ------------------------------------------------------------


def train_sequence_classify(
    dataset: Annotated[
        str,
        typer.Option(
            help="JapaneseVowels (speakers), BasicMotions (activities), GunPoint, "
            "ItalyPowerDemand, ArrowHead (aeon), or a .csv (long format: id, label, optional "
            "time and split columns, numeric channels) or .npz (X, y[, lengths, X_test, "
            "y_test]) file."
        ),
    ] = "JapaneseVowels",
    test: Annotated[
        Path | None, typer.Option(help="A separate test file (same format) for a user --dataset.")
    ] = None,
    id_column: Annotated[str, typer.Option(help="CSV: the series id column.")] = "id",
    label_column: Annotated[str, typer.Option(help="CSV: the label column.")] = "label",
    time_column: Annotated[
        str | None, typer.Option(help="CSV: order rows within a series by this column.")
    ] = None,
    cell: Annotated[str, typer.Option(help="Recurrent cell: gru, lstm or rnn (Elman).")] = "gru",
    hidden: Annotated[int, typer.Option(min=1, help="Hidden units per direction.")] = 64,
    layers: Annotated[int, typer.Option(min=1, help="Stacked recurrent layers.")] = 1,
    bidirectional: Annotated[bool, typer.Option(help="Read each sequence both ways.")] = True,
    readout: Annotated[
        str, typer.Option(help="Pool the outputs: last, mean, max or attention.")
    ] = "mean",
    dropout: Annotated[float, typer.Option(min=0.0, max=0.95, help="Dropout.")] = 0.0,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training set.")] = 150,
    batch: Annotated[int, typer.Option(min=1, help="Sequences per batch.")] = 32,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate (cosine decay).")] = 3e-3,
    weight_decay: Annotated[
        float, typer.Option(min=0.0, help="AdamW weight decay (0: plain Adam).")
    ] = 0.0,
    val_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Hold out this much of train to pick weights.")
    ] = 0.0,
    augment: Annotated[
        float,
        typer.Option(
            min=0.0, help="Training-time jitter and amplitude scaling, std in standard units."
        ),
    ] = 0.1,
    ensemble: Annotated[
        int,
        typer.Option(
            min=1, help="Average the softmax of N independently seeded models (saved together)."
        ),
    ] = 5,
    max_train: Annotated[int | None, typer.Option(min=2, help="Use only N training cases.")] = None,
    max_test: Annotated[int | None, typer.Option(min=1, help="Use only N test cases.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Run directory. Default: runs/classify-<date>-<time>.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out directory.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Classify real-valued sequences (speaker, activity...) with a recurrent network.

    Prints test accuracy beside a 1-NN Euclidean baseline run on the same split and the
    published 1-NN DTW figure; writes report.html into the run directory. The defaults (an
    ensemble of 5 bi-GRUs, 150 epochs, augmentation 0.1) were chosen by cross-validation on
    the training splits of the archive problems (benchmarks/README.md).
    """
    from ..data.archives import load_classification_source
    from ..tasks.sequence_classify import ClassifyOptions, train_sequence_classifier

    out = _out(out, "classify")
    _check_out(out, overwrite)
    if readout not in ("last", "mean", "max", "attention"):
        raise fail(f"--readout must be last, mean, max or attention, got {readout!r}")
    console = _console()
    with user_errors():
        data = load_classification_source(
            dataset, None if test is None else str(test), id_column=id_column,
            label_column=label_column, time_column=time_column, seed=seed,
        )  # fmt: skip
        if max_train or max_test:
            data = data.subset(max_train, max_test)
            if len(set(data.y_train.tolist())) < 2:
                raise fail("--max-train leaves fewer than 2 classes; raise it")
        console.print(" ".join(f"{k}: {v}" for k, v in data.summary().items()))
        opts = ClassifyOptions(
            cell=_cell(cell), hidden_size=hidden, num_layers=layers, bidirectional=bidirectional,
            readout=readout, dropout=dropout, epochs=epochs, batch_size=batch, lr=lr,
            weight_decay=weight_decay, val_fraction=val_fraction, augment=augment,
            ensemble=ensemble, seed=seed, progress=not quiet,
        )  # fmt: skip
        result = train_sequence_classifier(data, out, opts, overwrite=overwrite, console=console)
    console.print(_table("test accuracy", ("method", "accuracy"), result.table()))
    if result.published:
        console.print(f"[dim]published: {result.published['source']}[/]")
    console.print(f"report: {out / 'report.html'}")
    print(out)
