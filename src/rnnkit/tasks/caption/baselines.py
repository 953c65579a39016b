"""The captioning baselines: the caption of the nearest training picture (in pixel space or
in the CNN's feature space), and, for digits, a per-digit classifier on oracle segments."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ...data.images import WORDS, CaptionImages, crop_digits

CHUNK = 512  # pictures per distance block: bounds memory at CHUNK x N_train floats


@torch.no_grad()
def nearest(train: Tensor, query: Tensor) -> list[int]:
    """Index of the nearest (Euclidean) row of `train` (N, F) for each row of `query` (M, F)."""
    norms = (train * train).sum(1)  # (N,)
    out = []
    for i in range(0, len(query), CHUNK):
        q = query[i : i + CHUNK]
        d = norms[None, :] - 2 * q @ train.T  # |q|^2 is the same for every candidate
        out.extend(d.argmin(1).tolist())
    return out


@torch.no_grad()
def embed(fn: Callable[[Tensor], Tensor], images: np.ndarray) -> Tensor:
    """Pictures (N, C, H, W) uint8 -> fn(floats in 0..1) rows, CHUNK at a time."""
    rows = [fn(torch.from_numpy(images[i : i + CHUNK]).float() / 255)
            for i in range(0, len(images), CHUNK)]  # fmt: skip
    return torch.cat(rows)


def nearest_captions(train: CaptionImages, test: CaptionImages,
                     fn: Callable[[Tensor], Tensor]) -> list[str]:  # fmt: skip
    """The caption of the training picture nearest to each test picture under `fn`."""
    index = nearest(embed(fn, train.images), embed(fn, test.images))
    return [" ".join(train.captions[j]) for j in index]


def oracle_digits(train: CaptionImages, test: CaptionImages, limit: int = 20000) -> dict:
    """A logistic regression on 8x8 digit crops at the true boxes (the oracle segmentation),
    fitted on up to `limit` digits of the training pictures: the test captions it reads,
    and its per-digit accuracy. An upper bound: the captioner is given no boxes."""
    from sklearn.linear_model import LogisticRegression

    x, _ = crop_digits(train)
    y = np.array([WORDS.index(w) for c in train.captions for w in c])
    clf = LogisticRegression(max_iter=500, C=1.0).fit(x[:limit], y[:limit])
    xt, owner = crop_digits(test)
    pred = clf.predict(xt)
    truth = [WORDS.index(w) for c in test.captions for w in c]
    words: list[list[str]] = [[] for _ in range(len(test))]
    for i, p in zip(owner, pred.tolist(), strict=True):
        words[i].append(WORDS[p])
    return {"captions": [" ".join(w) for w in words],
            "digit_accuracy": float(np.mean(pred == np.array(truth))),
            "fitted_on": int(min(limit, len(y)))}  # fmt: skip
