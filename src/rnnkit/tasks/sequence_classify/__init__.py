"""Sequence classification: labelled real-valued sequences -> an ensemble of recurrent
classifiers with an optional convolutional front end, against 1-NN and MiniRocket baselines.

    sequences (any labelled UCR/UEA problem shipped inside aeon, or a user's CSV/NPZ:
    rnnkit.data.archives) -> standard train/test split
    -> automatic settings, from the training split alone: pool = longest series / 512 and
       patch = longest pooled series / 64 (both rounded up); front end (conv or none) x
       normalisation (per series with its level and scale beside, or per channel) scored on
       a stratified validation part of train (results.json["auto"] has every score)
    -> frames (B, T, D), each the mean of `pool` samples, beside their first differences
       (B, T, 2D; --no-diff: without) -> FCN conv blocks on every frame
       -> their mean over each patch of P frames (B, T/P, F) (--conv-on patches: the conv
       blocks read the concatenated patches instead) -> bidirectional GRU
    -> mean readout + the conv features' mean -> softmax; N members seeded independently,
       trained on all of train, their softmax averaged
    -> test accuracy next to 1-NN Euclidean, 1-NN DTW and MiniRocket (computed in the same
       run, each timed) and the published 1-NN DTW figure -> report.html

`cross_validate` scores options by stratified k-fold on the training split alone.

Python API:

    >>> from rnnkit.tasks import sequence_classify as sc
    >>> run = sc.train(sc.Options(data="ItalyPowerDemand"), "runs/italy")
    >>> run.results["test_accuracy"], run.results["baselines"]["1nn_dtw"]
    >>> run.results["auto"]  # the settings chosen, and the validation scores that chose them
    >>> clf = sc.load("runs/italy")
    >>> clf.classify([sequence])  # (T, D) arrays -> [(label, probability)]
"""

from .. import lazy
from .options import HELP, NAME, SequenceClassifyOptions
from .options import SequenceClassifyOptions as Options

__getattr__ = lazy(__name__)

__all__ = ["HELP", "NAME", "Options", "SequenceClassifyOptions", "train", "load", "cross_validate"]
