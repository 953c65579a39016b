"""The HTTP application around one run: limits, errors, health, the model lock, lifecycle.

Errors are JSON `{"error": "<one line>"}` with a 4xx status for anything the client can fix
(malformed JSON, a field out of range, a body over the limit, a missing session, an unknown
path); a 500 would be a bug, and the server keeps serving after any of them.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("rnnkit.serve")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; larger requests get a 4xx naming the limit."""

    max_body: int = 1 << 20  # bytes of a request body
    max_length: int = 10_000  # input length: characters of a text, time steps of a series
    max_generate: int = 1024  # generated tokens, forecast steps
    max_batch: int = 64  # sequences in one classify request
    max_sessions: int = 64  # open streaming sessions
    session_idle: float = 300.0  # seconds without a request before a session is ended

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")


class ClientError(Exception):
    """A request the client must change: `status` (4xx) and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class BodyTooLarge(ClientError):
    def __init__(self, limit: int):
        super().__init__(413, f"request body over the limit of {limit} bytes")


@dataclass
class Served:
    """What the routes share: the run's task and predictor, the lock, the limits."""

    task: str
    run_dir: Path
    predictor: Any
    limits: Limits
    lock: threading.Lock
    ready: bool = False

    def locked(self, pieces: Iterator[Any]) -> Iterator[Any]:
        """An iterator whose every step runs under the model lock (a streamed generation:
        concurrent streams take turns token by token)."""
        while True:
            with self.lock:
                try:
                    piece = next(pieces)
                except StopIteration:
                    return
            yield piece


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


class BodyLimit:
    """ASGI middleware: refuse bodies over `max_body` bytes, declared or streamed."""

    def __init__(self, app: Any, max_body: int):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_body:
                return await error(413, str(BodyTooLarge(self.max_body)))(scope, receive, send)
            return await self.app(scope, receive, send)
        # a chunked body declares no length: read it here, up to the limit, then replay it
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return await error(413, str(BodyTooLarge(self.max_body)))(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def validation_message(err: RequestValidationError, content_type: str) -> str:
    """The first problem of a request, in one line: `length: Input should be <= 1024`."""
    first = err.errors()[0] if err.errors() else {"msg": "invalid request", "loc": ()}
    if first.get("loc") == ("body",) and "json" not in content_type:
        return f"send the body as JSON (Content-Type: application/json), not {content_type!r}"
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})"
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return f"{where or 'body'}: {first['msg']}"


def create_app(run_dir: str | Path, limits: Limits | None = None) -> FastAPI:
    """The application serving run `run_dir` (any application's run with endpoints).

    Raises:
        RunError: not a run, or a run of an application without endpoints.
    """
    from .. import __version__
    from ..tasks import driver
    from ..training import RunError
    from .endpoints import ROUTES

    limits = limits or Limits()
    task, run = driver.load_run_of(run_dir)
    if task.name not in ROUTES:
        raise RunError(f"{run_dir}: a {task.name} run; rnnkit serve has no endpoints for it yet")
    served = Served(task.name, Path(run_dir), task.load(run), limits, threading.Lock())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        served.ready = True
        log.info("serving %s run %s", served.task, served.run_dir)
        yield
        served.ready = False  # draining: readiness says so while in-flight requests finish

    app = FastAPI(title=f"rnnkit serve: {task.name} run {Path(run_dir).name}",
                  version=__version__, lifespan=lifespan,
                  description="Endpoints of one trained rnnkit run. Errors are "
                  '`{"error": "<one line>"}` with a 4xx status.')  # fmt: skip
    app.add_middleware(BodyLimit, max_body=limits.max_body)
    add_error_handlers(app)

    @app.get("/health", summary="Liveness: the process answers")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: the model is loaded and the server not draining")
    def ready():
        if not served.ready:
            return error(503, "not ready")
        return {"ready": True, "task": served.task}

    @app.get("/info", summary="The run, its endpoints and the limits")
    def info() -> dict:
        paths = sorted({r.path for r in app.routes if getattr(r, "include_in_schema", False)})
        return {"task": served.task, "run": str(served.run_dir), "version": __version__,
                "endpoints": paths, "limits": asdict(limits)}  # fmt: skip

    ROUTES[task.name](app, served)
    return app


def add_error_handlers(app: FastAPI) -> None:
    from ..data.text import DataError
    from ..deps import MissingDependency
    from ..tasks.options import OptionError
    from ..training import RunError

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        return error(422, validation_message(err, request.headers.get("content-type", "")))

    @app.exception_handler(HTTPException)
    async def http(request: Request, err: HTTPException):
        if err.status_code == 404:
            return error(404, f"no endpoint {request.method} {request.url.path}; see /docs")
        if err.status_code == 405:
            return error(405, f"{request.method} is not allowed on {request.url.path}")
        return error(err.status_code, err.detail)

    @app.exception_handler(ClientError)
    async def client(request: Request, err: ClientError):
        return error(err.status, str(err))

    for kind in (OptionError, DataError, MissingDependency, RunError):  # one-line user errors

        @app.exception_handler(kind)
        async def user(request: Request, err: Exception):
            return error(422, str(err))

    @app.exception_handler(Exception)
    async def bug(request: Request, err: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, f"internal error ({type(err).__name__}); see the server log")


def serve(run_dir: str | Path, host: str = LOOPBACK, port: int = 8000, threads: int = 1,
          limits: Limits | None = None, log_level: str = "info") -> None:
    """Load the run and serve it until SIGINT / SIGTERM (in-flight requests finish first)."""
    import torch
    import uvicorn

    # once, before the model loads: more threads per request only fight each other
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set when torch ran parallel work
        torch.set_num_interop_threads(1)
    app = create_app(run_dir, limits)
    # uvicorn shuts down gracefully on the first SIGINT / SIGTERM, then raises the signal again
    # for the previous handler: make that a plain exit, not a traceback or a death by signal
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_after_shutdown)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10,
                access_log=False)  # fmt: skip


def _exit_after_shutdown(signum: int, frame: Any) -> None:
    raise SystemExit(0)
