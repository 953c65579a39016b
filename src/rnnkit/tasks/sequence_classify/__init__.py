"""Sequence classification: labelled real-valued sequences -> an ensemble of recurrent
classifiers, against 1-NN baselines.

    sequences (aeon archive problem, or a user's CSV/NPZ: rnnkit.data.archives) -> standard
    train/test split [-> stratified validation part of train] -> channels standardised with
    training-split statistics (scaler.json)
    -> frames (B, T, D), lengths (B,) -> bidirectional GRU/LSTM -> mean/attention readout
    -> softmax; N members seeded independently, their softmax averaged
    -> test accuracy next to 1-NN Euclidean (computed in the same run) and the published
       1-NN DTW figure -> report.html

Speaker recognition (JapaneseVowels), activity recognition (BasicMotions), univariate
problems (GunPoint, ItalyPowerDemand). On training sets of 40-70 cases the ensemble removes
most of the seed-to-seed spread; `cross_validate` scores options by stratified k-fold on the
training split alone (the defaults were chosen with it, never on a test split).

Python API:

    >>> from rnnkit.tasks import sequence_classify as sc
    >>> run = sc.train(sc.Options(data="ItalyPowerDemand"), "runs/italy")
    >>> run.results["test_accuracy"], run.results["baselines"]["1nn_euclidean"]
    >>> clf = sc.load("runs/italy")
    >>> clf.classify([sequence])  # (T, D) arrays -> [(label, probability)]
"""

from .. import lazy
from .options import HELP, NAME, SequenceClassifyOptions
from .options import SequenceClassifyOptions as Options

__getattr__ = lazy(__name__)

__all__ = ["HELP", "NAME", "Options", "SequenceClassifyOptions", "train", "load", "cross_validate"]
