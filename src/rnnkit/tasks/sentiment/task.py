"""The sentiment Task and the loaded Classifier. A run directory holds, besides the Trainer's
files: `vocab.json` (words, labels), `results.json` (test metrics, examples), `report.html`."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ...data.batching import fixed_batches, pad_ids, random_batches, token_dropout
from ...data.sentiment import Example, ExampleSplits, fit_vocab, load_source, words
from ...data.text import DataError
from ...data.vocab import Vocab
from ...export import mean_probabilities
from ...models.classical import bag_of_words_baseline, majority_class
from ...models.many_to_one import class_probabilities, most_attended, small_embeddings
from .. import driver, entry_points, malformed
from ..metrics import blas_threads, classification_metrics, known_labels, training_labels
from ..report import accuracy_section
from ..task import Fitted, Task
from .options import NAME, SentimentOptions
from .pretrain import pretrain, pretraining_texts

VOCAB_FILE = "vocab.json"
MAX_WORDS = 100  # longer sentences are cut (the VADER snippets have at most ~60 words)


@dataclass
class SentimentData:
    splits: ExampleSplits
    vocab: Vocab
    labels: list[str]
    summary: dict[str, Any]
    pretrain_texts: list[str] = field(default_factory=list)  # empty: no pretraining
    pretrained: dict[str, Any] | None = None  # what `pretrain` did (set by fit)


def encode(vocab: Vocab, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Sentences -> (ids (B, T) padded with 0, lengths (B,)); a wordless sentence is <unk>."""
    return pad_ids([(vocab.encode(t) or [1])[:MAX_WORDS] for t in texts])


def tensors(data: SentimentData, examples: Sequence[Example]) -> tuple[Tensor, Tensor, Tensor]:
    """(ids, label ids, lengths) of labelled examples."""
    ids, lengths = encode(data.vocab, [e.text for e in examples])
    return ids, torch.tensor([data.labels.index(e.label) for e in examples]), lengths


def batch_fn(data: SentimentData, size: int, word_dropout: float = 0.0):
    """Random training batches (with replacement) from the Trainer's generator; each word is
    read as <unk> with probability `word_dropout` (data.batching.token_dropout)."""
    drop = token_dropout(word_dropout) if word_dropout else None
    return random_batches(*tensors(data, data.splits.train), size, drop)


def build_classifier(options: SentimentOptions, vocab_size: int, n_labels: int):
    from ...config import HeadConfig, InputConfig, ManyToOneConfig, RNNConfig
    from ...models import build_model

    rnn = RNNConfig(options.cell, options.hidden, options.layers, bidirectional=True,
                    dropout=options.dropout if options.layers > 1 else 0.0)  # fmt: skip
    return small_embeddings(build_model(ManyToOneConfig(
        InputConfig("tokens", vocab_size, options.embedding, padding_idx=0),
        HeadConfig("softmax", n_labels, dropout=options.dropout), rnn, readout=options.readout,
    )), options.embedding_std)  # fmt: skip


