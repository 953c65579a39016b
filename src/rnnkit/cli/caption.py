"""`rnnkit caption`: a trained captioning run on an image file (`train caption` is derived)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .errors import user_errors


def register(app: typer.Typer) -> None:
    app.command("caption")(caption)


def caption(
    run: Annotated[Path, typer.Argument(help="A run directory from `rnnkit train caption`.")],
    image: Annotated[Path, typer.Argument(help="A PNG or JPEG (resized and converted).")],
    beam: Annotated[int, typer.Option(help="Beam width (1: greedy; at most 64).")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Caption an image with a trained run (beam search)."""
    from ..tasks import caption as task

    with user_errors():
        result = task.load(run).caption(image, beam)
    print(json.dumps(result) if as_json else result["caption"])
