"""`rnnkit classify`: a trained sentiment run on a sentence, or scored on a labelled CSV."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import Threads, use_threads
from .errors import fail, user_errors


def register(app: typer.Typer) -> None:
    app.command("classify")(classify)


def classify(
    run: Annotated[Path, typer.Argument(help="A run directory from `rnnkit train sentiment`.")],
    text: Annotated[str | None, typer.Argument(help="The sentence to classify.")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Instead of TEXT: a labelled CSV to score the run on.")
    ] = None,
    text_column: Annotated[str, typer.Option(help="CSV column holding the sentence.")] = "text",
    label_column: Annotated[str, typer.Option(help="CSV column holding the label.")] = "label",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    threads: Threads = 0,
) -> None:
    """Print the predicted label and its probability for a sentence (or accuracy on a CSV)."""
    from ..data.sentiment import load_csv
    from ..tasks import sentiment

    if (text is None) == (data is None):
        raise fail("give either a sentence (TEXT) or --data FILE.csv, not both or neither")
    use_threads(threads)
    with user_errors():
        clf = sentiment.load(run)
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
