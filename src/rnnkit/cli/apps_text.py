"""`rnnkit train sentiment`, `classify`, `train translate`, `translate`: text applications.

Thin: options -> rnnkit.tasks.sentiment / rnnkit.tasks.translate -> a printed table.
Known errors (bad data, bad run directory) are one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .common import default_out as _out
from .common import stderr_console as _console
from .common import train_group as _train_group
from .errors import user_errors


def register(app: typer.Typer) -> None:
    """Add `train sentiment` and `train translate` to the `train` group, and `classify` and
    `translate` to `app`."""
    train = _train_group(app)
    train.command("translate")(train_translate)
    app.command("translate")(translate)


# ---- translation --------------------------------------------------------------------------


def train_translate(
    task: Annotated[
        str, typer.Option(help="de-en (dictionary phrases) or numbers (English -> German words).")
    ] = "de-en",
    cell: Annotated[str, typer.Option(help="Recurrent cell: gru or lstm.")] = "gru",
    hidden: Annotated[int, typer.Option(help="Decoder units (encoder: half per direction).")] = 256,
    embedding: Annotated[int, typer.Option(help="Token embedding size.")] = 128,
    layers: Annotated[int, typer.Option(help="Layers in encoder and decoder.")] = 1,
    attention: Annotated[str, typer.Option(help="additive, dot or none.")] = "additive",
    steps: Annotated[
        int | None, typer.Option(help="Training updates. Default: 1500 (de-en), 600 (numbers).")
    ] = None,
    batch: Annotated[int, typer.Option(help="Pairs per batch.")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate (cosine decay).")] = 2e-3,
    beam: Annotated[int, typer.Option(help="Beam width for the test translations.")] = 4,
    minutes: Annotated[float | None, typer.Option(help="Wall-clock training limit.")] = None,
    high: Annotated[int, typer.Option(help="numbers: largest number (from 0).")] = 9999,
    limit: Annotated[int | None, typer.Option(help="Use only the first N pairs per split.")] = None,
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads (1 is fastest on a busy machine).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Run directory. Default: runs/translate-<date>-<time>.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out directory.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Train a sequence-to-sequence translator with attention and score it (BLEU, exact
    match) against a word-by-word dictionary baseline; write a run directory with report.html."""
    from ..tasks.translate import TranslateOptions
    from ..tasks.translate import train_translate as run_training

    console = _console()
    with user_errors():
        options = TranslateOptions(
            task=task, cell=cell, hidden=hidden, embedding=embedding, layers=layers,
            attention=attention, steps=steps, batch=batch, lr=lr, beam=beam, minutes=minutes,
            high=high, limit=limit, threads=threads, seed=seed,
        )  # fmt: skip
        options.check()
        out = _out(out, f"translate-{task}")
        run = run_training(options, out, overwrite, console=console, progress=not quiet,
                           on_phase=lambda text: console.print(f"[dim]{text}[/]"))  # fmt: skip
    res = run.results
    table = Table(title=f"test split ({res['model']['n']:,} pairs, {options.task})")
    for col in ("model", "BLEU", "chrF", "exact match"):
        table.add_column(col)
    for name, key in ((f"seq2seq, beam {options.beam}", "model"),
                      ("seq2seq, greedy", "model_greedy"),
                      ("word-by-word dictionary", "baseline")):  # fmt: skip
        m = res[key]
        bleu = "n/a" if m["bleu"] is None else f"{m['bleu']:.1f}"
        table.add_row(name, bleu, f"{m['chrf']:.1f}", f"{m['exact_match']:.3f}")
    Console().print(table)
    print(f"run: {run.path}\nreport: {run.report}")


def translate(
    run: Annotated[Path, typer.Argument(help="A run directory from `rnnkit train translate`.")],
    text: Annotated[str, typer.Argument(help="The phrase to translate.")],
    beam: Annotated[int, typer.Option(help="Beam width (1: greedy).")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Translate a phrase with a trained run (beam search)."""
    from ..tasks.translate import load_translator

    with user_errors():
        result = load_translator(run).translate(text, beam)
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(result["translation"])
    if result["unknown"]:
        words = ", ".join(result["unknown"])
        print(f"note: not in the training vocabulary (read as <unk>): {words}", file=sys.stderr)
