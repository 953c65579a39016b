"""Sentiment's language-model pretraining: the bidirectional LM's alignment (no word predicts
itself), what it reads (never the validation or test sentences), and the cache."""

from __future__ import annotations

import math
import random

import torch

from rnnkit.data.sentiment import Example, ExampleSplits, fit_vocab, load_source
from rnnkit.tasks.sentiment import pretrain as pt
from rnnkit.tasks.sentiment.task import SentimentOptions, build_classifier

WORDS = "alpha beta gamma delta eps zeta eta theta".split()


def lm_after(texts: list[str], steps: int = 30) -> float:
    """A tiny BiLM's loss (nats/word) on `texts` after `steps` Adam updates."""
    torch.manual_seed(0)
    vocab = fit_vocab(texts, min_count=1)
    lm = pt.BiLM(build_classifier(SentimentOptions(hidden=16, embedding=8), len(vocab), 2),
                 len(vocab))  # fmt: skip
    batches = pt.random_batches(*pt.lm_tensors(vocab, texts), 32)
    opt, gen = torch.optim.Adam(lm.parameters(), lr=2e-2), torch.Generator().manual_seed(0)
    for step in range(steps):
        opt.zero_grad()
        lm.loss(batches(step, gen)).loss.backward()
        opt.step()
    with torch.no_grad():
        return float(lm.loss(batches(0, gen)).loss)


def test_each_direction_predicts_a_word_it_has_not_read():
    rng = random.Random(0)
    iid = [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(64)]
    # independent words cannot be predicted: a state that had read its target would reach ~0
    assert lm_after(iid) > 0.85 * math.log(len(WORDS))
    # a cycle is predictable both ways (forward: the next word, backward: the previous one)
    cycle = [" ".join(WORDS[(s + i) % 8] for i in range(8)) for s in range(64)]
    assert lm_after(cycle) < 0.4


def test_pretraining_text_leaves_out_validation_and_test_sentences():
    ex = [Example(f"sentence {i}", "positive" if i % 2 else "negative") for i in range(6)]
    splits = ExampleSplits(ex[:4], ex[4:5], ex[5:], "toy")
    assert pt.pretraining_texts(splits, "train", None)[0] == [e.text for e in ex[:4]]
    texts, _ = pt.pretraining_texts(splits, "vader", 30)
    assert texts[:4] == [e.text for e in ex[:4]] and len(texts) == 4 + 4 * 30
    assert "sentence 4" not in texts and "sentence 5" not in texts
    movies = load_source(None)
    held = {e.text for e in movies.val + movies.test}
    texts = pt.pretraining_texts(movies, "vader", None)[0]
    assert len(texts) > 20000 and not held & set(texts)
    assert held <= set(pt.vader_texts("movies"))  # they were there to leave out


def test_pretrained_weights_are_cached_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    texts = [" ".join(WORDS[(s + i) % 8] for i in range(6)) for s in range(16)]
    vocab = fit_vocab(texts, min_count=1)
    settings = {"epochs": 2.0, "lr": 1e-2, "seed": 0}

    def pretrained():
        model = build_classifier(SentimentOptions(hidden=8, embedding=8), len(vocab), 2)
        return model, pt.pretrain(model, vocab, texts, settings, progress=False)

    first, info = pretrained()
    again, info2 = pretrained()
    assert not info["cached"] and info2["cached"] and info2["nll"] == info["nll"]
    for a, b in zip(first.rnn.parameters(), again.rnn.parameters(), strict=True):
        assert torch.equal(a, b)
    assert len(list((tmp_path / "sentiment-lm").glob("*.pt"))) == 1
    (next((tmp_path / "sentiment-lm").glob("*.pt"))).write_bytes(b"damaged")
    assert not pretrained()[1]["cached"]  # a damaged entry is made again


def test_without_pretraining_the_vocabulary_is_the_training_split_s():
    from rnnkit.tasks.sentiment.task import TASK

    data = TASK.prepare(SentimentOptions(limit=40, pretrain="none"))
    assert data.pretrain_texts == [] and data.summary["vocab_from"] == "the training split"
    wider = TASK.prepare(SentimentOptions(limit=40, pretrain="vader", min_count=1))
    assert len(wider.pretrain_texts) == 40 + 4 * 40 and len(wider.vocab) > len(data.vocab)
