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

from ..tasks.sentiment import SentimentOptions as S  # the sentiment defaults live in one place
from .common import default_out as _out
from .common import stderr_console as _console
from .common import train_group as _train_group
from .errors import fail, user_errors


def register(app: typer.Typer) -> None:
    """Add `train sentiment` and `train translate` to the `train` group, and `classify` and
    `translate` to `app`."""
    train = _train_group(app)
    train.command("sentiment")(train_sentiment)
    train.command("translate")(train_translate)
    app.command("classify")(classify)
    app.command("translate")(translate)


# ---- sentiment ----------------------------------------------------------------------------


def train_sentiment(
    data: Annotated[
        str | None,
        typer.Option(
            help="A CSV file with a header row, or a VADER corpus: movies, tweets, amazon, "
            "nyt. Default: movies (10,605 movie-review sentences)."
        ),
    ] = None,
    text_column: Annotated[str, typer.Option(help="CSV column holding the sentence.")] = "text",
    label_column: Annotated[str, typer.Option(help="CSV column holding the label.")] = "label",
    cell: Annotated[str, typer.Option(help="Recurrent cell: gru or lstm.")] = S.cell,
    hidden: Annotated[int, typer.Option(help="Hidden units per direction.")] = S.hidden,
    embedding: Annotated[int, typer.Option(help="Word embedding size.")] = S.embedding,
    embedding_std: Annotated[
        float, typer.Option(help="Standard deviation of the initial word vectors.")
    ] = S.embedding_std,
    layers: Annotated[int, typer.Option(help="Stacked bidirectional layers.")] = S.layers,
    readout: Annotated[
        str, typer.Option(help="Pooling over the words: attention, max, mean or last.")
    ] = S.readout,
    dropout: Annotated[
        float, typer.Option(help="Dropout on the pooled vector before the output layer.")
    ] = S.dropout,
    word_dropout: Annotated[
        float, typer.Option(help="Probability that a training word is read as <unk>.")
    ] = S.word_dropout,
    min_count: Annotated[
        int, typer.Option(help="Words seen fewer times in training are <unk>.")
    ] = S.min_count,
    epochs: Annotated[float, typer.Option(help="Passes over the training split.")] = S.epochs,
    batch: Annotated[int, typer.Option(help="Sentences per batch.")] = S.batch,
    lr: Annotated[float, typer.Option(help="Learning rate (cosine decay).")] = S.lr,
    weight_decay: Annotated[
        float, typer.Option(help="Decoupled weight decay (AdamW); 0: plain Adam.")
    ] = S.weight_decay,
    patience: Annotated[
        int, typer.Option(help="Stop after N evaluations without better val accuracy (0: never).")
    ] = S.patience,
    minutes: Annotated[float | None, typer.Option(help="Wall-clock training limit.")] = None,
    limit: Annotated[
        int | None, typer.Option(help="Use only the first N sentences of each split.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads (1 is fastest on a busy machine).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = S.seed,
    out: Annotated[
        Path | None, typer.Option(help="Run directory. Default: runs/sentiment-<date>-<time>.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out directory.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Train a sentiment classifier (bidirectional RNN, pooling over words) and a bag-of-words
    logistic-regression baseline on the same split; write a run directory with report.html."""
    from ..tasks.sentiment import SentimentOptions
    from ..tasks.sentiment import train_sentiment as run_training

    console = _console()
    with user_errors():
        options = SentimentOptions(
            data=data, text_column=text_column, label_column=label_column, cell=cell,
            hidden=hidden, embedding=embedding, embedding_std=embedding_std, layers=layers,
            readout=readout, dropout=dropout, word_dropout=word_dropout, min_count=min_count,
            batch=batch, lr=lr, weight_decay=weight_decay, epochs=epochs, patience=patience,
            minutes=minutes, seed=seed, limit=limit, threads=threads,
        )  # fmt: skip
        out = _out(out, "sentiment")
        run = run_training(options, out, overwrite, console=console, progress=not quiet,
                           on_phase=lambda text: console.print(f"[dim]{text}[/]"))  # fmt: skip
    res = run.results
    table = Table(title=f"test split ({res['model']['n']:,} sentences)")
    for col in ("model", "accuracy", "macro-F1"):
        table.add_column(col)
    table.add_row(f"bi-{options.cell.upper()} + {options.readout} pooling",
                  f"{res['model']['accuracy']:.3f}",
                  f"{res['model']['macro_f1']:.3f}")  # fmt: skip
    table.add_row("bag-of-words logistic regression", f"{res['baseline']['accuracy']:.3f}",
                  f"{res['baseline']['macro_f1']:.3f}")  # fmt: skip
    table.add_row(f"majority ({res['majority']['label']})",
                  f"{res['majority']['accuracy']:.3f}", "")  # fmt: skip
    Console().print(table)
    print(f"run: {run.path}\nreport: {run.report}")


def classify(
    run: Annotated[Path, typer.Argument(help="A run directory from `rnnkit train sentiment`.")],
    text: Annotated[str | None, typer.Argument(help="The sentence to classify.")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Instead of TEXT: a labelled CSV to score the run on.")
    ] = None,
    text_column: Annotated[str, typer.Option(help="CSV column holding the sentence.")] = "text",
    label_column: Annotated[str, typer.Option(help="CSV column holding the label.")] = "label",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the predicted label and its probability for a sentence (or accuracy on a CSV)."""
    from ..data.sentiment import load_csv
    from ..tasks.sentiment import load_classifier

    if (text is None) == (data is None):
        raise fail("give either a sentence (TEXT) or --data FILE.csv, not both or neither")
    with user_errors():
        clf = load_classifier(run)
        if data is not None:
            metrics = clf.evaluate(load_csv(data, text_column, label_column))
            if as_json:
                print(json.dumps(metrics))
            else:
                print(f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
                      f"({metrics['n']} sentences)")  # fmt: skip
            return
        result = clf.classify(text)
    if as_json:
        print(json.dumps(result))
        return
    print(f"{result['prediction']}\t{result['probability']:.3f}")
    if result["known_words"] == 0:
        print("note: none of the words is in the model's vocabulary", file=sys.stderr)


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
