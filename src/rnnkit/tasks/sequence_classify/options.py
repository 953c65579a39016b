"""`rnnkit train sequence-classify` options. "auto" settings are chosen per data set from its
training split alone (a stratified validation part of it, `val_fraction`): the normalisation
(and the front end, with --frontend auto); the pooling and the patch size follow the longest
training series. The rest are the measured defaults (benchmarks/README.md, "Sequence
classification that generalises")."""

from __future__ import annotations

from ..options import HUGE, TrainOptions, opt, options

NAME = "sequence_classify"
HELP = (
    "Classify real-valued sequences (speaker, activity, shapes...) with an ensemble of "
    "recurrent networks (a convolutional front end when it validates better), beside 1-NN "
    "Euclidean, 1-NN DTW and MiniRocket run on the same split; write a run directory with "
    "report.html."
)
FRONTENDS = ("auto", "conv", "none")
NORMALISATIONS = ("auto", "series", "global", "level")
BASELINES = ("all", "euclidean")
CONV_ON = ("patches", "frames")
LAYOUTS = ("serial", "parallel")
STEPS_TARGET = 64  # the automatic patch keeps the recurrent layer at <= this many steps


@options
class SequenceClassifyOptions(TrainOptions):
    data: str = opt(
        "JapaneseVowels", "A UCR/UEA problem shipped inside aeon (JapaneseVowels, BasicMotions, "
        "GunPoint, OSULeaf, ... an unknown name lists them), or a .csv (long format: id, label, "
        "optional time and split columns, numeric channels) or .npz (X, y[, lengths, X_test, "
        "y_test]) file."
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
    frontend: str = opt(
        "conv", "Convolutions (FCN blocks k=7,5,3) before the recurrent layer, or none; auto: "
        "whichever scores better on the validation part of train (none never did on the "
        "benchmark's data sets).", choices=FRONTENDS,
    )  # fmt: skip
    conv_on: str = opt(
        "frames", "frames: the convolutions read every frame, and the recurrent layer the "
        "mean of their features over each patch; patches: the convolutions read the "
        "concatenated patches (~3x faster per update, less accurate at 2,000 updates where "
        "measured).", choices=CONV_ON,
    )  # fmt: skip
    layout: str = opt(
        "serial", "serial: the recurrent layer reads the convolutions' features; parallel: it "
        "reads the input's patches beside the convolutions (LSTM-FCN's two branches, Karim et "
        "al. 2017); the head reads both branches' means either way.", choices=LAYOUTS,
    )  # fmt: skip
    dilate: int = opt(
        1, "Members that differ in scale: member k's convolutions dilated by N^(k mod 3) "
        "(members cycle through 1, N, N^2), at most so far that their receptive field "
        "(1 + 12 x dilation frames) stays within half the longest (pooled) training series "
        "(1: every member the FCN's undilated blocks).",
        ge=1, le=64,
    )  # fmt: skip
    choose_dilate: int = opt(
        1, "N > 1: choose --dilate 1 or N per data set on the validation part of train: a "
        "model with member 1's dilation (N, capped as --dilate caps it) against an undilated "
        "one, each --dilate-select-steps updates; the members are dilated apart when the "
        "dilated model scores higher (ties: the lower validation loss). 1: no choice.",
        ge=1, le=64,
    )  # fmt: skip
    dilate_select_steps: int = opt(
        300, "Updates of each model --choose-dilate compares.", ge=1, le=HUGE
    )
    filters: int = opt(64, "Channels of each convolutional block.", ge=1, le=4096)
    normalise: str = opt(
        "auto", "series: each series to zero mean and unit variance per channel; global: each "
        "channel by training-split statistics; level: as series, plus each series' level and "
        "scale (asinh of its mean, log of its std) as constant channels; auto: chosen on "
        "validation (series, without a choice, when the training series already are so "
        "normalised).",
        choices=NORMALISATIONS,
    )  # fmt: skip
    patch: int | None = opt(
        None, f"Frames per recurrent step (default: the longest training series / "
        f"{STEPS_TARGET}, rounded up).", ge=1, le=HUGE,
    )  # fmt: skip
    max_frames: int = opt(
        512, "Longer series are averaged over windows of ceil(longest / N) frames first "
        "(bounds the time per update of the convolutions on frames).", ge=1, le=HUGE,
    )  # fmt: skip
    dropout: float = opt(0.0, "Dropout (between layers and before the head).", ge=0, le=0.95)
    steps: int | None = 2000
    lr: float = 3e-3
    batch: int = 16
    weight_decay: float = opt(0.01, "AdamW weight decay (0: plain Adam).", ge=0, le=10)
    val_fraction: float = opt(
        0.25, "The stratified part of train that chooses the auto settings (0: no choice: "
        "conv and series).", ge=0, le=0.9,
    )  # fmt: skip
    select_steps: int = opt(60, "Updates of each candidate the auto settings compare.",
                            ge=1, le=HUGE)  # fmt: skip
    select_folds: int = opt(
        1, "K > 1: score each auto candidate by K-fold cross-validation on train (every "
        "training case validated once; K times the selection's cost) instead of one "
        "--val-fraction split.", ge=1, le=100,
    )  # fmt: skip
    diff: bool = opt(
        True, "Feed each channel's first difference x_t - x_{t-1} (after normalising and "
        "pooling; scaled by training statistics like the channels) beside it: the model reads "
        "2D channels (--no-diff: the channels alone, the default before session 14).",
    )  # fmt: skip
    augment: float = opt(
        0.1, "Training-time jitter and amplitude scaling, std in standard units.", ge=0, le=10
    )
    crop: float = opt(
        1.0, "Training-time window slicing: each series cut to a random window of at least "
        "this fraction of its length, stretched back (1: none).", gt=0, le=1,
    )  # fmt: skip
    warp: float = opt(
        0.0, "Training-time time warping: each series read at a random smooth monotone time "
        "map, its local speed exp(warp * N(0, 1)) (0: none).", ge=0, le=2,
    )  # fmt: skip
    ensemble: int = opt(
        5, "Average the softmax of N independently seeded models (saved together; --minutes "
        "bounds their training together: each member gets --minutes / ceil(N / members at "
        "once)).", ge=1, le=1000,
    )  # fmt: skip
    parallel_members: int | None = opt(
        None, "Ensemble members trained at once, each in its own process with an equal share "
        "of --threads (at least 1); a member's weights are the same either way at the same "
        "threads per member (default: one member per thread, at most --ensemble: in turn on "
        "1 thread; in turn on a --device other than cpu).", ge=1, le=1000,
    )  # fmt: skip
    baselines: str = opt(
        "all", "all: 1-NN Euclidean, 1-NN DTW and MiniRocket (aeon); euclidean: only the "
        "first (fast).", choices=BASELINES,
    )  # fmt: skip
