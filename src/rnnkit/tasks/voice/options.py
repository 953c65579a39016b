"""`rnnkit train voice` options. The defaults are the measured default run
(benchmarks/README.md, "Applications: audio")."""

from __future__ import annotations

from ..options import TrainOptions, opt, options

NAME = "voice"
HELP = (
    "Classify voices (sex, speaker or language voice) from log-mel frames of speech made with "
    "espeak-ng, on voices never heard in training, beside an MFCC logistic regression and a "
    "pitch threshold fitted in the same run; write a run directory with report.html."
)
LABELS = ("sex", "speaker", "language")


@options
class VoiceOptions(TrainOptions):
    data: str | None = opt(None, "Unused: the corpus is generated with espeak-ng (see --label).")
    label: str = opt("sex", "What to predict.", choices=LABELS)
    utterances: int = opt(720, "Utterances in the generated corpus.", ge=8, le=100_000)
    voices_per_sex: int = opt(16, "espeak-ng voice variants of each sex.", ge=2, le=100)
    stack: int = opt(3, "Stack this many 10 ms frames into one step.", ge=1, le=16)
    freq_mask: int = opt(
        16, "SpecAugment: zero a random band of up to N mel channels per training example.",
        ge=0, le=40,
    )  # fmt: skip
    warp: float | None = opt(
        None, "Vocal tract length perturbation: warp the mel axis by a random factor within "
        "1 +- N per training example (0: off). Default: 0.1, and 0 for --label speaker, where "
        "the warp would change the label (vocal tract length is part of who is speaking).",
        ge=0, lt=0.5,
    )  # fmt: skip

    def warp_amount(self) -> float:
        """--warp, or its default: on only where it preserves the label."""
        if self.warp is not None:
            return self.warp
        return 0.0 if self.label == "speaker" else 0.1
    # Off by default: --freq-mask already trains on masked bands (an 8 kHz file lacks the
    # top 10 of 40), and on by 0.2 it cost 2-6 points of balanced accuracy (benchmarks).
    band_limit: float = opt(
        0.0, "Share of training examples with every mel band above a random cut-off masked "
        "(band-limited recordings, e.g. 8 kHz files).", ge=0, le=1,
    )  # fmt: skip
    cell: str = opt("gru", choices=("gru", "lstm", "mingru", "minlstm", "lru"))
    hidden: int = 32
    dropout: float = opt(0.5, "Dropout before the output layer.", ge=0, lt=1)
    epochs: float | None = 15.0
    lr: float = 2e-3
    batch: int = 32
