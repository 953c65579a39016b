"""`rnnkit train text`, `rnnkit generate`, `rnnkit evaluate`: the character language model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..tasks.text import TextOptions as D  # the defaults live in one place
from ..training import Callback
from .common import default_out
from .common import stderr_console as _console
from .errors import fail, user_errors


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    """Add `train text` to `train_app`, and `generate` and `evaluate` to `app`."""
    train_app.command("text")(train_text)
    app.command("generate")(generate)
    app.command("evaluate")(evaluate)


def auto_threads(cores: int | None = None, load: float | None = None) -> int:
    """Threads for torch when --threads is 0: the cores other processes leave idle (>= 1).

    On a machine shared with other work, OpenMP threads that wait on a busy core spin and
    slow training several-fold (measured: 1 thread ran 3x faster than 2 on 2 cores at load 12).
    """
    import os

    cores = cores or os.cpu_count() or 1
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, cores - round(load)))


def set_threads(threads: int) -> str:
    """Apply --threads (0 = auto) to torch; returns a note saying what was chosen."""
    import os

    import torch

    if threads < 0:
        raise fail(f"--threads must be >= 0 (0 = auto), got {threads}")
    chosen = threads or auto_threads()
    torch.set_num_threads(chosen)
    if threads:
        return f"using {chosen} thread(s)"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return (
        f"using {chosen} thread(s): load average {load:.1f} on {os.cpu_count()} cores "
        "(--threads to choose)"
    )


class TimeProgress(Callback):
    """A progress bar over a wall-clock budget (the Trainer's own bar counts steps)."""

    def __init__(self, budget_s: float, console: Console):
        self.budget_s, self.console, self.bar, self.val = budget_s, console, None, ""

    def on_fit_start(self, trainer) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("[bold]train"), BarColumn(), TimeElapsedColumn(), TextColumn("/"),
            TextColumn(f"{self.budget_s / 60:g} min"), TextColumn("step {task.fields[step]}"),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[val]}"),
            TextColumn("{task.fields[speed]}"), console=self.console,
        )  # fmt: skip
        self.bar.__enter__()
        self.task = self.bar.add_task(
            "train", total=self.budget_s, step=0, loss="-", val="", speed=""
        )

    def on_step_end(self, trainer, logs) -> None:
        if self.bar is None or trainer.step % 5:
            return
        speed = trainer.items / trainer.elapsed if trainer.elapsed > 0 else 0.0
        self.bar.update(
            self.task, completed=min(trainer.elapsed, self.budget_s), step=trainer.step,
            loss=f"{logs['loss']:.3f}", val=self.val, speed=f"{speed:,.0f} tok/s",
        )  # fmt: skip

    def on_eval_end(self, trainer, record) -> None:
        self.val = f"val {record['loss']:.3f}"

    def on_fit_end(self, trainer, result) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.budget_s, val=self.val)
            self.bar.__exit__(None, None, None)
            self.bar = None
        self.console.print(f"[dim]{result.message}[/]")


