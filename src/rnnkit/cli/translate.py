"""`rnnkit translate`: a trained translation run on a phrase (`train translate` is derived)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import Threads, use_threads
from .errors import user_errors


def register(app: typer.Typer) -> None:
    app.command("translate")(translate)


def translate(
    run: Annotated[Path, typer.Argument(help="A run directory from `rnnkit train translate`.")],
    text: Annotated[str, typer.Argument(help="The phrase to translate.")],
    beam: Annotated[int, typer.Option(help="Beam width (1: greedy; at most 64).")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    threads: Threads = 0,
) -> None:
    """Translate a phrase with a trained run (beam search)."""
    from ..tasks import translate as task

    use_threads(threads)
    with user_errors():
        result = task.load(run).translate(text, beam)
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(result["translation"])
    if result["unknown"]:
        words = ", ".join(result["unknown"])
        print(f"note: not in the training vocabulary (read as <unk>): {words}", file=sys.stderr)
