"""Imports flow one way (DESIGN.md): config -> cells -> layers/kernels -> models -> algorithms
-> training -> tasks -> bench -> cli; data and diagnostics sit beside the chain."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "rnnkit"
RANK = {
    "config": 0,
    "atomic": 0,
    "cells": 1,
    "kernels": 2,
    "layers": 2,
    "models": 3,
    "algorithms": 4,
    "training": 5,
    "tasks": 6,
    "bench": 7,  # above tasks, not an application; the cli wraps it
    "serve": 7,  # the HTTP server: above tasks (their predictors), below the cli
    "cli": 8,
}
SIDE = {"data", "diagnostics"}  # may import anything up to layers, imported by tasks and cli


def imported_subpackages(path: Path):
    tree = ast.parse(path.read_text())
    rel = path.relative_to(PKG).parts
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").startswith("rnnkit."):
                yield node.module.split(".")[1]
            elif node.level >= 2 or (node.level == 1 and len(rel) == 1):
                mod = (node.module or "").split(".")[0]
                if mod:
                    yield mod
                else:
                    yield from (a.name for a in node.names)


def test_imports_flow_one_way():
    bad = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).parts
        if len(rel) == 1:
            continue  # rnnkit/__init__.py re-exports; __main__ starts the cli
        here = rel[0]
        for there in imported_subpackages(path):
            if there == here or there not in RANK | dict.fromkeys(SIDE, 0):
                continue
            if here in SIDE:
                ok = (
                    there in SIDE
                    or RANK[there] <= RANK["layers"]
                    or (here == "diagnostics" and there in ("models", "training", "algorithms"))
                )
            elif there in SIDE:
                ok = RANK[here] >= RANK["models"] or there == "data" and here == "models"
            else:
                ok = RANK[there] <= RANK[here]
            if not ok:
                bad.append(f"{'/'.join(rel)} imports {there}")
    assert not bad, bad
