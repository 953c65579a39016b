"""`rnnkit compose`, `rnnkit harmonize`: a trained music run (`rnnkit train music`) at work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .errors import fail, user_errors

RUN_HELP = "A run directory written by `rnnkit train music`."


def register(app: typer.Typer) -> None:
    """Add `compose` and `harmonize` (`train music` is derived from the task's options)."""
    app.command("compose")(compose)
    app.command("harmonize")(harmonize)


def compose(
    run: Annotated[Path, typer.Argument(help=RUN_HELP)],
    out: Annotated[Path, typer.Option(help="The MIDI file to write (MusicXML is written beside "
                                           "it, same name, .musicxml).")],  # fmt: skip
    length: Annotated[int, typer.Option(help="Quarter notes to generate (after the prime).")] = 32,
    temperature: Annotated[float, typer.Option(help="Sampling temperature; 0 = greedy.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same piece).")] = 0,
    prime: Annotated[Path | None, typer.Option(help="A four-part MIDI file the piece starts "
                                                    "with and continues.")] = None,  # fmt: skip
) -> None:
    """Compose a four-voice chorale-like piece: a standard MIDI file and MusicXML."""
    from ..tasks import music

    with user_errors():
        _check(out)
        paths = music.load(run).compose(out, length, temperature, seed, prime)
    for path in paths:
        print(path)


def harmonize(
    run: Annotated[Path, typer.Argument(help=RUN_HELP)],
    melody: Annotated[Path, typer.Argument(help="A MIDI file; its highest part is the soprano.")],
    out: Annotated[Path | None, typer.Option(help="The MIDI file to write (and .musicxml "
                                                  "beside it). Default: MELODY-satb.mid.")] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature; 0 = greedy.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Add alto, tenor and bass under a melody (the soprano is given; the encoding puts it first
    in every 16th step, so the other voices are sampled conditioned on it)."""
    from ..tasks import music

    out = out if out is not None else melody.with_name(f"{melody.stem}-satb.mid")
    with user_errors():
        _check(out)
        paths = music.load(run).harmonize(melody, out, temperature, seed)
    for path in paths:
        print(path)


def _check(out: Path) -> None:
    if out.suffix.lower() not in (".mid", ".midi"):
        raise fail(f"--out must name a .mid file, got {out}")
