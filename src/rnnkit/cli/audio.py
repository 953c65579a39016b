"""`rnnkit classify-audio` and `rnnkit transcribe`: trained voice / speech runs on a WAV file
(`train voice` and `train speech` are derived)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .errors import fail, user_errors


def register(app: typer.Typer) -> None:
    app.command("classify-audio")(classify_audio)
    app.command("transcribe")(transcribe)


def classify_audio(
    run: Annotated[Path, typer.Argument(help="A run directory from `rnnkit train voice`.")],
    wav: Annotated[Path, typer.Argument(help="A WAV file: any sample rate, mono or stereo.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the predicted label (sex, speaker or language voice) and its probability."""
    from ..tasks import voice

    with user_errors():
        result = voice.load(run).classify_file(wav)
    if as_json:
        print(json.dumps(result))
        return
    print(f"{result['prediction']}\t{result['probability']:.3f}")


def transcribe(
    run: Annotated[Path, typer.Argument(help="A run directory from `rnnkit train speech`.")],
    wav: Annotated[Path, typer.Argument(help="A WAV file: any sample rate, mono or stereo.")],
    beam: Annotated[int, typer.Option(help="Prefix-beam width (1: greedy), 1 to 64.")] = 8,
    lm: Annotated[bool, typer.Option("--lm", help="Decode with the run's n-gram language "
                                     "model (its weight chosen on validation voices).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the transcript of a recording (CTC, prefix-beam decoding, optionally with the
    run's n-gram language model of its training transcripts)."""
    from ..tasks import speech

    if not 1 <= beam <= 64:
        raise fail(f"--beam must be between 1 and 64, got {beam}")
    with user_errors():
        result = speech.load(run).transcribe_file(wav, beam, use_lm=lm)
    if as_json:
        print(json.dumps(result))
        return
    print(result["text"])
