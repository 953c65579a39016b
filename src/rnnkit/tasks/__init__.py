"""Applications: one package per task, data -> model -> metrics -> report.

Imports anything below it in the chain (config .. training, data, diagnostics); imported by cli.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy(package: str, modules: dict[str, str] | None = None) -> Callable[[str], Any]:
    """A task package's `__getattr__`: its names load from `<package>.task` (or the submodule
    `modules` names for them) on first use, so `--help` never imports torch.

    Example (in tasks/<name>/__init__.py):
        >>> __getattr__ = lazy(__name__)
    """
    modules = modules or {}

    def __getattr__(name: str) -> Any:
        if name.startswith("__") or name == "task" or name in modules.values():
            raise AttributeError(name)  # submodules: the import system sets them itself
        module = importlib.import_module(f"{package}.{modules.get(name, 'task')}")
        return getattr(module, name)

    return __getattr__
