"""`rnnkit train speech` options. The defaults are the measured default run
(benchmarks/README.md, "Applications: audio")."""

from __future__ import annotations

from ..options import TrainOptions, opt, options

NAME = "speech"
HELP = (
    "Train a speech recogniser (bidirectional RNN + CTC) on connected digit strings and "
    "command sentences spoken by espeak-ng voices, decoded greedily, by prefix beam and by "
    "beam with an n-gram LM; scored by CER/WER on voices never heard in training beside a DTW "
    "template matcher run in the same run; write a run directory with report.html."
)


@options
class SpeechOptions(TrainOptions):
    data: str | None = opt(None, "Unused: the corpus is generated with espeak-ng.")
    utterances: int = opt(600, "Connected digit strings in the generated corpus.", ge=8,
                          le=100_000)  # fmt: skip
    sentences: int = opt(400, "Command sentences (26-word vocabulary) in the corpus.", ge=0,
                         le=100_000)  # fmt: skip
    voices_per_sex: int = opt(16, "espeak-ng voice variants of each sex.", ge=2, le=100)
    units: str = opt("words", "CTC outputs: the vocabulary's words, or characters.",
                     choices=("words", "chars"))  # fmt: skip
    stack: int = opt(2, "Stack this many 10 ms frames into one step.", ge=1, le=4)
    band_limit: float = opt(
        0.2, "Share of training examples with every mel band above a random cut-off masked "
        "(band-limited recordings, e.g. 8 kHz files).", ge=0, le=1,
    )  # fmt: skip
    cell: str = opt("lstm", choices=("lstm", "gru", "mingru", "minlstm", "lru"))
    hidden: int = 64
    dropout: float = opt(0.1, "Dropout between layers and before the output layer.", ge=0, lt=1)
    beam: int = opt(8, "Prefix-beam width for the test transcripts (1: greedy only).", ge=1,
                    le=64)  # fmt: skip
    dtw_templates: int = opt(
        6, "DTW baseline: templates per word (isolated recordings of training voices).",
        ge=1, le=100,
    )  # fmt: skip
    epochs: float | None = 50.0
    lr: float = 2e-3
    batch: int = 16
