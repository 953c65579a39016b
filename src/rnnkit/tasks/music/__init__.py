"""Music generation: a four-voice Bach chorale model on a 16th-note grid, sampled and evaluated.

    music21's Bach chorales -> 16th-note grid of S, A, T, B (hold and rest symbols), moved to
    C major / A minor, cached -> split by chorale -> token LM (embedding -> LSTM -> softmax)
    -> stateful truncated BPTT -> NLL per token and per quarter note on held-out chorales
    against interpolated Kneser-Ney (order picked on validation) -> generated pieces and their
    statistics against held-out Bach -> report.html

Python API:

    >>> from rnnkit.tasks import music
    >>> run = music.train(music.Options(minutes=5), "runs/bach")
    >>> composer = music.load("runs/bach")
    >>> composer.compose("piece.mid", quarters=32, temperature=0.9, seed=1)
    >>> composer.harmonize("melody.mid", "chorale.mid")
"""

from .options import HELP, NAME, MusicOptions
from .options import MusicOptions as Options


def __getattr__(name: str):  # the model code (torch, music21) loads on first use
    import importlib

    if name.startswith("__") or name == "task":
        raise AttributeError(name)
    return getattr(importlib.import_module(f"{__name__}.task"), name)


__all__ = ["HELP", "NAME", "MusicOptions", "Options", "train", "load"]
