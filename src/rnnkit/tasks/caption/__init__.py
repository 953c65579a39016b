"""Image captioning: a CNN encoder and an attention RNN decoder (Show, Attend and Tell).

Two data sets (`--data`, both in rnnkit.data.images):
    digits   1-5 of scikit-learn's real 8x8 digit scans side by side at random scale and
             spacing, captioned with number words ("four two seven"); the test split uses
             scans never seen in training and sequences never seen in training
    emoji    every emoji of Noto Color Emoji and its skin tones (~2,000), rendered at random
             size, rotation, position and background, captioned with its Unicode name;
             split by rendering

    pictures -> CNN feature map (B, L, D) + positions -> attention LSTM/GRU decoder
    (teacher forcing) -> best weights on validation loss
    -> beam and greedy captions of the test split: exact match, sacrebleu BLEU and chrF
    -> the same for the nearest training picture's caption (in pixel space and in the CNN's
       feature space) and, for digits, a logistic regression on oracle-segmented digits
    -> report.html with attention maps

Python API:

    >>> from rnnkit.tasks import caption
    >>> run = caption.train(caption.Options(steps=1500), "runs/digits")
    >>> run.results["model"]["exact_match"], run.results["nn_pixels"]["exact_match"]
    >>> captioner = caption.load("runs/digits")
    >>> captioner.caption("three-digits.png")["caption"]
    'four two seven'
"""

from .options import HELP, NAME, CaptionOptions
from .options import CaptionOptions as Options


def __getattr__(name: str):  # the model code (torch) loads on first use, not for `--help`
    import importlib

    if name.startswith("__") or name == "task":
        raise AttributeError(name)
    return getattr(importlib.import_module(f"{__name__}.task"), name)


__all__ = ["HELP", "NAME", "CaptionOptions", "Options", "train", "load"]
