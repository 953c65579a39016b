"""The CLI helpers every CLI test shares: run the real app, check one-line errors."""

from __future__ import annotations

import functools
import math
from unittest import mock

import typer.main
import typer.testing
from typer.testing import CliRunner

from rnnkit.cli import app

# values every numeric option is swept with (issue 10, item 7)
BAD_NUMBERS = ("0", "-1", "nan", "inf", "1e30", "abc")


@functools.cache
def _command():
    # typer rebuilds the click command tree on every CliRunner.invoke (~0.1 s with rnnkit's
    # commands); built once, a failing invocation costs milliseconds
    return typer.main.get_command(app)


def invoke(*args):
    """Run `rnnkit ARGS...` in-process; the result has exit_code, stdout and stderr."""
    with mock.patch.object(typer.testing, "_get_command", lambda _: _command()):
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


# ---- a tiny valid run, and damaged copies of it (issue 17's fuzz and audit) ---------------

WORDS = ["good", "bad", "film", "dull", "fun", "plot"]


def tiny_sentiment_run(out) -> None:
    """A real `train sentiment` run directory (config.json, weights, metrics, a checkpoint,
    vocab.json) made in ~0.1 s: two Trainer steps of a 4-unit classifier, no report."""
    import torch

    from rnnkit.config import TrainConfig
    from rnnkit.data.sentiment import fit_vocab
    from rnnkit.record import SCHEMA
    from rnnkit.tasks.options import to_dict
    from rnnkit.tasks.sentiment.options import SentimentOptions
    from rnnkit.tasks.sentiment.task import VOCAB_FILE, build_classifier
    from rnnkit.training import Trainer, write_run_json

    options = SentimentOptions(hidden=4, embedding=4, steps=2, threads=1, ensemble=1)
    vocab = fit_vocab(WORDS)
    torch.manual_seed(0)
    model = build_classifier(options, len(vocab), 2)
    extra = {"schema": SCHEMA, "task": "sentiment", "options": to_dict(options), "data": {},
             "machine": {}}  # fmt: skip

    def batch(step, g):
        ids = torch.randint(2, len(vocab), (4, 3), generator=g)
        return ids, torch.randint(0, 2, (4,), generator=g), torch.full((4,), 3)

    cfg = TrainConfig(steps=2, progress=False, eval_every=1)
    Trainer(model, config=cfg, run_dir=out, extra=extra).fit(batch, [batch(0, None)])
    write_run_json(out, VOCAB_FILE, {"words": vocab.to_dict(), "labels": ["neg", "pos"]})


def run_files(run) -> list:
    """Every file of a run directory, sorted (what a mutation may hit)."""
    return sorted(p for p in run.rglob("*") if p.is_file() and p.name != ".lock")


def mutate(run, rng) -> str:
    """Damage run directory `run` in one of issue 17's ways, chosen by `rng` (random.Random);
    returns what was done, for a failure message."""
    import json
    import os

    path = rng.choice(run_files(run))
    raw = path.read_bytes()
    kind = rng.choice(["truncate", "flip", "resize", "json", "sizes", "nest", "utf8", "dev_zero",
                       "fifo", "missing", "directory", "link_out", "latest"])  # fmt: skip
    if kind == "truncate":
        path.write_bytes(raw[: rng.randrange(len(raw))])
    elif kind == "flip":
        data = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
    elif kind == "resize":
        path.write_bytes(raw + bytes(rng.randrange(1, 4096)) if rng.random() < 0.5
                         else raw[:8] + raw[8:][::-1])  # fmt: skip
    elif kind in ("json", "sizes"):
        path = run / "config.json" if kind == "sizes" or rng.random() < 0.5 else path
        try:
            doc = json.loads(path.read_bytes())
        except ValueError:
            doc = {}
        leaves = []

        def walk(node):
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for k, v in items:
                leaves.append((node, k))
                if isinstance(v, dict | list):
                    walk(v)

        if isinstance(doc, dict | list):
            walk(doc)
        if leaves:
            node, k = rng.choice(leaves)
            if kind == "sizes":
                node[k] = rng.choice([10**6, 10**9, 10**12, -1, 0, 2**63])
            else:
                node[k] = rng.choice([None, "x", [], {}, 1.5, True, float("nan"), -7, [1] * 3])
        path.write_text(json.dumps(doc))
    elif kind == "nest":
        path.write_text('{"a": ' + "[" * 50_000 + "]" * 50_000 + "}")
    elif kind == "utf8":
        i = rng.randrange(len(raw) + 1)
        path.write_bytes(raw[:i] + b"\xff\xfe\xc3" + raw[i:])
    elif kind == "dev_zero":
        path.unlink()
        os.symlink("/dev/zero", path)
    elif kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "missing":
        path.unlink()
    elif kind == "directory":
        path.unlink()
        path.mkdir()
    elif kind == "link_out":
        path.unlink()
        os.symlink("/etc/hostname", path)
    else:
        latest = run / "checkpoint" / "latest.json"
        latest.write_text(json.dumps({"step": 10**12, "dir": rng.choice(["../..", "/etc",
                                                                           "step-x", 5])}))
        path = latest
    return f"{kind} {path.relative_to(run)}"
