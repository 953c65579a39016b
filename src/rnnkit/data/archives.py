"""Labelled sequences for classification: aeon's UCR/UEA problems and a user's CSV or NPZ.

`load_classification_source(spec)`: any labelled problem shipped inside the aeon package
(`shipped_problems()`: JapaneseVowels, BasicMotions, GunPoint, OSULeaf, ...) or a user file: CSV in
long format (one row per series and time step) or NPZ. -> `ClassificationData` with sequences
as (T_i, D) float arrays and integer labels over `classes`. `pad_sequences` and `resample`
bring the variable-length sequences to one length.

Nothing is downloaded: aeon ships its data; a missing package is reported with the command
that installs it.

Imports: numpy, the standard library, rnnkit.data.text (DataError), rnnkit.data.tables;
aeon lazily, only when an aeon problem is loaded.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .tables import numeric_column, read_csv_frame, require_package
from .text import DataError

AEON_INSTALL = "pip install 'aeon<1.7'"


@dataclasses.dataclass(frozen=True)
class Published:
    """A published 1-NN accuracy on the standard train/test split, with its source."""

    dtw: float | None
    euclidean: float | None
    source: str


UCR = "UCR archive, Dau et al. 2019 (IEEE/CAA J. Autom. Sinica 6(6))"
UEA = "UEA archive, Bagnall et al. 2018 (arXiv:1811.00075)"

AEON_PROBLEMS: dict[str, tuple[str, Published]] = {
    "JapaneseVowels": (
        "speaker recognition, 9 speakers, 12 LPC cepstra", Published(0.949, None, UEA)
    ),
    "BasicMotions": (
        "activity recognition, 4 activities, 6 sensor channels", Published(0.975, None, UEA)
    ),
    "GunPoint": ("gesture: gun drawn or pointed, 1 channel", Published(0.907, 0.913, UCR)),
    "ItalyPowerDemand": (
        "daily power demand: winter or summer, 1 channel", Published(0.950, 0.955, UCR)
    ),
    "ArrowHead": ("arrowhead outlines, 3 classes, 1 channel", Published(0.703, 0.800, UCR)),
}  # fmt: skip


@dataclasses.dataclass
class ClassificationData:
    """Labelled sequences with a fixed train/test split.

    Attributes:
        name: the problem's name or the file's path.
        X_train, X_test: lists of (T_i, D) float32 arrays (lengths may differ).
        y_train, y_test: (N,) int64 class ids into `classes`.
        classes: class names, as strings, in id order (sorted training labels).
        published: published 1-NN figures (aeon problems only).
        description: one line for reports.
    """

    name: str
    X_train: list[np.ndarray]
    y_train: np.ndarray
    X_test: list[np.ndarray]
    y_test: np.ndarray
    classes: list[str]
    published: Published | None = None
    description: str = ""

    @property
    def features(self) -> int:
        return int(self.X_train[0].shape[1])

    @property
    def max_length(self) -> int:
        return max(len(x) for x in [*self.X_train, *self.X_test])

    def summary(self) -> dict[str, Any]:
        lengths = [len(x) for x in [*self.X_train, *self.X_test]]
        return {
            "data": self.name,
            "train": len(self.X_train),
            "test": len(self.X_test),
            "classes": len(self.classes),
            "channels": self.features,
            "length": f"{min(lengths)}-{max(lengths)}"
            if min(lengths) != max(lengths)
            else str(lengths[0]),
        }

    def subset(self, train: int | None = None, test: int | None = None) -> ClassificationData:
        """The first `train` / `test` cases of each split (tiny runs and tests)."""
        return dataclasses.replace(
            self,
            X_train=self.X_train[:train],
            y_train=self.y_train[:train],
            X_test=self.X_test[:test],
            y_test=self.y_test[:test],
        )


def encode_labels(
    train: Sequence[Any], test: Sequence[Any], where: str = "the test data"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Labels -> ids over the sorted training labels; DataError for a label unseen in training.

    Example:
        >>> encode_labels(["a", "b", "a"], ["b"])
        (array([0, 1, 0]), array([1]), ['a', 'b'])
    """
    train_s = [str(v) for v in train]
    test_s = [str(v) for v in test]
    classes = sorted(set(train_s), key=_natural_key)
    if len(classes) < 2:
        raise DataError(f"the training data has {len(classes)} class; need at least 2 labels")
    index = {c: i for i, c in enumerate(classes)}
    unseen = sorted(set(test_s) - set(index), key=_natural_key)
    if unseen:
        raise DataError(
            f"{where} has labels never seen in training: {', '.join(map(repr, unseen[:5]))}"
            f"{' ...' if len(unseen) > 5 else ''}; training labels are "
            f"{', '.join(map(repr, classes[:10]))}"
        )
    ids_train = np.array([index[v] for v in train_s], dtype=np.int64)
    ids_test = np.array([index[v] for v in test_s], dtype=np.int64)
    return ids_train, ids_test, classes


