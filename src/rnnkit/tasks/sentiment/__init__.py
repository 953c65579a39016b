"""Sentiment classification: many-to-one over words, against a bag-of-words baseline.

    sentences (VADER movie reviews, or a user's CSV) -> hash split train/val/test
    -> word vocabulary from the training split only (with --pretrain: from the pretraining
       text, which never holds a validation or test sentence)
    -> [--pretrain vader|train: the embedding and RNN trained first as a bidirectional
       language model, cached by text and settings (tasks/sentiment/pretrain.py)]
    -> embedding (training words read as <unk> with p = --word-dropout) -> bidirectional
       GRU/LSTM -> pooling over words -> softmax over labels
    -> best weights on validation accuracy, for each of --ensemble N seeded members
    -> the members' mean probabilities: test accuracy / macro-F1 next to a bag-of-words
       logistic regression fitted on the same training split in the same run -> report.html

Python API:

    >>> from rnnkit.tasks import sentiment
    >>> run = sentiment.train(sentiment.Options(epochs=1), "runs/sentiment")
    >>> run.results["model"]["accuracy"], run.results["baseline"]["accuracy"]
    >>> clf = sentiment.load("runs/sentiment")
    >>> clf.classify("a wonderful film")["prediction"]
"""

from .. import lazy
from .options import HELP, NAME, SentimentOptions
from .options import SentimentOptions as Options

__getattr__ = lazy(__name__)

__all__ = ["HELP", "NAME", "Options", "SentimentOptions", "train", "load"]
