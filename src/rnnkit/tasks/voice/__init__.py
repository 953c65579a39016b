"""Voice classification: many-to-one over log-mel frames of synthesised speech.

    espeak-ng voice variants x language voices, pitch / speed / amplitude varied, noise at a
    random SNR (data.speech.voice_corpus, cached as features)
    -> split by voice variant (test voices never heard in training; --label speaker splits
       each voice's utterances instead)
    -> standardised log-mel frames, stacked -> bidirectional GRU/LSTM -> attention pooling
    -> accuracy / balanced accuracy on unseen voices, next to logistic regression on mean+std
       MFCCs and (for --label sex) a median-F0 threshold, both fitted on the training voices

Python API:

    >>> from rnnkit.tasks import voice
    >>> run = voice.train(voice.Options(label="sex", epochs=10), "runs/voice")
    >>> voice.load("runs/voice").classify_file("speech.wav")["prediction"]
"""

from .options import HELP, NAME, VoiceOptions
from .options import VoiceOptions as Options


def __getattr__(name: str):  # the model code (torch) loads on first use, not for `--help`
    import importlib

    if name.startswith("__") or name == "task":
        raise AttributeError(name)
    return getattr(importlib.import_module(f"{__name__}.task"), name)


__all__ = ["HELP", "NAME", "Options", "VoiceOptions", "train", "load"]