def _natural_key(s: str) -> tuple[int, float | str]:
    """Sort "2" before "10" when labels are numbers, else alphabetically."""
    try:
        return (0, float(s))
    except ValueError:
        return (1, s)


def _aeon_frames(X: Any) -> list[np.ndarray]:
    """aeon's (N, D, T) array or list of (D, T_i) arrays -> list of (T_i, D) float32."""
    return [np.ascontiguousarray(np.asarray(x, dtype=np.float32).T) for x in X]


def aeon_data_dir() -> Path:
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"aeon problems need the aeon package, which is not installed; {AEON_INSTALL}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


@functools.cache
def shipped_problems() -> dict[str, Path]:
    """{name: its <name>_TRAIN.ts}: every labelled problem inside the installed aeon package
    (a .ts train/test pair whose header says `@classLabel true`), sorted by name; {} without
    aeon. Univariate and multivariate, equal and unequal length, as aeon ships them (e.g.
    JapaneseVowels and its equal-length JapaneseVowels_eq)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return {}
    found = {}
    for train in sorted(aeon_data_dir().glob("*/*_TRAIN.ts")):
        name = train.name[: -len("_TRAIN.ts")]
        if (train.parent / f"{name}_TEST.ts").exists() and _labelled(train):
            found[name] = train
    return found


def _labelled(ts_file: Path) -> bool:
    """True when a .ts file's header declares class labels (not a regression problem)."""
    with open(ts_file, encoding="utf-8", errors="replace") as f:
        for line in f:
            low = line.strip().lower()
            if low.startswith("@classlabel"):
                return low.split()[1:2] == ["true"]
            if low.startswith("@data"):
                return False
    return False


def load_aeon(name: str) -> ClassificationData:
    """A classification problem shipped in the aeon package, with its standard split, read
    from the package's own .ts files (nothing is downloaded).

    Raises DataError when aeon is missing (naming the install command) or the problem is not
    shipped (aeon would download it; rnnkit never does).
    """
    require_package("aeon", AEON_INSTALL, f"the {name} data set")
    shipped = shipped_problems()
    if name not in shipped:
        raise DataError(
            f"{name} is not shipped inside the aeon package (and rnnkit never downloads); "
            f"available: {', '.join(shipped)}"
        )
    from aeon.datasets import load_from_ts_file

    train = shipped[name]
    X_tr, y_tr = load_from_ts_file(str(train))
    X_te, y_te = load_from_ts_file(str(train.parent / f"{name}_TEST.ts"))
    y_train, y_test, classes = encode_labels(y_tr, y_te)
    description, published = AEON_PROBLEMS.get(name, ("", None))
    return ClassificationData(
        name, _aeon_frames(X_tr), y_train, _aeon_frames(X_te), y_test, classes, published,
        description,
    )  # fmt: skip


def load_classification_source(
    spec: str,
    test: str | None = None,
    *,
    id_column: str = "id",
    label_column: str = "label",
    time_column: str | None = None,
    split_column: str = "split",
    test_fraction: float = 0.25,
    seed: int = 0,
) -> ClassificationData:
    """`--dataset`: an aeon problem name, or a CSV (long format) / NPZ file.

    CSV long format: one row per (series, time step); columns `id_column` (series id),
    `label_column`, an optional `time_column` (rows are ordered by it within a series, else
    kept in file order), an optional `split_column` with values train/test, and every other
    column is a numeric feature (channel). NPZ: arrays `X` (N, T, D) or (N, T), `y` (N,),
    optional `lengths` (N,); optional `X_test`, `y_test`, `lengths_test`.
    Without a test file, split column or test arrays, a deterministic stratified
    `test_fraction` of the cases is held out.

    Example:
        >>> data = load_classification_source("JapaneseVowels")
        >>> data = load_classification_source("my.csv", id_column="subject")
    """
    if spec in shipped_problems() and not Path(spec).is_file():
        return load_aeon(spec)
    path = Path(spec)
    if not path.exists():
        if path.suffix.lower() not in (".csv", ".npz"):
            names = ", ".join(shipped_problems()) or f"none without aeon ({AEON_INSTALL})"
            raise DataError(
                f"no such file or data set: {spec!r}; data sets: {names}; "
                "or pass a .csv (long format) or .npz file"
            )
        raise DataError(f"no such file: {path}")
    kw = dict(
        id_column=id_column,
        label_column=label_column,
        time_column=time_column,
        split_column=split_column,
    )
    train_part = _read_labelled(path, **kw)
    if test is not None:
        test_path = Path(test)
        if not test_path.exists():
            raise DataError(f"no such file: {test_path}")
        test_part = _read_labelled(test_path, **kw)
        if train_part.test is not None or test_part.test is not None:
            raise DataError("pass either a test file or a split column / test arrays, not both")
        X_tr, y_tr, X_te, y_te = train_part.X, train_part.y, test_part.X, test_part.y
        where = str(test_path)
    elif train_part.test is not None:
        X_tr, y_tr = train_part.X, train_part.y
        X_te, y_te = train_part.test
        where = f"the test part of {path}"
    else:
        tr, te = stratified_split(train_part.y, test_fraction, seed)
        X_tr, y_tr = [train_part.X[i] for i in tr], [train_part.y[i] for i in tr]
        X_te, y_te = [train_part.X[i] for i in te], [train_part.y[i] for i in te]
        where = f"the held-out part of {path}"
    if not X_tr or not X_te:
        raise DataError(f"{path}: need at least one training and one test series")
    dims = {x.shape[1] for x in [*X_tr, *X_te]}
    if len(dims) != 1:
        raise DataError(f"series have different numbers of channels {sorted(dims)}; use one")
    y_train, y_test, classes = encode_labels(y_tr, y_te, where)
    return ClassificationData(str(path), X_tr, y_train, X_te, y_test, classes)


