"""Sentiment classification: many-to-one over words, against a bag-of-words baseline.

    sentences (VADER movie reviews, or a user's CSV) -> hash split train/val/test
    -> word vocabulary from the training split only
    -> embedding -> bidirectional GRU/LSTM -> pooling over words -> softmax over labels
    -> Trainer (BPTT, best weights on validation accuracy)
    -> test accuracy / macro-F1 next to a bag-of-words logistic regression (scikit-learn)
       fitted on the same training split in the same run -> report.html

A run directory holds, besides the Trainer's files: `vocab.json` (words and labels),
`results.json` (test metrics of both models, examples) and `report.html`.
`config.json["extra"]["sentiment"]` holds the options and the data summary.

Imports: config, models, training, data, tasks.report; scikit-learn for the baseline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.sentiment import (
    CORPORA,
    Example,
    ExampleSplits,
    fit_vocab,
    load_csv,
    load_vader,
    split_examples,
    words,
)
from ..data.text import DataError
from ..data.vocab import Vocab
from ..training.run import prepare_out_dir
from .common import TaskRun, fit_and_reload

TASK = "sentiment"
VOCAB_FILE = "vocab.json"
RESULTS_FILE = "results.json"
REPORT_FILE = "report.html"
MAX_WORDS = 100  # longer sentences are cut (the VADER snippets have at most ~60 words)
SKLEARN_INSTALL = "pip install scikit-learn"
READOUTS = ("attention", "max", "mean", "last")


@dataclass(frozen=True)
class SentimentOptions:
    """What `rnnkit train sentiment` was asked to do (stored in config.json).

    The defaults are the measured default run (benchmarks/README.md, "Applications: text").
    """

    data: str | None = None  # None: VADER movies; "tweets"/"amazon"/"nyt"; or a CSV path
    text_column: str = "text"
    label_column: str = "label"
    cell: str = "gru"
    hidden: int = 128
    embedding: int = 64
    embedding_std: float = 0.1  # initial word vectors ~ N(0, std²) (torch's default is 1)
    layers: int = 1
    dropout: float = 0.5  # on the pooled vector before the head
    word_dropout: float = 0.0  # training words replaced by <unk> with this probability
    readout: str = "attention"  # pooling over time: attention, max, mean or last
    min_count: int = 2
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.0  # decoupled (AdamW); 0 is plain Adam
    epochs: float = 4.0
    patience: int = 0  # stop after this many evaluations without a better val accuracy
    minutes: float | None = None
    eval_every: int = 100
    seed: int = 0
    limit: int | None = None  # first N sentences of each split (tiny runs)
    threads: int | None = None  # torch CPU threads (None: torch's default)

    def check(self) -> None:
        if self.cell not in ("gru", "lstm"):
            raise DataError(f"--cell must be gru or lstm, got {self.cell!r}")
        for name in ("hidden", "embedding", "layers", "batch", "min_count", "eval_every"):
            if getattr(self, name) < 1:
                raise DataError(f"--{name.replace('_', '-')} must be >= 1")
        if self.readout not in READOUTS:
            raise DataError(f"--readout must be one of {', '.join(READOUTS)}, got {self.readout!r}")
        for name in ("dropout", "word_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise DataError(f"--{name.replace('_', '-')} must be in [0, 1)")
        if not self.embedding_std > 0:
            raise DataError(f"--embedding-std must be > 0, got {self.embedding_std}")
        if self.weight_decay < 0 or self.patience < 0:
            raise DataError("--weight-decay and --patience must be >= 0")
        if not self.lr > 0 or not self.epochs > 0:
            raise DataError("--lr and --epochs must be > 0")
        if self.limit is not None and self.limit < 2:
            raise DataError("--limit must be >= 2")
        if self.threads is not None and self.threads < 1:
            raise DataError("--threads must be >= 1")


# ---- data ---------------------------------------------------------------------------------


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
        examples = load_csv(spec, options.text_column, options.label_column)
        splits = split_examples(examples, str(spec))
    return splits.limited(options.limit)


def prepare_data(options: SentimentOptions) -> SentimentData:
    splits = load_examples(options)
    labels = sorted({e.label for e in splits.train})
    if len(labels) < 2:
        raise DataError(
            f"{splits.source}: the training split has a single label ({labels[0]!r}); "
            "a classifier needs at least two"
        )
    for name, part in (("val", splits.val), ("test", splits.test)):
        unseen = sorted({e.label for e in part} - set(labels))
        if unseen:
            raise DataError(
                f"{splits.source}: label(s) {', '.join(map(repr, unseen))} appear in the {name} "
                f"split but never in training; add rows with them or remove those rows"
            )
    vocab = fit_vocab((e.text for e in splits.train), min_count=options.min_count)
    summary = {
        "source": splits.source,
        "split": splits.describe(),
        "sizes": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        "labels": labels,
        "vocab_size": len(vocab),
    }
    return SentimentData(splits, vocab, labels, summary)


def encode_batch(vocab: Vocab, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Sentences -> (ids (B, T) padded with 0, lengths (B,)); a wordless sentence is <unk>."""
    seqs = [(vocab.encode(t) or [1])[:MAX_WORDS] for t in texts]
    T = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    return ids, torch.tensor([len(s) for s in seqs])


