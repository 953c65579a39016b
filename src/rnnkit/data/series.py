"""One real-valued series for forecasting: statsmodels' data sets or a user's CSV column.

`load_series_source(spec, target, time)`: sunspots, co2 or nile from statsmodels, or a user
CSV with a `target` column. Interior NaN gaps (co2 has 59) are filled by linear interpolation
and counted; leading/trailing NaNs are dropped. `segments` cuts sliding windows.

Nothing is downloaded: statsmodels ships its data; a missing package is reported with the
command that installs it.

Imports: numpy, the standard library, rnnkit.data.text (DataError), rnnkit.data.tables;
statsmodels lazily, only when one of its series is loaded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .tables import numeric_column, pandas, read_csv_frame, require_package
from .text import DataError

STATSMODELS_INSTALL = "pip install statsmodels"


@dataclasses.dataclass
class Series:
    """One real-valued series, regularly spaced.

    Attributes:
        name: the data set's name or the file's path.
        values: (N,) float64, gaps already filled.
        index: (N,) float64 positions for plots and splits (years, decimal years, or 0..N-1).
        target: what the values are (column name).
        period: seasonal period in steps (seasonal naive baseline), or None.
        gaps_filled: how many NaN values were interpolated.
        default_test: (first index value of the test part, last one) for data sets with a
            standard split (sunspots: 1921-1987, Zhang 2003), else None.
    """

    name: str
    values: np.ndarray
    index: np.ndarray
    target: str
    period: int | None = None
    gaps_filled: int = 0
    default_test: tuple[float, float] | None = None
    index_label: str = "step"

    def __len__(self) -> int:
        return len(self.values)


STATSMODELS_SERIES = ("sunspots", "co2", "nile")


def fill_gaps(values: np.ndarray, what: str = "the series") -> tuple[np.ndarray, int, slice]:
    """Linear interpolation over interior NaNs; leading/trailing NaNs are cut.

    Returns (filled values, number filled, the slice of the input that was kept).
    """
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    if not ok.any():
        raise DataError(f"{what} has no numeric values")
    first, last = int(np.argmax(ok)), len(v) - int(np.argmax(ok[::-1]))
    v, ok = v[first:last].copy(), ok[first:last]
    n = int((~ok).sum())
    if n:
        x = np.arange(len(v))
        v[~ok] = np.interp(x[~ok], x[ok], v[ok])
    return v, n, slice(first, last)


def load_statsmodels_series(name: str) -> Series:
    """sunspots (yearly 1700-2008), co2 (weekly 1958-2001, 59 NaNs) or nile (yearly)."""
    require_package("statsmodels", STATSMODELS_INSTALL, f"the {name} data set")
    import statsmodels.datasets as smd

    if name == "sunspots":
        df = smd.sunspots.load_pandas().data
        v, n, keep = fill_gaps(df["SUNACTIVITY"].to_numpy(), name)
        idx = df["YEAR"].to_numpy(dtype=np.float64)[keep]
        return Series(name, v, idx, "SUNACTIVITY", 11, n, (1921.0, 1987.0), "year")
    if name == "co2":
        df = smd.co2.load_pandas().data
        v, n, keep = fill_gaps(df["co2"].to_numpy(), name)
        when = df.index[keep]
        idx = np.asarray(when.year + (when.dayofyear - 1) / 365.25, dtype=np.float64)
        return Series(name, v, idx, "co2", 52, n, None, "year")
    if name == "nile":
        df = smd.nile.load_pandas().data
        v, n, keep = fill_gaps(df["volume"].to_numpy(), name)
        idx = df["year"].to_numpy(dtype=np.float64)[keep]
        return Series(name, v, idx, "volume", None, n, None, "year")
    raise DataError(f"unknown series {name!r}; known: {', '.join(STATSMODELS_SERIES)}")


def load_series_csv(
    path: str | Path, target: str | None = None, time: str | None = None, period: int | None = None
) -> Series:
    """A series from a CSV: the `target` column (default: the only numeric column), optionally
    ordered by a `time` column (numbers or dates). Empty cells are gaps and are interpolated;
    any other non-numeric value is an error.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory; pass a CSV file")
    frame = read_csv_frame(path)
    cols = list(frame.columns)
    if target is None:
        pd = pandas()
        numeric = [
            c for c in cols if c != time and pd.to_numeric(frame[c], errors="coerce").notna().any()
        ]
        if len(numeric) != 1:
            raise DataError(
                f"{path}: name the column to forecast with --target (columns: "
                f"{', '.join(cols[:12])})"
            )
        target = numeric[0]
    if target not in cols:
        raise DataError(f"{path}: no column {target!r} (columns: {', '.join(cols[:12])})")
    values = numeric_column(frame, target, path, allow_nan=True)
    label = "step"
    if time is not None:
        if time not in cols:
            raise DataError(f"{path}: no column {time!r} (columns: {', '.join(cols[:12])})")
        index, label = _time_index(frame[time], path, time)
        if np.isnan(index).any():
            raise DataError(f"{path}: column {time!r} has empty values")
        order = np.argsort(index, kind="stable")
        if len(np.unique(index)) != len(index):
            raise DataError(f"{path}: column {time!r} has repeated times; one row per time step")
        values, index = values[order], index[order]
    else:
        index = np.arange(len(values), dtype=np.float64)
    v, n, keep = fill_gaps(values, f"{path} column {target!r}")
    return Series(str(path), v, index[keep], target, period, n, None, label)


def _time_index(col, path: Path, name: str) -> tuple[np.ndarray, str]:
    pd = pandas()
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().all():
        return num.to_numpy(dtype=np.float64), name
    try:
        when = pd.to_datetime(col, errors="raise")
    except (ValueError, TypeError):
        raise DataError(
            f"{path}: column {name!r} is neither numbers nor dates (e.g. {str(col.iloc[0])!r})"
        ) from None
    # the time of day counts: hourly (or finer) stamps on one day are distinct steps
    day = (when.dt.hour * 3600 + when.dt.minute * 60 + when.dt.second) / 86400
    years = when.dt.year + (when.dt.dayofyear - 1 + day) / 365.25
    return years.to_numpy(dtype=np.float64), "year"


def load_series_source(
    spec: str, target: str | None = None, time: str | None = None, period: int | None = None
) -> Series:
    """`--dataset`: sunspots | co2 | nile (statsmodels) or a CSV file path."""
    if spec in STATSMODELS_SERIES and not Path(spec).is_file():
        if target is not None or time is not None:
            raise DataError(f"--target/--time are for CSV files; {spec} has one series")
        s = load_statsmodels_series(spec)
        if period is not None:
            s.period = period
        return s
    p = Path(spec)
    if not p.exists() and p.suffix.lower() != ".csv":
        raise DataError(
            f"no such file or series: {spec!r}; series: {', '.join(STATSMODELS_SERIES)}, "
            "or pass a .csv file with --target COLUMN"
        )
    return load_series_csv(p, target, time, period)


def check_length(n: int, need: int, what: str, hint: str) -> None:
    if n < need:
        raise DataError(f"{what} has {n} points but needs at least {need}; {hint}")


def segments(values: np.ndarray, length: int, stride: int = 1) -> np.ndarray:
    """All windows of `length` consecutive values: (N,) -> (M, length), a copy."""
    v = np.asarray(values)
    if len(v) < length:
        return np.empty((0, length), dtype=v.dtype)
    view = np.lib.stride_tricks.sliding_window_view(v, length)
    return np.ascontiguousarray(view[::stride])
