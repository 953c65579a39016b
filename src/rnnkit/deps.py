"""Optional dependencies, checked before any work starts.

A task calls `require` first, so a missing package is reported in one line with the command that
installs it, not after minutes of training. The pins come from rnnkit's own metadata (the extras in
pyproject.toml), so the command installs what pyproject asks for.

Imports: the standard library only (the check must not cost a torch import).

Example:
    >>> require("sklearn", what="the bag-of-words baseline")
"""

from __future__ import annotations

import importlib.util
import re
from importlib import metadata

# import name -> distribution name, where they differ
DISTRIBUTIONS = {"sklearn": "scikit-learn"}


class MissingDependency(ValueError):
    """An optional package is not installed. The message is one line: what, and how to install."""


def require(*modules: str, extra: str | None = "apps", what: str = "this") -> None:
    """Raise `MissingDependency` unless every one of `modules` (import names) can be imported.

    Nothing is imported: the check is `importlib.util.find_spec`. The message names
    `pip install 'rnnkit[extra]'` and the missing packages alone, with their pins from the extra;
    `extra=None` names only the packages.

    Example:
        >>> require("aeon", "pandas", what="the GunPoint data set")
        MissingDependency: the GunPoint data set needs aeon (not installed); install with:
        pip install 'rnnkit[apps]' (or only what is missing: pip install 'aeon<1.7,>=1.0')
    """
    missing = [m for m in modules if not _importable(m)]
    if not missing:
        return
    names = [DISTRIBUTIONS.get(m.partition(".")[0], m.partition(".")[0]) for m in missing]
    pins = _pins(extra)
    how = "pip install " + " ".join(_quote(pins.get(_canonical(n), n)) for n in names)
    if extra is not None:
        how = f"pip install 'rnnkit[{extra}]' (or only what is missing: {how})"
    raise MissingDependency(f"{what} needs {', '.join(names)} (not installed); install with: {how}")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        return False


def _pins(extra: str | None) -> dict[str, str]:
    """Canonical distribution name -> requirement (e.g. "aeon<1.7,>=1.0") for rnnkit's `extra`."""
    if extra is None:
        return {}
    try:
        requirements = metadata.requires("rnnkit") or []
    except metadata.PackageNotFoundError:  # a source tree that was never installed: bare names
        return {}
    pins = {}
    for line in requirements:
        requirement, _, marker = line.partition(";")
        if re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", marker):
            name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
            if name:
                pins[_canonical(name.group())] = requirement.strip()
    return pins


def _canonical(name: str) -> str:
    """PEP 503 normalised distribution name: scikit_learn, Scikit.Learn -> scikit-learn."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _quote(requirement: str) -> str:
    """Single-quote a requirement with a version specifier, so the shell leaves `<` alone."""
    return f"'{requirement}'" if re.search(r"[<>=!~ ]", requirement) else requirement
