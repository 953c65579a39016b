"""User tables: reading a CSV file with pandas, and checking that an optional package is there.

Shared by the classification archives (long-format CSV) and the single series (a CSV column).
Every way a file can be wrong is one `DataError` line saying what is wrong and what to do.

Imports: numpy, the standard library, rnnkit.data.text (DataError); pandas lazily.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np

from .text import DataError

PANDAS_INSTALL = "pip install pandas"


def require_package(module: str, install: str, what: str) -> None:
    """DataError naming `install` when `module` is not installed (checked without importing)."""
    if importlib.util.find_spec(module) is None:
        raise DataError(f"{what} needs the {module} package, which is not installed; {install}")


def pandas():
    """The pandas module, imported on first use; DataError naming the install if missing."""
    require_package("pandas", PANDAS_INSTALL, "reading CSV files")
    import pandas as pd

    return pd


MAX_CSV_BYTES = 256 << 20


def read_csv_frame(path: Path):
    """A CSV file (delimiter sniffed) as a DataFrame with stripped column names; DataError
    when it is unreadable, empty, not UTF-8 or not CSV."""
    import stat

    pd = pandas()
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO would hang, /dev/zero would never end
            raise DataError(f"{path} is not a regular file; pass a CSV file")
        if st.st_size > MAX_CSV_BYTES:
            raise DataError(
                f"{path} is {st.st_size / 2**20:,.0f} MiB; rnnkit reads CSV files of up to "
                f"{MAX_CSV_BYTES >> 20} MiB: pass a slice (e.g. the last rows) or aggregate it"
            )
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        if not head.strip():
            raise DataError(f"{path} is empty; pass a CSV with a header row and data")
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        # the delimiter is sniffed from the first 64 KiB, then the fast C parser reads it all
        # (pandas' sep=None needs the Python engine: ~20x the memory of the file)
        sep = csv.Sniffer().sniff(head.decode("utf-8", "replace"), ",;\t|").delimiter
    except csv.Error:
        sep = ","
    try:
        frame = pd.read_csv(path, sep=sep, engine="c")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file; save it as CSV (UTF-8)") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty; pass a CSV with a header row and data") from None
    except (pd.errors.ParserError, ValueError, csv.Error) as err:
        msg = " ".join(str(err).split())
        raise DataError(f"{path}: not a readable CSV file ({msg})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{path} has a header but no rows")
    return frame


def numeric_column(frame, column: str, path: Path, allow_nan: bool = False) -> np.ndarray:
    """`frame[column]` as (N,) float64; DataError naming the data row of the first value that
    is not a number, infinite, or (unless `allow_nan`) empty."""
    pd = pandas()
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    raw = frame[column]
    bad = np.isnan(values) & raw.notna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{path}: column {column!r} has a non-numeric value {str(raw.iloc[i])!r} "
            f"(data row {i + 1}); use numbers only"
        )
    if not allow_nan and np.isnan(values).any():
        i = int(np.argmax(np.isnan(values)))
        raise DataError(f"{path}: column {column!r} has an empty value (data row {i + 1})")
    if np.isinf(values).any():
        i = int(np.argmax(np.isinf(values)))
        raise DataError(f"{path}: column {column!r} has an infinite value (data row {i + 1})")
    return values
