"""`rnnkit train music` options. The defaults train for 7 minutes (about 9 in all with the
n-gram baseline and the evaluation, on a 2-core machine; see benchmarks/README.md, "Music"): a
1-layer LSTM of 256 units over 32-dim token embeddings, 32 streams of 128 tokens (two quarter
notes of four voices), Adam 3e-3 decayed by a cosine to 3e-4."""

from __future__ import annotations

from ..options import TrainOptions, check_options, idle_threads_option, opt, options

NAME = "music"
HELP = "Train a four-voice Bach chorale model and write a run directory with report.html."
DEFAULT_MINUTES = 7.0  # the budget when none is given


@options
class MusicOptions(TrainOptions):
    data: str | None = opt(
        None, "The corpus: bach (music21's four-part Bach chorales, the default).",
        choices=("bach",),
    )  # fmt: skip
    limit: int | None = opt(
        None, "Use only the first N chorales in corpus order (for quick tries).", ge=3, le=10_000
    )  # fmt: skip
    hidden: int = 256
    embedding: int = opt(32, "Embedding size per token.", ge=1, le=65536)
    seq_len: int = opt(128, "Tokens per chunk of truncated BPTT (64 = one quarter note).",
                       ge=4, le=1_000_000)  # fmt: skip
    batch: int = opt(32, "Parallel streams per batch.")
    lr: float = 3e-3
    minutes: float | None = opt(
        None, f"Wall-clock training time (a budget). Default {DEFAULT_MINUTES:g} when neither "
        "--steps nor --epochs is given."
    )  # fmt: skip
    threads: int | None = idle_threads_option()
    val_fraction: float = opt(
        0.1, "Fraction of the chorales held out for validation (whole tunes).", gt=0, le=0.4
    )
    test_fraction: float = opt(
        0.1, "Fraction of the chorales held out for the test (whole tunes).", gt=0, le=0.4
    )
    eval_every: int = opt(100, "Steps between validation checks.", ge=1, le=10**9)
    pieces: int = opt(20, "Pieces generated for the report's statistics.", ge=1, le=1000)
    piece_quarters: int = opt(64, "Length of each generated piece, in quarter notes.",
                              ge=1, le=10_000)  # fmt: skip
    temperature: float = opt(1.0, "Sampling temperature of the generated pieces.", gt=0, le=10)

    def __post_init__(self) -> None:
        if self.minutes is None and self.steps is None and self.epochs is None:
            object.__setattr__(self, "minutes", DEFAULT_MINUTES)  # frozen: set once, when made
        check_options(self)
