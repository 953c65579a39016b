"""Speech recognition: connected words, many-to-many unaligned, trained with CTC.

    digit strings ("four two seven"), command sentences of a 26-word vocabulary ("place blue
    at four now") and isolated digits spoken by espeak-ng voice variants, speed / pitch /
    amplitude varied, half in a synthetic room, noise at a random SNR (data.speech.
    digit_corpus, cached)
    -> split by voice variant (test voices never heard in training)
    -> log-mel frames, stacked -> bidirectional LSTM/GRU -> per-step words (or characters)
       + blank -> CTC loss (Graves et al. 2006) -> greedy and prefix-beam decoding, and the
       beam with an n-gram LM of the training transcripts (order, weight on validation)
    -> CER / WER on unseen voices, next to one-pass DTW over the training voices' isolated
       digits (digit strings), computed in the same run

Python API:

    >>> from rnnkit.tasks import speech
    >>> run = speech.train(speech.Options(epochs=30), "runs/speech")
    >>> speech.load("runs/speech").transcribe_file("digits.wav")["text"]
"""

from .options import HELP, NAME, SpeechOptions
from .options import SpeechOptions as Options


def __getattr__(name: str):  # the model code (torch) loads on first use, not for `--help`
    import importlib

    if name.startswith("__") or name == "task":
        raise AttributeError(name)
    return getattr(importlib.import_module(f"{__name__}.task"), name)


__all__ = ["HELP", "NAME", "Options", "SpeechOptions", "train", "load"]