@dataclasses.dataclass
class _Labelled:
    X: list[np.ndarray]
    y: list[str]
    test: tuple[list[np.ndarray], list[str]] | None = None


def _read_labelled(path: Path, **kw: Any) -> _Labelled:
    suffix = path.suffix.lower()
    if path.is_dir():
        raise DataError(f"{path} is a directory; pass a .csv or .npz file")
    if suffix == ".npz":
        return _read_npz(path)
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_long_csv(path, **kw)
    raise DataError(f"{path}: unknown file type {suffix!r}; pass a .csv (long format) or .npz")


def _read_npz(path: Path) -> _Labelled:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as err:
        raise DataError(f"{path}: cannot read NPZ without pickles ({err})") from None
    except Exception as err:  # zipfile / format errors
        raise DataError(f"{path}: not a readable .npz file ({err})") from None
    for key in ("X", "y"):
        if key not in arrays:
            raise DataError(
                f"{path}: missing array {key!r}; expected X (N, T, D) or (N, T), y (N,), "
                f"optional lengths, X_test, y_test, lengths_test (found {sorted(arrays)})"
            )

    def part(xk: str, yk: str, lk: str) -> tuple[list[np.ndarray], list[str]]:
        X, y = arrays[xk], arrays[yk]
        if X.dtype.kind not in "fiub":
            raise DataError(f"{path}: {xk} must be numeric, got dtype {X.dtype}")
        if X.ndim == 2:
            X = X[:, :, None]
        if X.ndim != 3:
            raise DataError(f"{path}: {xk} must have shape (N, T, D) or (N, T), got {X.shape}")
        if y.ndim != 1 or len(y) != len(X):
            raise DataError(f"{path}: {yk} must have shape ({len(X)},), got {y.shape}")
        lengths = arrays.get(lk)
        if lengths is None:
            lengths = np.full(len(X), X.shape[1])
        elif lengths.shape != (len(X),) or lengths.dtype.kind not in "iu":
            raise DataError(f"{path}: {lk} must be integers of shape ({len(X)},)")
        elif lengths.min(initial=1) < 1 or lengths.max(initial=1) > X.shape[1]:
            raise DataError(f"{path}: {lk} must be in [1, {X.shape[1]}]")
        seqs = [np.asarray(X[i, : int(n)], dtype=np.float32) for i, n in enumerate(lengths)]
        for i, s in enumerate(seqs):
            if not np.isfinite(s).all():
                raise DataError(f"{path}: {xk}[{i}] has NaN or infinite values; fill them first")
        return seqs, [str(v) for v in y.tolist()]

    X, y = part("X", "y", "lengths")
    test = None
    if "X_test" in arrays or "y_test" in arrays:
        if "X_test" not in arrays or "y_test" not in arrays:
            raise DataError(f"{path}: X_test and y_test must come together")
        test = part("X_test", "y_test", "lengths_test")
    return _Labelled(X, y, test)


