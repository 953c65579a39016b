"""`rnnkit runs list [DIR]` and `rnnkit runs show RUN`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .errors import user_errors

runs_app = typer.Typer(help="Run directories: list them, show one.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


def _summary(path: Path) -> dict[str, Any] | None:
    """What `runs list` shows about a run directory, from its small files only (no weights)."""
    from ..atomic import read_jsonl
    from ..record import run_record

    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict) or "model" not in cfg:
        return None
    metrics = read_jsonl(path / "metrics.jsonl")
    steps = max((m.get("step", 0) for m in metrics), default=0)
    vals = [m for m in metrics if m.get("split") == "val" and isinstance(m.get("loss"), float)]
    full = [m for m in metrics if m.get("split") == "val_full"]
    extra = cfg.get("extra") if isinstance(cfg.get("extra"), dict) else {}
    task = run_record(extra)["task"] or ""
    val = None
    if full:
        val = next((v for k, v in full[-1].items() if k.startswith("nats_per_")), None)
    elif vals:
        val = min(m["loss"] for m in vals)
    return {
        "run": str(path),
        "task": task,
        "model": cfg["model"].get("kind", "?"),
        "steps": steps,
        "val": val,
        "modified": path.stat().st_mtime,
        "report": (path / "report.html").exists(),
    }


@runs_app.command("list")
def list_runs(
    root: Annotated[Path, typer.Argument(help="Where to look for run directories.")] = Path("runs"),
) -> None:
    """Run directories under ROOT (default ./runs), newest first."""
    import time

    if not root.is_dir():
        print(f"no runs: {root} does not exist")
        return
    candidates = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    rows = [s for p in candidates if (p / "config.json").exists() and (s := _summary(p))]
    if not rows:
        print(f"no runs in {root}")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("run", "task", "model", "steps", "val loss", "modified", "report"):
        table.add_column(col)
    for s in sorted(rows, key=lambda s: -s["modified"]):
        table.add_row(
            s["run"], s["task"], s["model"], str(s["steps"]),
            "" if s["val"] is None else f"{s['val']:.4f}",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(s["modified"])),
            "yes" if s["report"] else "no",
        )  # fmt: skip
    Console(width=200).print(table)


@runs_app.command("show")
def show(run: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """A run's configuration, data, final metrics and files."""
    from ..record import run_record
    from ..training import load_run

    with user_errors():
        loaded = load_run(run)
    cfg = loaded.model_config
    n_params = sum(p.numel() for p in loaded.model.parameters())
    print(f"run:        {run}")
    print(f"model:      {type(loaded.model).__name__}, {n_params:,} parameters")
    rnn = getattr(cfg, "rnn", None)
    if rnn is not None:
        print(f"recurrent:  {rnn.num_layers} x {rnn.cell} {rnn.hidden_size}")
    print(f"algorithm:  {loaded.algorithm}")
    print(f"checkpoint: {loaded.checkpoint or 'none'} (step {loaded.step})")
    record = run_record(loaded.extra)
    if record["task"]:
        print(f"task:       {record['task']} (run schema {record['schema']})")
    for section in ("options", "data", "machine"):
        if isinstance(record.get(section), dict) and record[section]:
            items = ", ".join(f"{k}={v}" for k, v in record[section].items() if k != "sha256")
            print(f"{section + ':':<11} {items}")
    vals = loaded.evals("val")
    if vals:
        best = min(vals, key=lambda m: m.get("loss", float("inf")))
        print(
            f"validation: {len(vals)} checks, best loss {best['loss']:.4f} at step {best['step']}"
        )
    for m in loaded.evals("val_full"):
        metrics = ", ".join(
            f"{k}={v:.4f}" for k, v in m.items() if isinstance(v, float) and k != "time"
        )
        print(f"final:      {metrics}")
    events = [m for m in loaded.metrics if m.get("event") and m.get("message")]
    if events:
        print(f"ended:      {events[-1]['event']}: {events[-1]['message']}")
    report = Path(run) / "report.html"
    print(f"report:     {report if report.exists() else 'none'}")
