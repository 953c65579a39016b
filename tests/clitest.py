"""The CLI helpers every CLI test shares: run the real app, check one-line errors."""

from __future__ import annotations

import math

from typer.testing import CliRunner

from rnnkit.cli import app

# values every numeric option is swept with (issue 10, item 7)
BAD_NUMBERS = ("0", "-1", "nan", "inf", "1e30", "abc")


def invoke(*args):
    """Run `rnnkit ARGS...` in-process; the result has exit_code, stdout and stderr."""
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, *needles: str) -> None:
    """Exit code 2, exactly one `error:` line on stderr naming each needle, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def numeric_fields(options_cls) -> list[tuple[str, type]]:
    """(field name, int or float) for every numeric CLI option of an options class."""
    from rnnkit.tasks.options import base_type, field_specs

    out = []
    for f, tp in field_specs(options_cls):
        kind, _ = base_type(tp)
        if kind in (int, float) and f.metadata.get("cli", True):
            out.append((f.name, kind))
    return out


def sweep_numeric_options(command: list[str], options_cls, out) -> int:
    """Every numeric option of `command` with each of BAD_NUMBERS: an illegal value gets one
    line and exit 2 naming the flag (before any data is read or training starts); a legal one
    builds the options. Returns how many illegal cases were checked."""
    from rnnkit.tasks.options import OptionError

    checked = 0
    for name, kind in numeric_fields(options_cls):
        flag = "--" + name.replace("_", "-")
        for text in BAD_NUMBERS:
            try:
                value = kind(float(text)) if kind is int else float(text)
                if kind is int and float(text) != value:
                    raise ValueError
                options_cls(**{name: value})
            except (ValueError, OverflowError, OptionError):
                legal = False
            else:
                legal = math.isfinite(float(text))
            if legal:
                continue
            one_line_error(invoke(*command, flag, text, "--out", out), flag)
            checked += 1
    assert not out.exists(), "a refused command created its run directory"
    return checked