def _read_long_csv(
    path: Path,
    id_column: str,
    label_column: str,
    time_column: str | None,
    split_column: str,
) -> _Labelled:
    frame = read_csv_frame(path)
    cols = list(frame.columns)
    for col, flag in ((id_column, "--id-column"), (label_column, "--label-column")):
        if col not in cols:
            raise DataError(
                f"{path}: no column {col!r} (columns: {', '.join(cols[:12])}); name it with {flag}"
            )
    if time_column is not None and time_column not in cols:
        raise DataError(f"{path}: no column {time_column!r} (columns: {', '.join(cols[:12])})")
    special = {id_column, label_column, time_column, split_column}
    features = [c for c in cols if c not in special]
    if not features:
        raise DataError(
            f"{path}: no feature columns; besides {id_column!r} and {label_column!r} "
            "every column is a numeric channel"
        )
    values = np.stack([numeric_column(frame, c, path) for c in features], axis=1).astype(np.float32)
    if time_column is not None:
        t = numeric_column(frame, time_column, path)
        # by time, ties in file order; grouping by id below keeps this order within each id
        order = np.lexsort((np.arange(len(frame)), t))
    else:
        order = np.arange(len(frame))
    ids = frame[id_column].astype(str).to_numpy()
    labels = frame[label_column]
    if labels.isna().any():
        i = int(np.argmax(labels.isna().to_numpy()))
        raise DataError(f"{path}: column {label_column!r} is empty in data row {i + 1}")
    labels = labels.astype(str).to_numpy()
    splits = (
        frame[split_column].astype(str).str.strip().str.lower().to_numpy()
        if split_column in cols
        else None
    )
    if splits is not None:
        bad = sorted(set(splits) - {"train", "test"})
        if bad:
            raise DataError(
                f"{path}: column {split_column!r} must be train or test, got {bad[0]!r}"
            )
    groups: dict[str, list[int]] = {}
    for i in order:
        groups.setdefault(ids[i], []).append(int(i))
    X: dict[str, list] = {"train": [], "test": []}
    y: dict[str, list] = {"train": [], "test": []}
    for sid, rows in groups.items():
        labs = set(labels[rows])
        if len(labs) != 1:
            raise DataError(
                f"{path}: series {sid!r} has several labels {sorted(labs)[:3]}; "
                "a series has one label"
            )
        part = "train"
        if splits is not None:
            parts = set(splits[rows])
            if len(parts) != 1:
                raise DataError(f"{path}: series {sid!r} is in both train and test")
            part = parts.pop()
        X[part].append(values[rows])
        y[part].append(labels[rows[0]])
    if splits is None:
        return _Labelled(X["train"], y["train"])
    if not X["train"] or not X["test"]:
        missing = "train" if not X["train"] else "test"
        raise DataError(f"{path}: column {split_column!r} has no {missing!r} series")
    return _Labelled(X["train"], y["train"], (X["test"], y["test"]))


def stratified_split(labels: Sequence[Any], test_fraction: float, seed: int = 0):
    """Deterministic stratified split -> (train indices, test indices), both sorted."""
    if not 0 < test_fraction < 1:
        raise DataError(f"test fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    labels = np.asarray([str(v) for v in labels])
    train, test = [], []
    for c in sorted(set(labels)):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_fraction))
        n_test = min(max(n_test, 1 if len(idx) > 1 else 0), len(idx) - 1)
        test += idx[:n_test].tolist()
        train += idx[n_test:].tolist()
    return sorted(train), sorted(test)


def cv_folds(labels: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """(N,) fold ids in 0..folds-1, stratified: each class is shuffled and dealt round-robin."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=np.int64)
    offset = 0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + offset) % folds
        offset += len(idx)  # continue the deal so small classes do not all start at fold 0
    return fold


# ---- padding ----------------------------------------------------------------------------


def pad_sequences(seqs: Sequence[np.ndarray], length: int | None = None):
    """List of (T_i, D) arrays -> (N, T, D) float32 zero-padded array and (N,) lengths.

    Sequences longer than `length` keep their last `length` steps.
    """
    T = length or max(len(s) for s in seqs)
    D = seqs[0].shape[1]
    out = np.zeros((len(seqs), T, D), dtype=np.float32)
    lengths = np.zeros(len(seqs), dtype=np.int64)
    for i, s in enumerate(seqs):
        s = s[-T:]
        out[i, : len(s)] = s
        lengths[i] = len(s)
    return out, lengths


def resample(seqs: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Each (T_i, D) sequence linearly interpolated to `length` steps -> (N, length, D)."""
    out = np.empty((len(seqs), length, seqs[0].shape[1]), dtype=np.float64)
    grid = np.linspace(0.0, 1.0, length)
    for i, s in enumerate(seqs):
        if len(s) == length:
            out[i] = s
            continue
        src = np.linspace(0.0, 1.0, len(s)) if len(s) > 1 else np.zeros(1)
        for d in range(s.shape[1]):
            out[i, :, d] = np.interp(grid, src, s[:, d])
    return out