def batches(data: SentimentData, examples: list[Example], size: int) -> list[tuple]:
    """Fixed batches (inputs, targets, lengths) in order: for evaluation."""
    index = {lab: i for i, lab in enumerate(data.labels)}
    out = []
    for i in range(0, len(examples), size):
        part = examples[i : i + size]
        ids, lengths = encode_batch(data.vocab, [e.text for e in part])
        out.append((ids, torch.tensor([index[e.label] for e in part]), lengths))
    return out


def batch_fn(
    data: SentimentData, size: int, word_dropout: float = 0.0
) -> Callable[[int, torch.Generator], tuple]:
    """Random training batches (with replacement), drawn from the Trainer's generator.

    `word_dropout`: each word is read as <unk> with this probability (a fresh draw per batch),
    so the network cannot lean on a few rare words it has memorised.
    """
    train = data.splits.train
    index = {lab: i for i, lab in enumerate(data.labels)}

    def make(step: int, gen: torch.Generator) -> tuple:
        pick = torch.randint(0, len(train), (min(size, len(train)),), generator=gen).tolist()
        ids, lengths = encode_batch(data.vocab, [train[i].text for i in pick])
        if word_dropout > 0:
            drop = (torch.rand(ids.shape, generator=gen) < word_dropout) & (ids > 0)  # (B, T)
            ids = ids.masked_fill(drop, 1)
        return ids, torch.tensor([index[train[i].label] for i in pick]), lengths

    return make


# ---- model --------------------------------------------------------------------------------


def build_classifier(options: SentimentOptions, vocab_size: int, n_labels: int):
    from ..config import HeadConfig, InputConfig, ManyToOneConfig, RNNConfig
    from ..models import build_model

    cfg = ManyToOneConfig(
        InputConfig("tokens", vocab_size, options.embedding, padding_idx=0),
        HeadConfig("softmax", n_labels, dropout=options.dropout),
        RNNConfig(
            options.cell,
            options.hidden,
            options.layers,
            bidirectional=True,
            dropout=options.dropout if options.layers > 1 else 0.0,
        ),
        readout=options.readout,
    )
    model = build_model(cfg)
    # torch starts word vectors at N(0, 1); a run of ~1,000 Adam steps moves each weight by
    # about lr per step, so rare words would keep a large random vector to the end. Small
    # starting vectors leave rare words near zero and let the useful ones grow.
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
        logits, _ = model(ids, lengths=lengths)
        out.append(torch.softmax(logits.float(), -1))
    return torch.cat(out) if out else torch.zeros(0, 0)


# ---- metrics and the baseline ---------------------------------------------------------------


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], n: int) -> dict:
    """Accuracy, macro-F1 and the confusion matrix (rows: true, columns: predicted).

    Example:
        >>> classification_metrics([0, 1, 1], [0, 1, 0], 2)["accuracy"]
        0.6666666666666666
    """
    if len(y_true) != len(y_pred) or not len(y_true):
        raise ValueError("classification_metrics: need equal, non-empty label lists")
    confusion = [[0] * n for _ in range(n)]
    for t, p in zip(y_true, y_pred, strict=True):
        confusion[t][p] += 1
    f1s = []
    for c in range(n):
        tp = confusion[c][c]
        fp = sum(confusion[r][c] for r in range(n)) - tp
        fn = sum(confusion[c]) - tp
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    correct = sum(confusion[c][c] for c in range(n))
    return {
        "accuracy": correct / len(y_true),
        "macro_f1": sum(f1s) / n,
        "confusion": confusion,
        "n": len(y_true),
    }


