"""`rnnkit serve RUN`: a trained run behind HTTP (see rnnkit.serve)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .errors import fail, user_errors


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    run: Annotated[Path, typer.Argument(help="A run directory of any `rnnkit train` command.")],
    host: Annotated[str, typer.Option(help="Address to bind; the default is loopback only.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    threads: Annotated[int, typer.Option(help="torch CPU threads, set once.")] = 1,
    max_body: Annotated[int, typer.Option(help="Largest request body, bytes.")] = 1 << 20,
    max_length: Annotated[
        int, typer.Option(help="Longest input: characters of a text, steps of a series.")
    ] = 10_000,
    max_generate: Annotated[
        int, typer.Option(help="Most tokens generated (or steps forecast) per request.")
    ] = 1024,
    max_batch: Annotated[int, typer.Option(help="Most sequences per classify request.")] = 64,
    max_sessions: Annotated[int, typer.Option(help="Most open streaming sessions.")] = 64,
    session_idle: Annotated[
        float, typer.Option(help="Seconds without a request before a session ends.")
    ] = 300.0,
) -> None:
    """Serve a trained run over HTTP: JSON endpoints, OpenAPI docs at /docs, /health, /ready."""
    from ..deps import require

    if not 0 <= port <= 65535:
        raise fail(f"--port must be in 0..65535, got {port}")
    if threads < 1:
        raise fail(f"--threads must be >= 1, got {threads}")
    with user_errors():
        require("fastapi", "uvicorn", extra="serve", what="rnnkit serve")
    from ..serve import Limits
    from ..serve import serve as run_server

    try:
        limits = Limits(max_body, max_length, max_generate, max_batch, max_sessions, session_idle)
    except ValueError as err:
        raise fail("--" + str(err).replace("_", "-")) from None
    with user_errors():
        run_server(run, host, port, threads, limits)
