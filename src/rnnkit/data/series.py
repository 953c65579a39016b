"""One real-valued series for forecasting: statsmodels' and vega_datasets' data sets or a
user's CSV column, optionally with covariate columns.

`load_series_source(spec, target, time, period, covariates, key)`: sunspots, co2 or nile from
statsmodels; seattle-weather (daily), seattle-temps and sf-temps (hourly) or stocks (monthly, five
companies: `key` picks one) from the files vega_datasets bundles; or a user CSV with a
`target` column. `detect_period` finds a seasonal period from the ACF of a training part.
Interior NaN gaps (co2 has 59) are filled by linear interpolation and counted;
leading/trailing NaNs are dropped. `segments` cuts sliding windows.

Nothing is downloaded: statsmodels and vega_datasets ship their data; a missing package is
reported with the command that installs it.

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
VEGA_INSTALL = "pip install vega_datasets==0.9.0"
PERIOD_POINTS = 20_000  # period detection reads at most the last this many training points


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
    covariates: np.ndarray | None = None  # (N, C) other columns, gaps filled, or None
    covariate_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.values)


STATSMODELS_SERIES = ("sunspots", "co2", "nile")
# vega_datasets' bundled files: name -> (file, time column, default target, key column)
VEGA_SERIES = {
    "seattle-weather": ("seattle-weather.csv", "date", "temp_max", None),
    "seattle-temps": ("seattle-temps.csv", "date", "temp", None),
    "sf-temps": ("sf-temps.csv", "date", "temp", None),
    "stocks": ("stocks.csv", "date", "price", "symbol"),
}
NAMED_SERIES = (*STATSMODELS_SERIES, *VEGA_SERIES)


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
    path: str | Path, target: str | None = None, time: str | None = None,
    period: int | None = None, covariates: tuple[str, ...] = (),
) -> Series:
    """A series from a CSV: the `target` column (default: the only numeric column), optionally
    ordered by a `time` column (numbers or dates), with `covariates` columns beside it. Empty
    cells are gaps and are interpolated; any other non-numeric value is an error.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory; pass a CSV file")
    return series_from_frame(read_csv_frame(path), str(path), target, time, period, covariates)


def series_from_frame(
    frame, name: str, target: str | None, time: str | None, period: int | None,
    covariates: tuple[str, ...] = (),
) -> Series:
    """The Series of a data frame's columns (see load_series_csv); `name` names it in errors."""
    cols = list(frame.columns)
    if target is None:
        pd = pandas()
        skip = {time, *covariates}
        numeric = [c for c in cols
                   if c not in skip and pd.to_numeric(frame[c], errors="coerce").notna().any()]
        if len(numeric) != 1:
            raise DataError(
                f"{name}: name the column to forecast with --target (columns: "
                f"{', '.join(cols[:12])})"
            )
        target = numeric[0]
    for c in (target, *covariates):
        if c not in cols:
            raise DataError(f"{name}: no column {c!r} (columns: {', '.join(cols[:12])})")
    if target in covariates:
        raise DataError(f"{name}: {target!r} is the target; it cannot also be a covariate")
    values = numeric_column(frame, target, Path(name), allow_nan=True)
    extra = [numeric_column(frame, c, Path(name), allow_nan=True) for c in covariates]
    label = "step"
    if time is not None:
        if time not in cols:
            raise DataError(f"{name}: no column {time!r} (columns: {', '.join(cols[:12])})")
        index, label = _time_index(frame[time], Path(name), time)
        if np.isnan(index).any():
            raise DataError(f"{name}: column {time!r} has empty values")
        order = np.argsort(index, kind="stable")
        if len(np.unique(index)) != len(index):
            raise DataError(f"{name}: column {time!r} has repeated times; one row per time step")
        values, index, extra = values[order], index[order], [e[order] for e in extra]
    else:
        index = np.arange(len(values), dtype=np.float64)
    v, n, keep = fill_gaps(values, f"{name} column {target!r}")
    cov = None
    if covariates:
        cov = np.stack([_fill_covariate(e[keep], f"{name} column {c!r}")
                        for e, c in zip(extra, covariates, strict=True)], axis=1)  # fmt: skip
    return Series(name, v, index[keep], target, period, n, None, label, cov, tuple(covariates))


