"""User errors -> one line on stderr and exit code 2, never a traceback.

The project's known error types are ValueError subclasses that carry a one-line message
saying what was wrong and what to do: `rnnkit.data.text.DataError` (bad data or input files),
`rnnkit.deps.MissingDependency` (an optional package to install) and `rnnkit.training.RunError`
(a path that is not a usable run directory). Anything else is a bug and keeps its traceback.

Use in a command:

    @app.command()
    def generate(...):
        with user_errors():
            ...
        # or raise fail("--length must be > 0") directly for option checks
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

EXIT_USAGE = 2


def known_errors() -> tuple[type[BaseException], ...]:
    """The exception types whose message is meant for the user."""
    from ..data.text import DataError
    from ..deps import MissingDependency

    types: list[type[BaseException]] = [DataError, MissingDependency]
    try:  # training sits above data in the import chain; tolerate a build without it
        from ..training import RunError
    except ImportError:
        pass
    else:
        types.append(RunError)
    return tuple(types)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `error: message` (one line) on stderr; return the Exit to raise.

    Example:
        >>> raise fail("--temperature must be >= 0, got -1")
    """
    line = " ".join(str(message).split())  # one line, whatever the message held
    print(f"error: {line}", file=sys.stderr, flush=True)
    return typer.Exit(code)


@contextmanager
def user_errors(*extra: type[BaseException]) -> Iterator[None]:
    """Turn the known error types (and `extra` ones) raised inside into `fail(...)`."""
    from ..tasks.options import OptionError

    try:
        yield
    except OptionError as err:
        raise fail(err.for_flag(flag(err.field))) from None
    except (*known_errors(), *extra) as err:
        raise fail(str(err)) from None


def flag(field: str) -> str:
    """The CLI flag of an options field: seq_len -> --seq-len (a phrase is left as it is)."""
    return "--" + field.replace("_", "-") if field.isidentifier() else field
