"""The run record: what config.json["extra"] says about the command that made a run.

Every application's run stores the same schema (rnnkit >= 0.2):

    {"schema": 2, "task": name, "options": {...}, "data": {...summary}, "machine": {...}}

Runs written by rnnkit 0.1 stored it as {"<task>": {"options", "data"}} or flat with "task";
`run_record` reads both and says which schema it found. Stdlib only.
"""

from __future__ import annotations

from typing import Any

SCHEMA = 2


def run_record(extra: dict[str, Any]) -> dict[str, Any]:
    """config.json["extra"] in the schema of today, whichever version wrote it.

    Returns {"schema", "task", "options", "data", "machine", ...}; "task" is None when the run
    was not made by an application (a plain Trainer run).
    """
    if extra.get("schema") == SCHEMA:
        return extra
    if isinstance(extra.get("task"), str):  # 0.1 flat form: forecast, sequence-classify
        rest = {k: v for k, v in extra.items() if k not in ("task", "options", "data")}
        task = extra["task"].replace("-", "_")
        return {"schema": 1, "task": task, "options": extra.get("options", {}),
                "data": extra.get("data", {}), **rest}  # fmt: skip
    if len(extra) == 1:  # 0.1 nested form: {"text": {...}}, {"sentiment": {...}}
        (task, inner), = extra.items()
        if isinstance(inner, dict):
            return {"schema": 1, "task": task, "options": inner.get("options", {}),
                    "data": inner.get("data", {})}  # fmt: skip
    return {"schema": SCHEMA, "task": None, "options": {}, "data": {}}
