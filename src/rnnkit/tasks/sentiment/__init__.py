"""Sentiment classification: many-to-one over words, against a bag-of-words baseline.

    sentences (VADER movie reviews, or a user's CSV) -> hash split train/val/test
    -> word vocabulary from the training split only
    -> embedding -> bidirectional GRU/LSTM -> pooling over words -> softmax over labels
    -> best weights on validation accuracy
    -> test accuracy / macro-F1 next to a bag-of-words logistic regression fitted on the same
       training split in the same run -> report.html

Python API:

    >>> from rnnkit.tasks import sentiment
    >>> run = sentiment.train(sentiment.Options(epochs=1), "runs/sentiment")
    >>> run.results["model"]["accuracy"], run.results["baseline"]["accuracy"]
    >>> clf = sentiment.load("runs/sentiment")
    >>> clf.classify("a wonderful film")["prediction"]
"""

from .options import HELP, NAME, SentimentOptions
from .options import SentimentOptions as Options


def __getattr__(name: str):  # the model code (torch) loads on first use, not for `--help`
    import importlib

    if name.startswith("__") or name == "task":
        raise AttributeError(name)
    return getattr(importlib.import_module(f"{__name__}.task"), name)


__all__ = ["HELP", "NAME", "Options", "SentimentOptions", "train", "load"]
