"""`rnnkit train caption` options. The defaults are the measured default run
(benchmarks/README.md, "Applications: image captioning")."""

from __future__ import annotations

from ..options import HUGE, OptionError, TrainOptions, opt, options

NAME = "caption"
HELP = (
    "Train an image captioner (a CNN whose feature map an attention RNN decoder reads: Show, "
    "Attend and Tell) and score it (exact match, BLEU, chrF) against nearest-neighbour "
    "baselines; write a run directory with report.html and attention maps."
)
DATA = ("digits", "emoji")
DEFAULT_STEPS = 4000  # when no budget is given; at 1,500 emoji validation loss was still falling
MAX_BEAM = 64  # wider beams cost memory and time and no longer change the output
MAX_DIGITS = 5  # rnnkit.data.images.MAX_DIGITS (rnnkit.data imports torch: not for --help)
MAX_IMAGES = 200_000  # pictures are held in memory (24x96 bytes each)


@options
class CaptionOptions(TrainOptions):
    data: str = opt(
        "digits", "digits (1-5 of scikit-learn's handwritten scans side by side) or emoji "
        "(Noto Color Emoji, named by Unicode).",
        choices=DATA,
    )  # fmt: skip
    # models.captioner.CELLS (spelt out: this module must not import torch, for --help)
    cell: str = opt("lstm", choices=("lstm", "gru", "mingru", "minlstm"))
    hidden: int = opt(128, "Decoder units.")
    layers: int = opt(1, "Decoder layers: one (an attention cell, Xu et al. 2015).", ge=1, le=1)
    embedding: int = opt(64, "Word embedding size.", ge=1, le=65536)
    filters: int = opt(16, "CNN filters in the first block (doubled per block).", ge=1, le=1024)
    attention: int = opt(128, "Width of the attention MLP.", ge=1, le=65536)
    dropout: float = opt(0.0, "Dropout before the output layer.", ge=0, lt=1)
    steps: int | None = opt(
        None, f"Optimiser updates (a budget). Default, unless --epochs or --minutes is given: "
        f"{DEFAULT_STEPS}."
    )  # fmt: skip
    batch: int = opt(64, "Pictures per batch.")
    lr: float = opt(2e-3, "Adam learning rate (cosine decay).")
    eval_every: int = opt(250, "Steps between validation passes.", ge=1, le=HUGE)
    beam: int = opt(4, "Beam width for the test captions (1: greedy).", ge=1, le=MAX_BEAM)
    train_images: int = opt(10000, "Training pictures (composed once).", ge=2, le=MAX_IMAGES)
    val_images: int = opt(1000, "Validation pictures.", ge=1, le=MAX_IMAGES)
    test_images: int = opt(2000, "Test pictures.", ge=1, le=MAX_IMAGES)
    max_digits: int = opt(MAX_DIGITS, "digits: most digits in a picture.", ge=1, le=MAX_DIGITS)

    def check(self) -> None:  # no budget needed: the default steps apply
        if self.batch > self.train_images:
            raise OptionError("batch", f"<= train_images ({self.train_images})", self.batch)

    def train_steps(self, steps_per_epoch: int) -> int:
        """The step budget: --steps / --epochs / --minutes (the first reached), else the
        default."""
        if self.steps is None and self.epochs is None and self.minutes is None:
            return DEFAULT_STEPS
        return self.total_steps(steps_per_epoch)
