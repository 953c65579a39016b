"""`rnnkit train text` options. The defaults are the measured default run (benchmarks/README.md,
"Text generation"): a 1-layer LSTM of 256 units (forget bias 0) over 64-dim character
embeddings, batches of 32 random 64-token windows each read from a zero state, Adam 3e-3 held
constant and then decayed linearly to 3e-4 over the last fifth of the budget ("wsd"), for 4
minutes of training (about 5 with the full validation pass and the report)."""

from __future__ import annotations

from ..options import OptionError, TrainOptions, check_options, idle_threads_option, opt, options

NAME = "text"
HELP = "Train a character (or word) language model and write a run directory with report.html."
DEFAULT_MINUTES = 4.0  # the budget when none is given


@options
class TextOptions(TrainOptions):
    data: str | None = opt(
        None, "A UTF-8 text file, or a text data set (rnnkit datasets list). "
        "Default: the Shakespeare corpus."
    )  # fmt: skip
    tokenizer: str = opt("char", "Tokens: characters or words.", choices=("char", "word"))
    hidden: int = 256
    embedding: int = opt(64, "Embedding size per token.", ge=1, le=65536)
    dropout: float = opt(0.0, "Dropout between layers (needs --layers >= 2).", ge=0, lt=1)
    seq_len: int = opt(64, "Tokens per training window (steps of BPTT).", ge=1, le=1_000_000)
    batching: str = opt(
        "windows", "Training batches: random windows, each from a zero state, or contiguous "
        "streams with the state carried across batches (stateful truncated BPTT).",
        choices=("windows", "streams"),
    )  # fmt: skip
    batch: int = opt(32, "Sequences (windows or streams) per batch.")
    lr: float = 3e-3
    schedule: str = opt(
        "wsd", "Learning-rate schedule over the budget: wsd (constant, then a linear decay to "
        "0.1 x lr over the last fifth), cosine (to 0.1 x lr) or constant.",
        choices=("wsd", "cosine", "constant"),
    )  # fmt: skip
    minutes: float | None = opt(
        None, f"Wall-clock training time (a budget). Default {DEFAULT_MINUTES:g} when neither "
        "--steps nor --epochs is given."
    )  # fmt: skip
    threads: int | None = idle_threads_option()
    val_fraction: float = opt(0.1, "Fraction of the text held out for validation.", gt=0, le=0.5)
    eval_every: int = opt(200, "Steps between validation checks.", ge=1, le=10**9)
    eval_batches: int = opt(4, "Validation batches per check.", ge=1, le=10**6)

    def __post_init__(self) -> None:
        if self.minutes is None and self.steps is None and self.epochs is None:
            object.__setattr__(self, "minutes", DEFAULT_MINUTES)  # frozen: set once, when made
        check_options(self)

    def check(self) -> None:
        super().check()
        if self.dropout > 0 and self.layers < 2:
            raise OptionError(
                "dropout", "0 with one layer (it acts between layers: use layers 2 or more)",
                self.dropout,
            )  # fmt: skip
