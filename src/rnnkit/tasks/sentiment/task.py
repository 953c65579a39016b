"""The sentiment Task: data, model, baseline, report, and the loaded Classifier.

A run directory holds, besides the Trainer's files: `vocab.json` (words and labels),
`results.json` (test metrics of both models, examples) and `report.html`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...data.sentiment import (
    CORPORA,
    Example,
    ExampleSplits,
    fit_vocab,
    load_csv,
    load_vader,
    split_examples,
    words,
)
from ...data.text import DataError
from ...data.vocab import Vocab
from .. import driver
from ..metrics import blas_threads, classification_metrics, known_labels, training_labels
from ..task import Fitted, Task
from .options import NAME, SentimentOptions

VOCAB_FILE = "vocab.json"
MAX_WORDS = 100  # longer sentences are cut (the VADER snippets have at most ~60 words)


@dataclass
class SentimentData:
    splits: ExampleSplits
    vocab: Vocab
    labels: list[str]
    summary: dict[str, Any]


def load_examples(options: SentimentOptions) -> ExampleSplits:
    """The examples `options.data` names, split deterministically (see data.sentiment)."""
    spec = options.data
    if spec is None or (spec in CORPORA and not Path(spec).exists()):
        corpus = spec or "movies"
        splits = split_examples(load_vader(corpus), f"VADER {corpus} (vaderSentiment 3.3.2)")
    else:
        splits = split_examples(load_csv(spec, options.text_column, options.label_column), spec)
    return splits.limited(options.limit)


def encode_batch(vocab: Vocab, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Sentences -> (ids (B, T) padded with 0, lengths (B,)); a wordless sentence is <unk>."""
    seqs = [(vocab.encode(t) or [1])[:MAX_WORDS] for t in texts]
    ids = torch.zeros(len(seqs), max(len(s) for s in seqs), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    return ids, torch.tensor([len(s) for s in seqs])


def batch_fn(
    data: SentimentData, size: int, word_dropout: float = 0.0
) -> Callable[[int, torch.Generator], tuple]:
    """Random training batches (with replacement) drawn from the Trainer's generator.

    `word_dropout`: each word is read as <unk> with this probability (a fresh draw per batch),
    so the network cannot lean on a few rare words it has memorised.
    """
    train, index = data.splits.train, {lab: i for i, lab in enumerate(data.labels)}

    def make(step: int, gen: torch.Generator) -> tuple:
        pick = torch.randint(0, len(train), (min(size, len(train)),), generator=gen).tolist()
        ids, lengths = encode_batch(data.vocab, [train[i].text for i in pick])
        if word_dropout > 0:
            drop = (torch.rand(ids.shape, generator=gen) < word_dropout) & (ids > 0)  # (B, T)
            ids = ids.masked_fill(drop, 1)
        return ids, torch.tensor([index[train[i].label] for i in pick]), lengths

    return make


def build_classifier(options: SentimentOptions, vocab_size: int, n_labels: int):
    from ...config import HeadConfig, InputConfig, ManyToOneConfig, RNNConfig
    from ...models import build_model

    rnn = RNNConfig(options.cell, options.hidden, options.layers, bidirectional=True,
                    dropout=options.dropout if options.layers > 1 else 0.0)  # fmt: skip
    model = build_model(ManyToOneConfig(
        InputConfig("tokens", vocab_size, options.embedding, padding_idx=0),
        HeadConfig("softmax", n_labels, dropout=options.dropout), rnn, readout=options.readout,
    ))  # fmt: skip
    # torch starts word vectors at N(0, 1); ~1,000 Adam steps move each weight by about lr a
    # step, so rare words would keep a large random vector. Small ones let useful words grow.
    with torch.no_grad():
        model.input.embedding.weight.normal_(0.0, options.embedding_std)
        model.input.embedding.weight[0].zero_()  # <pad>
    return model


@torch.no_grad()
def predict_proba(model, vocab: Vocab, texts: Sequence[str], size: int = 256) -> Tensor:
    """Class probabilities (N, C) for sentences."""
    model.eval()
    out = []
    for i in range(0, len(texts), size):
        ids, lengths = encode_batch(vocab, texts[i : i + size])
        out.append(torch.softmax(model(ids, lengths=lengths)[0].float(), -1))
    return torch.cat(out) if out else torch.zeros(0, 0)


def fixed_batches(data: SentimentData, examples: list[Example], size: int = 256) -> list[tuple]:
    """Batches (ids, targets, lengths) in order: for evaluation."""
    index = {lab: i for i, lab in enumerate(data.labels)}
    out = []
    for i in range(0, len(examples), size):
        part = examples[i : i + size]
        ids, lengths = encode_batch(data.vocab, [e.text for e in part])
        out.append((ids, torch.tensor([index[e.label] for e in part]), lengths))
    return out


def bag_of_words_baseline(
    train: Sequence[Example], val: Sequence[Example], labels: Sequence[str]
) -> tuple[Any, dict]:
    """Logistic regression on binary word counts (the same `words` tokens the network reads);
    C picked on the validation split from a small grid. Returns (pipeline, info)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    index = {lab: i for i, lab in enumerate(labels)}
    x_train, y_train = [e.text for e in train], [index[e.label] for e in train]
    scores: dict[float, float] = {}
    best = None
    for C in (0.1, 0.3, 1.0, 3.0, 10.0) if val else (1.0,):
        pipe = make_pipeline(
            CountVectorizer(tokenizer=words, lowercase=False, token_pattern=None, binary=True),
            LogisticRegression(C=C, max_iter=2000),
        ).fit(x_train, y_train)
        if val:
            pred = pipe.predict([e.text for e in val])
            scores[C] = sum(int(p == index[e.label]) for p, e in zip(pred, val, strict=True))
            scores[C] /= len(val)
        if best is None or (val and scores[C] > scores[best[0]]):
            best = (C, pipe)
    assert best is not None
    return best[1], {"C": best[0], "val_accuracy_by_C": {str(k): v for k, v in scores.items()}}


class SentimentTask(Task):
    name = NAME
    title = "Sentiment"
    options = SentimentOptions
    requires = ("sklearn",)

    def prepare(self, options: SentimentOptions) -> SentimentData:
        splits = load_examples(options)
        labels = training_labels(splits.source, [e.label for e in splits.train],
                                 val=[e.label for e in splits.val],
                                 test=[e.label for e in splits.test])  # fmt: skip
        vocab = fit_vocab((e.text for e in splits.train), min_count=options.min_count)
        summary = {"source": splits.source, "split": splits.describe(),
                   "sizes": {"train": len(splits.train), "val": len(splits.val),
                             "test": len(splits.test)},
                   "labels": labels, "vocab_size": len(vocab)}  # fmt: skip
        return SentimentData(splits, vocab, labels, summary)

    def build(self, options: SentimentOptions, data: SentimentData):
        return build_classifier(options, len(data.vocab), len(data.labels))

    def files(self, options, data: SentimentData) -> dict[str, Any]:
        return {VOCAB_FILE: {"words": data.vocab.to_dict(), "labels": data.labels}}

    def train_config(self, options: SentimentOptions, data: SentimentData):
        from ...config import TrainConfig

        steps = options.total_steps(-(-len(data.splits.train) // options.batch))
        return TrainConfig(
            steps=steps, time_minutes=options.minutes, batch_size=options.batch,
            optimizer="adamw" if options.weight_decay > 0 else "adam", lr=options.lr,
            weight_decay=options.weight_decay, schedule="cosine", min_lr_ratio=0.1,
            clip="norm", clip_value=1.0, eval_every=min(options.eval_every, steps),
            monitor="accuracy", monitor_mode="max", patience=options.patience, log_every=10,
            seed=options.seed,
        )  # fmt: skip

    def batches(self, options: SentimentOptions, data: SentimentData):
        val = fixed_batches(data, data.splits.val or data.splits.train)
        return batch_fn(data, options.batch, options.word_dropout), val

    def evaluate(self, options, data: SentimentData, fitted: Fitted) -> dict[str, Any]:
        test, labels = data.splits.test, data.labels
        index = {lab: i for i, lab in enumerate(labels)}
        y_true = [index[e.label] for e in test]
        probs = predict_proba(fitted.model, data.vocab, [e.text for e in test])
        model = classification_metrics(y_true, probs.argmax(-1).tolist(), len(labels))
        with blas_threads(options.threads):
            pipe, info = bag_of_words_baseline(data.splits.train, data.splits.val, labels)
        y_base = [int(p) for p in pipe.predict([e.text for e in test])]
        baseline = {"name": "bag-of-words logistic regression (scikit-learn)",
                    **classification_metrics(y_true, y_base, len(labels)), **info}  # fmt: skip
        counts = [sum(1 for e in data.splits.train if e.label == lab) for lab in labels]
        majority = counts.index(max(counts))
        clf = Classifier(fitted.model, data.vocab, labels)
        return {
            "model": model, "baseline": baseline,
            "majority": {"label": labels[majority],
                         "accuracy": sum(1 for y in y_true if y == majority) / len(y_true)},
            "examples": [{"text": e.text, "label": e.label, **clf.classify(e.text)}
                         for e in test[:8]],
        }  # fmt: skip

    def test_metrics(self, results):
        m, b = results["model"], results["baseline"]
        return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                "baseline_accuracy": b["accuracy"], "baseline_macro_f1": b["macro_f1"]}  # fmt: skip

    def summary(self, results):
        m, b, maj = results["model"], results["baseline"], results["majority"]
        rows = [["RNN", m["accuracy"], m["macro_f1"]],
                ["bag-of-words logistic regression", b["accuracy"], b["macro_f1"]],
                [f"majority ({maj['label']})", maj["accuracy"], ""]]  # fmt: skip
        return f"test split ({m['n']:,} sentences)", ["model", "accuracy", "macro-F1"], rows

    def report(self, r, run, results) -> None:
        from ..report import bar_plot, line_plot

        opts, data = driver.run_record(run.extra)["options"], results["data"]
        m, b, maj = results["model"], results["baseline"], results["majority"]
        r.paragraph(f"{data['split']}. Labels: {', '.join(data['labels'])}. Vocabulary "
                    f"{data['vocab_size']:,} words from the training split only.")  # fmt: skip
        r.heading("Test split: model vs baseline")
        r.table([[f"bidirectional {opts['cell'].upper()} {opts['hidden']} + "
                  f"{opts['readout']} pooling", m["accuracy"], m["macro_f1"]],
                 [f"bag-of-words logistic regression (C={b['C']})", b["accuracy"], b["macro_f1"]],
                 [f"majority class ({maj['label']})", maj["accuracy"], ""]],
                header=["model", "accuracy", "macro-F1"])  # fmt: skip
        accs = {"RNN": m["accuracy"], "bag-of-words LR": b["accuracy"], "majority": maj["accuracy"]}
        r.figure(bar_plot(accs, "test accuracy"), "test accuracy, model vs baselines (same split)")
        r.table([[f"true {lab}", *row] for lab, row in zip(data["labels"], m["confusion"],
                                                            strict=True)],
                header=["RNN", *[f"pred {lab}" for lab in data["labels"]]])  # fmt: skip
        val = run.evals("val")
        steps = [x["step"] for x in val]
        r.figure(line_plot({"val accuracy": (steps, [x["accuracy"] for x in val]),
                            "baseline (test)": (steps, [b["accuracy"]] * len(val))},
                           xlabel="step", ylabel="accuracy", markers=True),
                 "validation accuracy during training; the baseline's test accuracy")  # fmt: skip
        r.heading("Examples (test split)")
        r.table([[e["text"], e["label"], e["prediction"], e["probability"],
                  ", ".join(t for t, _ in e["attention"])] for e in results["examples"]],
                header=["sentence", "label", "predicted", "p", "most attended words"])  # fmt: skip

    def load(self, run) -> Classifier:
        from ...training import RunError

        data = run.read_json(VOCAB_FILE)
        try:
            vocab, labels = Vocab.from_dict(data["words"]), list(data["labels"])
        except (KeyError, TypeError, DataError) as err:
            raise RunError(f"{run.path}/{VOCAB_FILE}: malformed ({err})") from None
        return Classifier(run.model, vocab, labels)


@dataclass
class Classifier:
    """A trained sentiment run, loaded for prediction."""

    model: Any
    vocab: Vocab
    labels: list[str]

    def classify(self, text: str) -> dict:
        """One sentence -> {"prediction", "probability", "probabilities", "attention", ...}."""
        if not text or not text.strip():
            raise DataError("the sentence is empty; pass some text to classify")
        toks = words(text)[:MAX_WORDS]
        if not toks:
            raise DataError(f"{text!r} has no words to classify (only punctuation or symbols)")
        probs = predict_proba(self.model, self.vocab, [text])[0]
        best = int(probs.argmax())
        weights = getattr(self.model, "attention_weights", None)
        attention = [] if weights is None else sorted(
            zip(toks, weights[0, : len(toks)].tolist(), strict=True), key=lambda tw: -tw[1])[:5]
        return {
            "prediction": self.labels[best], "probability": float(probs[best]),
            "probabilities": {lab: float(p) for lab, p in zip(self.labels, probs, strict=True)},
            "attention": [[t, round(float(w), 4)] for t, w in attention],
            "known_words": sum(1 for t in toks if t in self.vocab.index), "words": len(toks),
        }  # fmt: skip

    def evaluate(self, examples: Sequence[Example]) -> dict:
        """Accuracy on labelled examples; DataError for labels the run never saw."""
        known_labels(self.labels, [e.label for e in examples])
        index = {lab: i for i, lab in enumerate(self.labels)}
        probs = predict_proba(self.model, self.vocab, [e.text for e in examples])
        return classification_metrics([index[e.label] for e in examples],
                                      probs.argmax(-1).tolist(), len(self.labels))  # fmt: skip


TASK = SentimentTask()


def train(options: SentimentOptions, out: str | Path, **kwargs: Any):
    """Train the classifier and the baseline on one split; see rnnkit.tasks.driver.train."""
    return driver.train(TASK, options, out, **kwargs)


def load(run_dir: str | Path) -> Classifier:
    """A `train sentiment` run, loaded for `classify` and `evaluate`."""
    return driver.load(run_dir, NAME)
