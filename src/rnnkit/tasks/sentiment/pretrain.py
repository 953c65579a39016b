"""Language-model pretraining of the classifier's own embedding and bidirectional RNN.

    sentences -> ids (B, T) -> classifier.input -> classifier.rnn (B, T, 2H)
    forward half at t predicts word t+1, backward half at t predicts word t-1
    (ELMo's bidirectional LM, Peters et al. 2018; one adaptive softmax shared by both
    directions, Grave et al. 2017, so a 10k-word output costs about a 2k-word one)

The weights of `input` and `rnn` are the classifier's modules themselves, so after
pretraining the classifier starts from them (ULMFiT, Howard & Ruder 2018; Dai & Le 2015).
The pretrained weights are cached under a key of everything they depend on (texts, vocabulary,
architecture, budget, seed), so a second run with the same data and seed reuses them.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...data.batching import pad_ids, random_batches
from ...data.text import DataError
from ...data.vocab import Vocab
from ...models.base import Batch, StepOutput, step_mask

MAX_WORDS = 100
LM_BATCH = 32


class BiLM(nn.Module):
    """A bidirectional word LM over a ManyToOne classifier's `input` and `rnn` modules.

    Call `loss(batch)` with batch (ids (B, T), unused, lengths (B,)); the mean negative
    log-likelihood per predicted word of both directions together.
    """

    def __init__(self, classifier: nn.Module, vocab_size: int):
        super().__init__()
        self.input, self.rnn = classifier.input, classifier.rnn
        width = self.rnn.output_size // 2
        # cutoffs: the 2,000 most frequent words in the head, the rest in two smaller clusters
        cuts = [c for c in (2000, 8000) if c < vocab_size - 1]
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(width, vocab_size, cuts or [vocab_size - 1],
                                                     div_value=4.0)  # fmt: skip

    def loss(self, batch: Any, state: Any = None) -> StepOutput:
        batch = Batch.of(batch)
        x, lengths = batch.inputs, batch.lengths
        B, T = x.shape
        out, _ = self.rnn(self.input(x), None, lengths)  # (B, T, 2H)
        H = out.shape[-1] // 2
        mask = step_mask(lengths, B, T, x.device)
        valid = mask[:, 1:] & mask[:, :-1]  # pairs of real words (t, t+1)
        # forward state after word t predicts t+1; backward state at t+1 predicts t
        hidden = torch.cat([out[:, :-1, :H][valid], out[:, 1:, H:][valid]])
        target = torch.cat([x[:, 1:][valid], x[:, :-1][valid]])
        if len(target) == 0:  # one-word sentences only
            return StepOutput(out.sum() * 0.0, 1, None, {}, "tokens")
        nll = self.softmax(hidden, target).loss
        n = len(target)
        return StepOutput(nll, n, None, {"nll": (float(nll.detach()) * n, float(n))}, "tokens")


def lm_tensors(vocab: Vocab, texts: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
    """(ids (N, T), dummy targets (N,), lengths (N,)) of the sentences with at least 2 words."""
    seqs = [s[:MAX_WORDS] for s in (vocab.encode(t) for t in texts) if len(s) >= 2]
    if not seqs:
        seqs = [[1, 1]]
    ids, lengths = pad_ids(seqs)
    return ids, torch.zeros(len(seqs), dtype=torch.long), lengths


def cache_key(texts: Sequence[str], vocab: Vocab, settings: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(json.dumps(vocab.to_dict(), sort_keys=True).encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\n")
    return h.hexdigest()[:20]


def cache_dir() -> Path:
    """Where pretrained weights are kept: $RNNKIT_CACHE/sentiment-lm, else
    ~/.cache/rnnkit/sentiment-lm."""
    root = os.environ.get("RNNKIT_CACHE") or Path.home() / ".cache" / "rnnkit"
    return Path(root) / "sentiment-lm"


@functools.lru_cache(maxsize=8)
def vader_texts(corpus: str) -> tuple[str, ...]:
    """The sentences of one VADER corpus (read once per process: the archive is nested)."""
    from ...data.sentiment import load_vader

    return tuple(e.text for e in load_vader(corpus))


def pretraining_texts(splits: Any, source: str, limit: int | None) -> tuple[list[str], str]:
    """(the sentences to pretrain on, what they are).

    source "train": the training split's sentences. "vader": those and the sentences of the
    four VADER corpora (movies, tweets, Amazon, NYT; their texts only, never their scores),
    except any sentence of the validation or test split, so pretraining never reads a sentence
    the model is chosen or scored on. `limit` keeps the first N sentences of each corpus (tiny
    runs). Without the VADER archive installed, "vader" falls back to the training sentences.
    """
    from ...data.sentiment import CORPORA

    texts = [e.text for e in splits.train]
    if source != "vader":
        return texts, f"the {len(texts):,} training sentences"
    held = {e.text for e in splits.val} | {e.text for e in splits.test}
    seen = set(texts) | held
    for corpus in CORPORA:
        try:
            found = vader_texts(corpus)
        except DataError:
            return texts[: len(splits.train)], (
                f"the {len(splits.train):,} training sentences (the VADER archive is not "
                "installed)")
        extra = [t for t in found if t not in seen]
        seen.update(extra)
        texts += extra[:limit]
    return texts, (f"{len(texts):,} sentences: the training split and the VADER movie, tweet, "
                   "Amazon and NYT texts, without the validation and test sentences")


def pretrain(
    classifier: nn.Module, vocab: Vocab, texts: Sequence[str], settings: dict[str, Any],
    console: Any = None, progress: bool = True, device: str = "cpu",
) -> dict[str, Any]:
    """Train `classifier`'s embedding and RNN as a bidirectional LM on `texts`, in place, or
    load them from the cache when the same texts, vocabulary and settings were pretrained
    before. settings: epochs, lr, seed and the architecture (part of the cache key). It trains
    on `device` (another than the CPU is part of the key too); `classifier` is left on the CPU.

    Returns {"sentences", "words", "steps", "seconds", "nll" (final, nats/word), "cached",
    "interrupted"}; an interrupted pretraining (Ctrl-C, SIGTERM) is not cached.
    The global RNG is left as it was, so a cached and an uncached run fine-tune alike.
    """
    import time

    from ...algorithms import BPTT
    from ...atomic import atomic_write_bytes, atomic_write_json
    from ...config import TrainConfig
    from ...training import Trainer

    x = lm_tensors(vocab, texts)
    steps = max(1, round(settings["epochs"] * len(x[0]) / LM_BATCH))
    on = torch.device(device)
    where = {} if on.type == "cpu" else {"device": on.type}  # CPU keys as before
    key = cache_key(texts, vocab, {**settings, "steps": steps, "format": 1, **where})
    weights, meta = cache_dir() / f"{key}.pt", cache_dir() / f"{key}.json"
    parts = {"input": classifier.input, "rnn": classifier.rnn}
    if weights.is_file() and meta.is_file():
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            for name, module in parts.items():
                module.load_state_dict(state[name])
            return {**json.loads(meta.read_text()), "cached": True, "interrupted": False}
        except (OSError, RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError):
            pass  # a damaged cache entry: pretrain again and replace it
    lm = BiLM(classifier, len(vocab))
    config = TrainConfig(steps=steps, lr=settings["lr"], schedule="cosine", min_lr_ratio=0.1,
                         clip="norm", clip_value=1.0, log_every=50, seed=settings["seed"],
                         progress=progress)  # fmt: skip
    start = time.perf_counter()
    with torch.random.fork_rng():
        torch.manual_seed(settings["seed"])
        trainer = Trainer(lm, BPTT(), config, console=console, device=on)
        fit = trainer.fit(random_batches(*x, LM_BATCH))
        with torch.no_grad():
            lm.eval()
            sample = random_batches(*x, 1024)(0, torch.Generator().manual_seed(0))
            nll = float(lm.loss(Batch.of(sample).to(on)).loss)
        lm.cpu()
    info = {"sentences": len(x[0]), "words": int(x[2].sum()), "steps": steps,
            "seconds": round(time.perf_counter() - start, 1), "nll": round(nll, 4)}  # fmt: skip
    if fit.status == "interrupted":
        return {**info, "steps": fit.step, "cached": False, "interrupted": True}
    buf = io.BytesIO()
    torch.save({name: module.state_dict() for name, module in parts.items()}, buf)
    cache_dir().mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(weights, buf.getvalue())
    atomic_write_json(meta, info)
    return {**info, "cached": False, "interrupted": False}
