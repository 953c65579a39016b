"""Self-contained HTML reports of runs: one file, no scripts, no links out; plots are inline PNGs.

`Report(title)` collects sections (`heading`, `paragraph`, `table`, `figure`, `pre`) and
`Report.write(path)` writes the page atomically. `line_plot` and `bar_plot` (and
`series_axes` and `finish_series` for hand-drawn plots) draw with matplotlib (Agg backend) and
return the figure ready for `Report.figure`. The blocks the applications draw alike (training
curves, a classifier against its baselines) are in rnnkit.tasks.report.

Example:
    >>> r = Report("My run")
    >>> r.table({"steps": 100, "val loss": 1.62})
    >>> r.figure(line_plot({"train": (xs, ys)}, xlabel="step", ylabel="loss"), "losses")
    >>> r.write("runs/x/report.html")
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60em;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #ccc; padding: .25em .7em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: .8em; white-space: pre-wrap;
      font-size: .9em; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: .9em; }
img { max-width: 100%; }
.muted { color: #777; font-size: .85em; }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def figure_png(fig) -> str:
    """A matplotlib figure as a base64 PNG data URI; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    logy: bool = False,
    markers: bool = False,
    size: tuple[float, float] = (7.0, 3.6),
):
    """A figure with one line per entry of `series` (label -> (xs, ys))."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    for label, (xs, ys) in series.items():
        if len(xs):
            # a series of few points (e.g. a short run's validations) would vanish as a line
            mark = "o" if markers or len(xs) < 20 else None
            ax.plot(list(xs), list(ys), label=label, marker=mark, ms=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if sum(1 for xs, _ in series.values() if len(xs)) > 1:
        ax.legend()
    fig.tight_layout()
    return fig


def series_axes(size: tuple[float, float]):
    """(fig, ax) of `size` inches for a plot of a series (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)


def finish_series(fig, ax, xlabel: str, ylabel: str, **legend):
    """Labels, a small legend (`legend`: its options) and a light grid; returns the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, **legend)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def bar_plot(values: Mapping[str, float], xlabel: str = "", size=(6.0, 2.6)):
    """Horizontal bars, one per entry (the first highlighted), each labelled with its value."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    names, vals = list(values), list(values.values())
    ax.barh(names, vals, color=["#3b6ea8"] + ["#999"] * (len(vals) - 1))
    for y, v in enumerate(vals):
        ax.text(v, y, f" {v:.3f}", va="center")
    ax.set_xlim(0, max([1.0, *vals]) * 1.08)
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


class Report:
    """An HTML page built section by section. Every string is escaped; nothing is fetched."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []

    def heading(self, text: str) -> Report:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")
        return self

    def paragraph(self, text: str, muted: bool = False) -> Report:
        cls = ' class="muted"' if muted else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")
        return self

    def pre(self, text: str, caption: str = "") -> Report:
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.parts.append(f"<figure>{cap}<pre>{html.escape(text)}</pre></figure>")
        return self

    def table(
        self, rows: Mapping[str, Any] | Sequence[Sequence[Any]], header: Sequence[str] = ()
    ) -> Report:
        """A key/value table from a mapping, or a table of rows (with an optional header)."""
        out = ["<table>"]
        if header:
            out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header))
        items = rows.items() if isinstance(rows, Mapping) else rows
        for row in items:
            cells = []
            for i, v in enumerate(row):
                num = isinstance(v, int | float) and not isinstance(v, bool)
                tag = "th" if isinstance(rows, Mapping) and i == 0 else "td"
                cls = ' class="num"' if num else ""
                cells.append(f"<{tag}{cls}>{html.escape(_fmt(v))}</{tag}>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
        self.parts.append("\n".join(out))
        return self

    def figure(self, fig, caption: str = "") -> Report:
        """Embed a matplotlib figure as an inline PNG."""
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        alt = html.escape(caption or "plot", quote=True)
        self.parts.append(f'<figure><img alt="{alt}" src="{figure_png(fig)}">{cap}</figure>')
        return self

    def render(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        body = "\n".join(self.parts)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>\n<body>"
            f'<h1>{html.escape(self.title)}</h1>\n<p class="muted">written {stamp} by rnnkit'
            f"</p>\n{body}\n</body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        """Write the page atomically (temp file, fsync, rename); returns the path."""
        path = Path(path)
        atomic_write_text(path, self.render())
        return path
