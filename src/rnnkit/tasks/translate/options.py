"""`rnnkit train translate` options. The defaults are the measured default runs
(benchmarks/README.md, "Applications: text")."""

from __future__ import annotations

from ..options import HUGE, OptionError, TrainOptions, opt, options

NAME = "translate"
HELP = (
    "Train a sequence-to-sequence translator with attention and score it (BLEU, chrF, exact "
    "match) against a word-by-word dictionary baseline; write a run directory with report.html."
)
DATA = ("de-en", "numbers")
DEFAULT_STEPS = {"de-en": 1500, "numbers": 600}  # when neither --steps nor --epochs is given
MAX_BEAM = 64  # wider beams cost memory and time and no longer change the output
MAX_NUMBER = 999_999  # numbers: a million pairs is already minutes of num2words


@options
class TranslateOptions(TrainOptions):
    data: str = opt(
        "de-en", "de-en (dictionary phrases) or numbers (English -> German number words).",
        choices=DATA,
    )  # fmt: skip
    cell: str = opt("gru", choices=("gru", "lstm", "mingru", "minlstm"))
    hidden: int = opt(256, "Decoder units (encoder: half per direction).")
    embedding: int = opt(128, "Token embedding size.", ge=1, le=65536)
    layers: int = opt(1, "Layers in encoder and decoder.")
    attention: str = opt("additive", "Decoder attention.", choices=("additive", "dot", "none"))
    dropout: float = opt(0.0, "Dropout between stacked layers (with --layers > 1).", ge=0, lt=1)
    steps: int | None = opt(
        None, "Optimiser updates (a budget). Default, unless --epochs is given: 1500 (de-en), "
        "600 (numbers)."
    )  # fmt: skip
    batch: int = opt(64, "Pairs per batch.")
    lr: float = opt(2e-3, "Adam learning rate (cosine decay).")
    eval_every: int = opt(250, "Steps between validation passes.", ge=1, le=HUGE)
    beam: int = opt(4, "Beam width for the test translations (1: greedy).", ge=1, le=MAX_BEAM)
    limit: int | None = opt(None, "Use only the first N pairs of each split.", ge=2, le=HUGE)
    min_words: int = opt(2, "de-en: fewest words in a phrase.", ge=1, le=1000)
    max_words: int = opt(5, "de-en: most words in a phrase.", ge=1, le=1000)
    vocab_limit: int = opt(8000, "de-en: keep phrases within the N most frequent words.",
                           ge=1, le=HUGE)  # fmt: skip
    low: int = opt(0, "numbers: smallest number.", ge=0, le=MAX_NUMBER)
    high: int = opt(9999, "numbers: largest number.", ge=0, le=MAX_NUMBER)

    def check(self) -> None:  # no budget needed: the data set's default steps apply
        if self.min_words > self.max_words:
            raise OptionError("min_words", f"<= max_words ({self.max_words})", self.min_words)
        if self.low > self.high:
            raise OptionError("low", f"<= high ({self.high})", self.low)

    def train_steps(self, steps_per_epoch: int) -> int:
        """The step budget: --steps / --epochs (the first reached), else the data set's default."""
        if self.steps is None and self.epochs is None:
            return DEFAULT_STEPS[self.data]
        return self.total_steps(steps_per_epoch)