class SentimentTask(Task):
    name = NAME
    title = "Sentiment"
    options = SentimentOptions
    requires = ("sklearn",)
    # runs recorded before these options: no pretraining, one model, no word dropout
    legacy_options = {"pretrain": "none", "ensemble": 1, "word_dropout": 0.0}

    def prepare(self, options: SentimentOptions) -> SentimentData:
        sp = load_source(options.data, options.text_column, options.label_column, options.limit)
        train, val, test = ([e.label for e in part] for part in sp.parts())
        labels = training_labels(sp.source, train, val=val, test=test)
        texts, described = [e.text for e in sp.train], "the training split"
        if options.pretrain != "none":
            texts, described = pretraining_texts(sp, options.pretrain, options.limit)
        # the words of the pretraining text: the LM gives vectors to words the labelled
        # training sentences never use
        vocab = fit_vocab(texts, min_count=options.min_count)
        summary = {"source": sp.source, "split": sp.describe(), "labels": labels,
                   "sizes": {"train": len(sp.train), "val": len(sp.val), "test": len(sp.test)},
                   "vocab_size": len(vocab), "vocab_from": described}  # fmt: skip
        if sp.skipped:
            summary["note"] = (f"{sp.skipped:,} rows of {sp.source} have an empty text or label "
                               "and were skipped")  # fmt: skip
        return SentimentData(sp, vocab, labels, summary,
                             texts if options.pretrain != "none" else [])  # fmt: skip

    def build(self, options: SentimentOptions, data: SentimentData):
        return build_classifier(options, len(data.vocab), len(data.labels))

    def files(self, options, data: SentimentData) -> dict[str, Any]:
        return {VOCAB_FILE: {"words": data.vocab.to_dict(), "labels": data.labels}}

    def train_config(self, options: SentimentOptions, data: SentimentData):
        steps = options.total_steps(-(-len(data.splits.train) // options.batch))
        return options.train_config(
            steps, schedule="cosine", min_lr_ratio=0.1, clip="norm", clip_value=1.0,
            eval_every=min(options.eval_every, steps), monitor="accuracy", monitor_mode="max",
            patience=options.patience, log_every=10,
        )  # fmt: skip

    def fit(self, ctx) -> Fitted:
        """The ensemble's members (driver.fit_members), each by fit_member. With --pretrain,
        each member's embedding and RNN start from the same pretrained language model
        (trained once, then read from the cache)."""
        fits, ended = driver.fit_members(self, ctx, ctx.options.ensemble, self.fit_member)
        return Fitted([f.model for f in fits], fits[0].trainer, ended)

    def fit_member(self, ctx) -> Fitted:
        """Language-model pretraining of the embedding and RNN (unless --pretrain none, or a
        resumed run, whose checkpoint holds the weights), then the classifier (driver.fit_one).
        A Ctrl-C during pretraining stops the classifier after its first step, as an
        interrupted run (exit 130, a checkpoint, the resume command)."""
        from ...training import Callback

        o, data, callbacks = ctx.options, ctx.data, ()
        if data.pretrain_texts and not ctx.resume:
            settings = {"cell": o.cell, "hidden": o.hidden, "layers": o.layers,
                        "embedding": o.embedding, "embedding_std": o.embedding_std,
                        "epochs": o.pretrain_epochs, "lr": o.lr, "seed": o.seed}  # fmt: skip
            if data.pretrained is None:
                ctx.say(f"pretraining a bidirectional language model on "
                        f"{data.summary['vocab_from']}")  # fmt: skip
            p = pretrain(ctx.model, data.vocab, data.pretrain_texts, settings, ctx.console,
                         ctx.config.progress, o.device)  # fmt: skip
            if data.pretrained is None:
                data.pretrained = p
                ctx.say(f"language model: {p['nll']:.3f} nats/word after {p['steps']:,} steps"
                        + (" (cached)" if p["cached"] else f", {p['seconds']:.0f} s"))  # fmt: skip
            if p["interrupted"]:

                class StopAtOnce(Callback):
                    def on_step_end(self, trainer, logs) -> None:
                        # the Trainer's own stop path; a second signal would abort at once
                        stop = getattr(signal.getsignal(signal.SIGINT), "__self__", None)
                        if getattr(stop, "received", None) is None:
                            signal.raise_signal(signal.SIGINT)

                callbacks = (StopAtOnce(),)
        return driver.fit_one(self, ctx, callbacks)

    def batches(self, options: SentimentOptions, data: SentimentData):
        val = fixed_batches(*tensors(data, data.splits.val or data.splits.train))
        return batch_fn(data, options.batch, options.word_dropout), val

    def evaluate(self, options, data: SentimentData, fitted: Fitted) -> dict[str, Any]:
        (train, val, test), labels = data.splits.parts(), data.labels
        clf = Classifier(fitted.model, data.vocab, labels)
        members = [Classifier([m], data.vocab, labels).evaluate(test)["accuracy"]
                   for m in fitted.model] if len(fitted.model) > 1 else []  # fmt: skip
        with blas_threads(options.threads):
            pipe, info = bag_of_words_baseline(train, val, labels)
        y_true = [labels.index(e.label) for e in test]
        y_base = [int(p) for p in pipe.predict([e.text for e in test])]
        return {
            "model": clf.evaluate(test),
            "baseline": {"name": "bag-of-words logistic regression (scikit-learn)",
                         **classification_metrics(y_true, y_base, len(labels)), **info},
            "majority": majority_class([e.label for e in train], [e.label for e in test]),
            "pretraining": data.pretrained,
            "member_accuracies": members,
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
                [f"bag-of-words logistic regression (C={b['C']})", b["accuracy"], b["macro_f1"]],
                [f"majority class ({maj['label']})", maj["accuracy"], ""]]  # fmt: skip
        return f"test split ({m['n']:,} sentences)", ["model", "accuracy", "macro-F1"], rows

    def report(self, r, run, results) -> None:
        opts, data = driver.run_record(run.extra)["options"], results["data"]
        pre = results.get("pretraining")
        lm = (f" Embedding and RNN pretrained as a bidirectional language model on "
              f"{data['vocab_from']} ({pre['nll']:.3f} nats/word after {pre['steps']:,} "
              "steps), then fine-tuned." if pre else "")  # fmt: skip
        vocab_from = data.get("vocab_from", "the training split")
        r.paragraph(f"{data['split']}. Labels: {', '.join(data['labels'])}. Vocabulary "
                    f"{data['vocab_size']:,} words from {vocab_from}. RNN: bidirectional "
                    f"{opts['cell'].upper()} {opts['hidden']}, "
                    f"{opts['readout']} pooling over the words.{lm}")  # fmt: skip
        title, header, rows = self.summary(results)
        accuracy_section(r, "Test split: model vs baselines", header, rows, data["labels"],
                         results["model"]["confusion"], run.evals("val"),
                         results["baseline"]["accuracy"])  # fmt: skip
        r.heading("Examples (test split)")
        r.table([[e["text"], e["label"], e["prediction"], e["probability"],
                  ", ".join(t for t, _ in e["attention"])] for e in results["examples"]],
                header=["sentence", "label", "predicted", "p", "most attended words"])  # fmt: skip

    def load(self, run) -> Classifier:
        data = run.read_json(VOCAB_FILE)
        with malformed(run, VOCAB_FILE):
            vocab, labels = Vocab.from_dict(data["words"]), list(data["labels"])
            if len(labels) != run.model_config.head.output_size:  # each output names a label
                raise ValueError(f"{len(labels)} labels for {run.model_config.head.output_size} "
                                 "outputs")  # fmt: skip
        return Classifier(driver.ensemble_models(run), vocab, labels)

    def export_model(self, run) -> nn.Module:
        """The members' mean class probabilities, as `load`'s predictor gives them."""
        return mean_probabilities(driver.ensemble_models(run))


@dataclass
class Classifier:
    """A trained sentiment run, loaded for prediction: the mean of its members' class
    probabilities (the attention shown is member 0's)."""

    models: list[Any]
    vocab: Vocab
    labels: list[str]

    def probabilities(self, texts: Sequence[str]) -> Tensor:
        """(N, C) class probabilities, averaged over the members."""
        ids, lengths = encode(self.vocab, texts)
        return sum(class_probabilities(m, ids, lengths) for m in self.models) / len(self.models)

    def classify(self, text: str) -> dict:
        """One sentence -> {"prediction", "probability", "probabilities", "attention", ...}."""
        if not text or not text.strip():
            raise DataError("the sentence is empty; pass some text to classify")
        toks = words(text)[:MAX_WORDS]
        if not toks:
            raise DataError(f"{text!r} has no words to classify (only punctuation or symbols)")
        probs = self.probabilities([text])[0]
        best = int(probs.argmax())
        return {
            "prediction": self.labels[best], "probability": float(probs[best]),
            "probabilities": {lab: float(p) for lab, p in zip(self.labels, probs, strict=True)},
            "attention": most_attended(self.models[0], toks),
            "known_words": sum(1 for t in toks if t in self.vocab.index), "words": len(toks),
        }  # fmt: skip

    def evaluate(self, examples: Sequence[Example]) -> dict:
        """Accuracy on labelled examples; DataError for labels the run never saw."""
        known_labels(self.labels, [e.label for e in examples])
        probs = self.probabilities([e.text for e in examples])
        return classification_metrics([self.labels.index(e.label) for e in examples],
                                      probs.argmax(-1).tolist(), len(self.labels))  # fmt: skip


TASK = SentimentTask()
train, load = entry_points(TASK)
