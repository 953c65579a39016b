"""`rnnkit train sentiment` options. The defaults are the measured default run
(benchmarks/README.md, "Applications: text" and "Sentiment against bag-of-words")."""

from __future__ import annotations

from ..options import TrainOptions, opt, options

NAME = "sentiment"
HELP = (
    "Train a sentiment classifier (bidirectional RNN, pooling over words) and a bag-of-words "
    "logistic-regression baseline on the same split; write a run directory with report.html."
)
READOUTS = ("attention", "max", "mean", "last")
PRETRAIN = ("vader", "train", "none")


@options
class SentimentOptions(TrainOptions):
    data: str | None = opt(
        None, "A CSV file with a header row, or a VADER corpus: movies, tweets, amazon, nyt. "
        "Default: movies (10,605 movie-review sentences)."
    )  # fmt: skip
    text_column: str = opt("text", "CSV column holding the sentence.")
    label_column: str = opt("label", "CSV column holding the label.")
    cell: str = opt("gru", choices=("gru", "lstm", "mingru", "minlstm", "lru"))
    hidden: int = 128
    embedding: int = opt(64, "Word embedding size.", ge=1, le=65536)
    embedding_std: float = opt(0.1, "Standard deviation of the initial word vectors.", gt=0, le=10)
    readout: str = opt("attention", "Pooling over the words.", choices=READOUTS)
    dropout: float = opt(0.5, "Dropout on the pooled vector before the output layer.", ge=0, lt=1)
    word_dropout: float = opt(0.1, "Probability that a training word is read as <unk>.", ge=0, lt=1)
    min_count: int = opt(2, "Words seen fewer times in training are <unk>.", ge=1, le=10**9)
    pretrain: str = opt(
        "none", "Pretrain the embedding and RNN as a bidirectional language model before "
        "training the classifier: on the training sentences and all other VADER texts (never "
        "the validation or test sentences), on the training sentences only, or none.",
        choices=PRETRAIN,
    )  # fmt: skip
    pretrain_epochs: float = opt(2.0, "Passes of language-model pretraining over its text.",
                                 gt=0, le=10**4)  # fmt: skip
    ensemble: int = opt(
        3, "Average the class probabilities of N independently seeded classifiers (member k "
        "is saved in member-k/ of the run).", ge=1, le=100,
    )  # fmt: skip
    epochs: float | None = 4.0
    lr: float = 2e-3
    weight_decay: float = opt(0.0, "Decoupled weight decay (AdamW); 0: plain Adam.", ge=0, le=10)
    patience: int = opt(
        0, "Stop after N evaluations without better val accuracy (0: never).", ge=0, le=10**6
    )
    eval_every: int = opt(100, "Steps between validation passes.", ge=1, le=10**9)
    limit: int | None = opt(None, "Use only the first N sentences of each split.", ge=2, le=10**9)