def bag_of_words_baseline(
    train: Sequence[Example], val: Sequence[Example], labels: Sequence[str]
) -> tuple[Any, dict]:
    """Logistic regression on binary word counts (the same `words` tokens the network reads);
    C picked on the validation split from a small grid. Returns (pipeline, info)."""
    try:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
    except ImportError:
        raise DataError(
            f"the bag-of-words baseline needs scikit-learn; install it with: {SKLEARN_INSTALL}"
        ) from None
    index = {lab: i for i, lab in enumerate(labels)}
    x_train, y_train = [e.text for e in train], [index[e.label] for e in train]
    grid = (0.1, 0.3, 1.0, 3.0, 10.0)
    scores: dict[float, float] = {}
    best = None
    for C in grid if val else (1.0,):
        pipe = make_pipeline(
            CountVectorizer(tokenizer=words, lowercase=False, token_pattern=None, binary=True),
            LogisticRegression(C=C, max_iter=2000),
        )
        pipe.fit(x_train, y_train)
        if val:
            pred = pipe.predict([e.text for e in val])
            scores[C] = sum(int(p == index[e.label]) for p, e in zip(pred, val, strict=True))
            scores[C] /= len(val)
        if best is None or (val and scores[C] > scores[best[0]]):
            best = (C, pipe)
    assert best is not None
    return best[1], {"C": best[0], "val_accuracy_by_C": {str(k): v for k, v in scores.items()}}


# ---- training -----------------------------------------------------------------------------


SentimentRun = TaskRun