def train_text(
    data: Annotated[
        str | None,
        typer.Option(
            help="A UTF-8 text file, or a text data set (rnnkit datasets list). "
            "Default: the Shakespeare corpus."
        ),
    ] = None,
    cell: Annotated[str, typer.Option(help="Recurrent cell: lstm, gru or rnn (Elman).")] = D.cell,
    hidden: Annotated[int, typer.Option(help="Hidden units per layer.")] = D.hidden,
    layers: Annotated[int, typer.Option(help="Stacked recurrent layers.")] = D.layers,
    embedding: Annotated[int, typer.Option(help="Embedding size per token.")] = D.embedding,
    dropout: Annotated[
        float, typer.Option(help="Dropout between layers (needs --layers >= 2).")
    ] = D.dropout,
    seq_len: Annotated[int, typer.Option(help="Steps per chunk of truncated BPTT.")] = D.seq_len,
    batch: Annotated[int, typer.Option(help="Parallel streams per batch.")] = D.batch,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = D.lr,
    steps: Annotated[
        int | None,
        typer.Option(help="Train this many updates (cosine decay) instead of --minutes."),
    ] = None,
    minutes: Annotated[
        float | None,
        typer.Option(help=f"Wall-clock training budget. Default {D.minutes:g} without --steps."),
    ] = None,
    tokenizer: Annotated[str, typer.Option(help="char or word.")] = D.tokenizer,
    seed: Annotated[int, typer.Option(help="Random seed.")] = D.seed,
    out: Annotated[
        Path | None, typer.Option(help="Run directory. Default: runs/text-<date>-<time>.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out directory.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    threads: Annotated[
        int, typer.Option(help="CPU threads for torch; 0 = the cores other work leaves idle.")
    ] = 0,
) -> None:
    """Train a character (or word) language model and write a run directory with report.html."""
    from ..tasks.text import TextOptions
    from ..tasks.text import train_text as run_training

    console = _console()
    notes = [set_threads(threads)]  # printed once the data is known to be good

    def phase(text: str) -> None:
        while notes:
            console.print(f"[dim]{notes.pop()}[/]")
        console.print(f"[dim]{text}[/]")

    with user_errors():
        if minutes is None and steps is None:
            minutes = TextOptions.minutes
        options = TextOptions(
            data=data, tokenizer=tokenizer, cell=cell, hidden=hidden, layers=layers,
            embedding=embedding, dropout=dropout, seq_len=seq_len, batch=batch, lr=lr,
            steps=steps, minutes=minutes, seed=seed,
        )  # fmt: skip
        out = default_out(out, "text")
        # a --minutes budget gets a bar over time; a --steps budget the Trainer's bar over steps
        by_time = options.steps is None and not quiet
        result = run_training(
            options, out, overwrite, console=console, progress=not quiet and not by_time,
            on_phase=phase,
            callbacks=[TimeProgress(options.minutes * 60, console)] if by_time else [],
        )  # fmt: skip
    ev = result.evaluation
    if ev is None:
        if quiet:  # else the progress bar has printed how training ended (checkpoint saved...)
            console.print(result.message)
        console.print(f"run: {result.run_dir}   report: {result.report}")
        print(result.run_dir)
        raise typer.Exit(130)
    console.print(
        f"[bold]validation[/]: {ev.nats:.4f} nats/{ev.unit}, {ev.bits:.3f} bits/{ev.unit}, "
        f"perplexity {ev.perplexity:.2f}  ({result.steps} steps, {result.seconds:.0f} s)"
    )
    console.print(f"run: {result.run_dir}   report: {result.report}")
    print(result.run_dir)  # stdout: the run directory, for scripts (`rnnkit generate $(...)`)


def generate(
    run: Annotated[Path, typer.Argument(help="A run directory written by `rnnkit train text`.")],
    prompt: Annotated[
        str,
        typer.Option(
            help="Text to start from (unknown characters are "
            "replaced by a close known one or dropped)."
        ),
    ] = "",
    length: Annotated[int, typer.Option(help="How many characters (or words) to generate.")] = 500,
    temperature: Annotated[float, typer.Option(help="Sampling temperature; 0 = greedy.")] = 0.8,
    top_k: Annotated[int | None, typer.Option(help="Sample among the k likeliest only.")] = None,
    top_p: Annotated[
        float | None,
        typer.Option(help="Nucleus sampling: smallest set with this much probability."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same text).")] = None,
) -> None:
    """Stream generated text to the terminal as it is produced."""
    from ..data.vocab import EncodeReport
    from ..tasks.text import check_sampling, load_text_run
    from ..tasks.text import generate as stream

    with user_errors():
        if length <= 0:
            raise fail(f"--length must be > 0, got {length}")
        check_sampling(temperature, top_k, top_p)
        loaded = load_text_run(run)
        report = EncodeReport()
        pieces = stream(
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
    threads: Annotated[
        int, typer.Option(help="CPU threads for torch; 0 = the cores other work leaves idle.")
    ] = 0,
) -> None:
    """Loss on held-out text: nats and bits per character (or word), and perplexity."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..data.registry import load_text_source
    from ..data.vocab import EncodeReport
    from ..tasks.text import evaluate_ids, load_text_run, validation_ids

    console = _console()
    threads_note = set_threads(threads)
    with user_errors():
        loaded = load_text_run(run)
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
            ev = evaluate_ids(
                loaded.model,
                ids,
                tok.unit,
                on_progress=lambda i, n: bar.update(task, completed=i, total=n),
            )
    console.print(f"[dim]{threads_note}[/]")
    if note:
        console.print(f"note: symbols outside the vocabulary: {note}")
    u = ev.unit
    print(f"data:       {what} ({ev.tokens:,} {u}s)")
    print(f"loss:       {ev.nats:.4f} nats/{u}")
    print(f"            {ev.bits:.4f} bits/{u}")
    print(f"perplexity: {ev.perplexity:.3f}")
