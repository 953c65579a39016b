"""`rnnkit generate`, `rnnkit evaluate`: a trained text run (`rnnkit train text`) at work."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import Threads, check_range, use_threads
from .common import stderr_console as _console
from .errors import fail, flag, user_errors

MAX_LENGTH = 1_000_000  # streamed, and Ctrl-C keeps what was printed; beyond this is a mistake


def register(app: typer.Typer) -> None:
    """Add `generate` and `evaluate` (`train text` is derived from the task's options)."""
    app.command("generate")(generate)
    app.command("evaluate")(evaluate)


def generate(
    run: Annotated[Path, typer.Argument(help="A run directory written by `rnnkit train text`.")],
    prompt: Annotated[
        str,
        typer.Option(
            help="Text to start from (unknown characters are "
            "replaced by a close known one or dropped)."
        ),
    ] = "",
    length: Annotated[
        int, typer.Option(help=f"How many characters (or words) to generate (1-{MAX_LENGTH:,}).")
    ] = 500,
    temperature: Annotated[float, typer.Option(help="Sampling temperature; 0 = greedy.")] = 0.8,
    top_k: Annotated[int | None, typer.Option(help="Sample among the k likeliest only.")] = None,
    top_p: Annotated[
        float | None,
        typer.Option(help="Nucleus sampling: smallest set with this much probability."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same text).")] = None,
    threads: Threads = 0,
) -> None:
    """Stream generated text to the terminal as it is produced."""
    from ..data.vocab import EncodeReport
    from ..models.decoding import check_sampling
    from ..tasks import text

    if length <= 0:
        raise fail(f"--length must be > 0, got {length}")
    check_range("--length", length, 1, MAX_LENGTH)
    try:
        check_sampling(temperature, top_k, top_p)
    except ValueError as err:  # it names the argument: temperature must be >= 0
        name, rest = str(err).split(" ", 1)
        raise fail(f"{flag(name)} {rest}") from None
    use_threads(threads)
    with user_errors():
        loaded = text.load(run)
        report = EncodeReport()
        pieces = text.generate(
            loaded.model, loaded.tokenizer, prompt, length, temperature, top_k, top_p, seed, report
        )
        first = next(pieces)
        if report.message():
            print(f"note: prompt characters outside the vocabulary: {report.message()}",
                  file=sys.stderr)  # fmt: skip
        sys.stdout.write(first)
        try:
            for piece in pieces:
                sys.stdout.write(piece)
                sys.stdout.flush()
        except KeyboardInterrupt:  # Ctrl-C ends the stream; what was printed stays
            sys.stdout.write("\n")
            raise typer.Exit(130) from None
    sys.stdout.write("\n")


def evaluate(
    run: Annotated[Path, typer.Argument(help="A run directory written by `rnnkit train text`.")],
    data: Annotated[
        str | None,
        typer.Option(
            help="Held-out UTF-8 text (a file or data set). Default: the run's own "
            "validation split."
        ),
    ] = None,
    threads: Threads = 0,
) -> None:
    """Loss on held-out text: nats and bits per character (or word), and perplexity."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..data.registry import load_text_source
    from ..data.vocab import EncodeReport
    from ..models.language import evaluate_ids
    from ..tasks import text
    from ..tasks.text.task import validation_ids

    console = _console()
    threads_note = use_threads(threads)
    with user_errors():
        loaded = text.load(run)
        tok = loaded.tokenizer
        note = None
        if data is None:
            ids = validation_ids(loaded.options, tok, loaded.data)
            what = f"validation split of {loaded.data.get('source', '?')}"
        else:
            source = load_text_source(data)
            report = EncodeReport()
            ids = tok.encode(source.text, unknown="drop", report=report)
            note = report.message()
            what = source.name
        import torch

        ids = torch.as_tensor(ids, dtype=torch.int64)
        with Progress(
            TextColumn("evaluating"), BarColumn(), TimeRemainingColumn(), console=console,
            transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task("eval", total=1)
            ev = evaluate_ids(loaded.model, ids, tok.unit,
                              on_progress=lambda i, n: bar.update(task, completed=i, total=n))
    console.print(f"[dim]{threads_note}[/]")
    if note:
        console.print(f"note: symbols outside the vocabulary: {note}")
    u = ev.unit
    print(f"data:       {what} ({ev.tokens:,} {u}s)")
    print(f"loss:       {ev.nats:.4f} nats/{u}")
    print(f"            {ev.bits:.4f} bits/{u}")
    print(f"perplexity: {ev.perplexity:.3f}")