def train_sentiment(
    options: SentimentOptions,
    out: str | Path,
    overwrite: bool = False,
    console: Any = None,
    progress: bool = True,
    on_phase: Callable[[str], None] | None = None,
) -> SentimentRun:
    """Train the classifier and the baseline on the same split; write results and report.

    Example:
        >>> run = train_sentiment(SentimentOptions(epochs=1), "runs/sentiment")
        >>> run.results["model"]["accuracy"], run.results["baseline"]["accuracy"]
    """
    from ..config import TrainConfig
    from ..training import seed_everything, write_run_json

    say = on_phase or (lambda text: None)
    options.check()
    out = Path(out)
    data = prepare_data(options)
    prepare_out_dir(out, overwrite)
    if options.threads:
        # small recurrent steps: on a busy machine one thread beats several spinning ones
        torch.set_num_threads(options.threads)
    seed_everything(options.seed)
    model = build_classifier(options, len(data.vocab), len(data.labels))
    steps = max(1, math.ceil(options.epochs * len(data.splits.train) / options.batch))
    val = batches(data, data.splits.val or data.splits.train, 256)
    cfg = TrainConfig(
        steps=steps,
        time_minutes=options.minutes,
        batch_size=options.batch,
        optimizer="adamw" if options.weight_decay > 0 else "adam",
        lr=options.lr,
        weight_decay=options.weight_decay,
        schedule="cosine",
        min_lr_ratio=0.1,
        clip="norm",
        clip_value=1.0,
        eval_every=min(options.eval_every, steps),
        monitor="accuracy",
        monitor_mode="max",
        patience=options.patience,
        log_every=10,
        seed=options.seed,
        progress=progress,
    )
    extra = {TASK: {"options": dataclasses.asdict(options), "data": data.summary}}
    vocab_json = {"words": data.vocab.to_dict(), "labels": data.labels}
    say(
        f"training a bidirectional {options.cell.upper()} ({options.hidden} units, "
        f"{options.readout} pooling) for {steps} steps on {data.summary['split']}"
    )
    train = batch_fn(data, options.batch, options.word_dropout)
    # the model comes back with its best weights on validation accuracy
    files = {VOCAB_FILE: vocab_json}
    trainer, result, model = fit_and_reload(model, cfg, out, train, val, extra, files, console)

    say("evaluating on the test split; fitting the bag-of-words baseline")
    test = data.splits.test
    index = {lab: i for i, lab in enumerate(data.labels)}
    y_true = [index[e.label] for e in test]
    t0 = time.perf_counter()
    probs = predict_proba(model, data.vocab, [e.text for e in test])
    y_model = probs.argmax(-1).tolist()
    model_metrics = classification_metrics(y_true, y_model, len(data.labels))
    model_metrics["seconds_predict"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with _blas_threads(options.threads):
        baseline, info = bag_of_words_baseline(data.splits.train, data.splits.val, data.labels)
    y_base = [int(p) for p in baseline.predict([e.text for e in test])]
    base_metrics = classification_metrics(y_true, y_base, len(data.labels))
    base_metrics.update(info, seconds_fit=time.perf_counter() - t0)
    majority = max(
        range(len(data.labels)),
        key=lambda c: sum(1 for e in data.splits.train if index[e.label] == c),
    )
    results = {
        "data": data.summary,
        "model": model_metrics,
        "baseline": {"name": "bag-of-words logistic regression (scikit-learn)", **base_metrics},
        "majority": {
            "label": data.labels[majority],
            "accuracy": sum(1 for y in y_true if y == majority) / len(y_true),
        },
        "fit": {
            "status": result.status, "message": result.message, "steps": result.step,
            "seconds": result.elapsed, "best_val_accuracy": result.best,
            "best_step": result.best_step,
        },
        "examples": _examples(model, data, test),
    }  # fmt: skip
    trainer.log({"split": "test", "event": "evaluation", **_flat(results)})
    write_run_json(out, RESULTS_FILE, results)
    report = write_sentiment_report(out)
    return SentimentRun(out, result.status, result.message, result.step, result.elapsed,
                        results, report)  # fmt: skip


def _blas_threads(n: int | None):
    """Limit BLAS/OpenMP threads (scikit-learn) like torch's, when a thread count is given."""
    if not n:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    return threadpool_limits(n)


def _flat(results: dict) -> dict:
    return {
        "accuracy": results["model"]["accuracy"],
        "macro_f1": results["model"]["macro_f1"],
        "baseline_accuracy": results["baseline"]["accuracy"],
        "baseline_macro_f1": results["baseline"]["macro_f1"],
    }


def _examples(model, data: SentimentData, test: list[Example], k: int = 8):
    """A few test sentences with prediction, probability and the most-attended words."""
    out = []
    for e in test[:k]:
        pred = classify_text(model, data.vocab, data.labels, e.text)
        out.append({"text": e.text, "label": e.label, **pred})
    return out


# ---- prediction ---------------------------------------------------------------------------


def classify_text(model, vocab: Vocab, labels: Sequence[str], text: str) -> dict:
    """One sentence -> {"prediction", "probability", "probabilities", "attention"}.

    Raises:
        DataError: the sentence is empty or has no words.
    """
    if not text or not text.strip():
        raise DataError("the sentence is empty; pass some text to classify")
    toks = words(text)[:MAX_WORDS]
    if not toks:
        raise DataError(f"{text!r} has no words to classify (only punctuation or symbols)")
    probs = predict_proba(model, vocab, [text])[0]
    best = int(probs.argmax())
    weights = getattr(model, "attention_weights", None)
    attention = []
    if weights is not None:
        w = weights[0, : len(toks)].tolist()
        attention = sorted(zip(toks, w, strict=True), key=lambda tw: -tw[1])[:5]
    known = sum(1 for t in toks if t in vocab.index)
    return {
        "prediction": labels[best],
        "probability": float(probs[best]),
        "probabilities": {lab: float(p) for lab, p in zip(labels, probs, strict=True)},
        "attention": [[t, round(float(w), 4)] for t, w in attention],
        "known_words": known,
        "words": len(toks),
    }


@dataclass
class Classifier:
    """A trained sentiment run, loaded for prediction."""

    model: Any
    vocab: Vocab
    labels: list[str]

    def classify(self, text: str) -> dict:
        return classify_text(self.model, self.vocab, self.labels, text)

    def evaluate(self, examples: Sequence[Example]) -> dict:
        """Accuracy on labelled examples; DataError for labels the run never saw."""
        unseen = sorted({e.label for e in examples} - set(self.labels))
        if unseen:
            raise DataError(
                f"label(s) {', '.join(map(repr, unseen))} were not seen in training; this run "
                f"knows {', '.join(map(repr, self.labels))}"
            )
        index = {lab: i for i, lab in enumerate(self.labels)}
        probs = predict_proba(self.model, self.vocab, [e.text for e in examples])
        return classification_metrics(
            [index[e.label] for e in examples], probs.argmax(-1).tolist(), len(self.labels)
        )


def load_classifier(run_dir: str | Path) -> Classifier:
    """Load a `train sentiment` run (RunError if it is not one)."""
    from ..training import RunError, load_run

    run = load_run(run_dir)
    if TASK not in run.extra:
        raise RunError(f"{run_dir}: not a sentiment run (train one with: rnnkit train sentiment)")
    data = run.read_json(VOCAB_FILE)
    try:
        vocab, labels = Vocab.from_dict(data["words"]), list(data["labels"])
    except (KeyError, TypeError, DataError) as err:
        raise RunError(f"{run_dir}/{VOCAB_FILE}: malformed ({err})") from None
    return Classifier(run.model, vocab, labels)


# ---- report -------------------------------------------------------------------------------


def write_sentiment_report(run_dir: str | Path) -> Path:
    """(Re)write report.html from the run directory's files alone."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..training import load_run
    from .report import Report, line_plot

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    res = run.read_json(RESULTS_FILE)
    opts = run.extra[TASK]["options"]
    m, b = res["model"], res["baseline"]
    r = Report(f"Sentiment: {run_dir.name}")
    r.paragraph(
        f"{res['data']['split']}. Labels: {', '.join(res['data']['labels'])}. Vocabulary "
        f"{res['data']['vocab_size']:,} words from the training split only."
    )
    r.heading("Test split: model vs baseline")
    r.table(
        [
            [f"bidirectional {opts['cell'].upper()} {opts['hidden']} + "
             f"{opts.get('readout', 'attention')} pooling",
             m["accuracy"], m["macro_f1"]],
            [f"bag-of-words logistic regression (C={b['C']})", b["accuracy"], b["macro_f1"]],
            [f"majority class ({res['majority']['label']})", res["majority"]["accuracy"], ""],
        ],
        header=["model", "accuracy", "macro-F1"],
    )  # fmt: skip
    fig, ax = plt.subplots(figsize=(6, 2.6))
    names = ["RNN", "bag-of-words LR", "majority"]
    accs = [m["accuracy"], b["accuracy"], res["majority"]["accuracy"]]
    ax.barh(names, accs, color=["#3b6ea8", "#999", "#ccc"])
    for y, a in enumerate(accs):
        ax.text(a, y, f" {a:.3f}", va="center")
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("test accuracy")
    fig.tight_layout()
    r.figure(fig, "test accuracy, model vs baselines (same split, same run)")
    labels = res["data"]["labels"]
    rows = [[f"true {lab}", *row] for lab, row in zip(labels, m["confusion"], strict=True)]
    r.table(rows, header=["RNN", *[f"pred {lab}" for lab in labels]])
    train = [x for x in run.metrics if x.get("split") == "train"]
    val = run.evals("val")
    r.heading("Training")
    fit = res["fit"]
    r.paragraph(
        f"{fit['status']}: {fit['message']}; {fit['steps']} steps in {fit['seconds']:.0f} s; "
        f"best validation accuracy {fit['best_val_accuracy']:.3f} at step {fit['best_step']}."
    )
    r.figure(
        line_plot(
            {"train loss": ([x["step"] for x in train], [x["loss"] for x in train]),
             "val loss": ([x["step"] for x in val], [x["loss"] for x in val])},
            xlabel="step", ylabel="cross-entropy",
        ), "loss",
    )  # fmt: skip
    r.figure(
        line_plot(
            {"val accuracy": ([x["step"] for x in val], [x["accuracy"] for x in val]),
             "baseline (test)": ([x["step"] for x in val], [b["accuracy"]] * len(val))},
            xlabel="step", ylabel="accuracy", markers=True,
        ), "validation accuracy during training; the baseline's test accuracy for reference",
    )  # fmt: skip
    r.heading("Examples (test split)")
    r.table(
        [[e["text"], e["label"], e["prediction"], e["probability"],
          ", ".join(t for t, _ in e["attention"])] for e in res["examples"]],
        header=["sentence", "label", "predicted", "p", "most attended words"],
    )  # fmt: skip
    r.paragraph(f"options: {opts}", muted=True)
    return r.write(run_dir / REPORT_FILE)
