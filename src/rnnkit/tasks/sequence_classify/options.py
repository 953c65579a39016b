"""`rnnkit train sequence-classify` options. The defaults are the measured default run
(benchmarks/README.md, "Applications: series"): an ensemble of 5 bi-GRU 64, 150 epochs,
augmentation 0.1, chosen by cross-validation on the training splits."""

from __future__ import annotations

from ..options import HUGE, TrainOptions, opt, options

NAME = "sequence_classify"
HELP = (
    "Classify real-valued sequences (speaker, activity...) with an ensemble of recurrent "
    "networks, beside a 1-NN Euclidean baseline run on the same split and the published 1-NN "
    "DTW figure; write a run directory with report.html."
)
READOUTS = ("last", "mean", "max", "attention")


@options
class SequenceClassifyOptions(TrainOptions):
    data: str = opt(
        "JapaneseVowels", "JapaneseVowels (speakers), BasicMotions (activities), GunPoint, "
        "ItalyPowerDemand, ArrowHead (aeon), or a .csv (long format: id, label, optional time "
        "and split columns, numeric channels) or .npz (X, y[, lengths, X_test, y_test]) file."
    )  # fmt: skip
    test: str | None = opt(None, "A separate test file (same format) for a user --data file.")
    id_column: str = opt("id", "CSV: the series id column.")
    label_column: str = opt("label", "CSV: the label column.")
    time_column: str | None = opt(None, "CSV: order rows within a series by this column.")
    max_train: int | None = opt(None, "Use only the first N training cases.", ge=2, le=HUGE)
    max_test: int | None = opt(None, "Use only the first N test cases.", ge=1, le=HUGE)
    cell: str = "gru"
    hidden: int = 64
    bidirectional: bool = opt(True, "Read each sequence both ways.")
    readout: str = opt("mean", "Pool the outputs over time.", choices=READOUTS)
    dropout: float = opt(0.0, "Dropout (between layers and before the head).", ge=0, le=0.95)
    epochs: float | None = 150.0
    lr: float = 3e-3
    weight_decay: float = opt(0.0, "AdamW weight decay (0: plain Adam).", ge=0, le=10)
    val_fraction: float = opt(
        0.0, "Hold out this much of train to pick the weights (0: keep the final ones).",
        ge=0, le=0.9,
    )  # fmt: skip
    augment: float = opt(
        0.1, "Training-time jitter and amplitude scaling, std in standard units.", ge=0, le=10
    )
    ensemble: int = opt(
        5, "Average the softmax of N independently seeded models (saved together; --minutes "
        "is shared among them).", ge=1, le=1000,
    )  # fmt: skip