def _fill_covariate(values: np.ndarray, what: str) -> np.ndarray:
    """Interior gaps interpolated, leading/trailing ones held at the nearest value."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    if not ok.any():
        raise DataError(f"{what} has no numeric values")
    x = np.arange(len(v))
    return np.interp(x, x[ok], v[ok])


def load_vega_series(
    name: str, target: str | None, period: int | None, covariates: tuple[str, ...],
    key: str | None,
) -> Series:
    """seattle-weather, seattle-temps, sf-temps or stocks from the files vega_datasets ships
    (offline)."""
    import importlib.resources

    require_package("vega_datasets", VEGA_INSTALL, f"the {name} data set")
    file, time, default_target, key_column = VEGA_SERIES[name]
    path = importlib.resources.files("vega_datasets") / "_data" / file
    frame = pandas().read_csv(str(path))
    label = name
    if key_column is not None:
        keys = sorted(frame[key_column].unique())
        if key is None:
            raise DataError(f"{name} holds several series; pick one with --series "
                            f"({', '.join(keys)})")  # fmt: skip
        if key not in keys:
            raise DataError(f"{name}: no series {key!r}; one of {', '.join(keys)}")
        frame, label = frame[frame[key_column] == key].reset_index(drop=True), f"{name} {key}"
    elif key is not None:
        raise DataError(f"--series picks a company in stocks; {name} has one series")
    return series_from_frame(frame, label, target or default_target, time, period, covariates)


def detect_period(train: np.ndarray, max_points: int = PERIOD_POINTS) -> int | None:
    """A seasonal period from the autocorrelation of (the last `max_points` of) a training
    part, or None when there is none.

    The series is linearly detrended; every local ACF peak at lag k >= 2 (up to a third of the
    points) is scored by its prominence, a[k] - min(a[1..k-1]). Peaks must be prominent (>=
    0.3) and significant (a[k] > 2/sqrt(n)); of those scoring within 10% of the best, the
    shortest lag wins (a period's multiples peak almost as high). Memory: O(max_points).

    Example: sunspots 1700-1920 -> 11, co2 weekly -> 52, hourly temperatures -> 24.
    """
    x = np.asarray(train[-max_points:], dtype=np.float64)
    n = len(x)
    if n < 8 or np.ptp(x) == 0:
        return None
    t = np.arange(n)
    x = x - np.polyval(np.polyfit(t, x, 1), t)
    f = np.fft.rfft(x, 2 * n)
    a = np.fft.irfft(f * np.conj(f))[: n // 3 + 2]
    if a[0] <= 0:
        return None
    a = a / a[0]
    k = np.arange(2, len(a) - 1)
    peak = (a[k] > a[k - 1]) & (a[k] >= a[k + 1]) & (a[k] > 2 / np.sqrt(n))
    if not peak.any():
        return None
    lags = k[peak]
    prominence = a[lags] - np.minimum.accumulate(a[1:])[lags - 2]
    ok = prominence >= 0.3
    if not ok.any():
        return None
    lags, prominence = lags[ok], prominence[ok]
    return int(lags[prominence >= 0.9 * prominence.max()].min())


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
    spec: str, target: str | None = None, time: str | None = None, period: int | None = None,
    covariates: tuple[str, ...] = (), key: str | None = None,
) -> Series:
    """`--data`: a named series (NAMED_SERIES) or a CSV file path. `key`: the company in
    stocks."""
    if spec in NAMED_SERIES and not Path(spec).is_file():
        if spec in VEGA_SERIES:
            if time is not None:
                raise DataError(f"--time is for CSV files; {spec} has its own time column")
            return load_vega_series(spec, target, period, covariates, key)
        if target is not None or time is not None or covariates or key is not None:
            raise DataError(f"--target/--time/--covariates/--series are for CSV files and "
                            f"vega data sets; {spec} has one series")  # fmt: skip
        s = load_statsmodels_series(spec)
        if period is not None:
            s.period = period
        return s
    if key is not None:
        raise DataError("--series picks a company in stocks; a CSV file gives one series")
    p = Path(spec)
    if not p.exists() and p.suffix.lower() != ".csv":
        raise DataError(
            f"no such file or series: {spec!r}; series: {', '.join(NAMED_SERIES)}, "
            "or pass a .csv file with --target COLUMN"
        )
    return load_series_csv(p, target, time, period, covariates)


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
