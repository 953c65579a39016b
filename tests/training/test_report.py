"""rnnkit.training.report: the self-contained HTML report writer."""

from __future__ import annotations

import base64
import re

from rnnkit.training.report import Report, figure_png, line_plot


def test_line_plot_embeds_as_png():
    uri = figure_png(line_plot({"a": ([0, 1, 2], [3.0, 2.0, 1.5]), "b": ([0, 2], [1, 1])}))
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_escapes_and_writes_atomically(tmp_path):
    r = Report("Run <1> & co")
    r.heading("Config").table({"lr": 0.003, "steps": 1200, "name": "<b>x</b>"})
    r.table([["layer 1", 1.0, 0.5]], header=["", "0 back", "10 back"])
    r.paragraph("a < b").pre("to be\nor not", caption="sample")
    r.figure(line_plot({"loss": ([1, 2], [2.0, 1.0])}, logy=True), "losses")
    path = r.write(tmp_path / "report.html")
    html = path.read_text(encoding="utf-8")
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "Run &lt;1&gt; &amp; co" in html
    assert "1,200" in html and "0.003" in html
    assert html.count("data:image/png;base64,") == 1
    # nothing is fetched when the page opens: no scripts, no external sources or links
    assert "<script" not in html and not re.search(r"(src|href)=\"(?!data:)", html)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temp file left
