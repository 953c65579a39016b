"""`rnnkit serve RUN`: a trained run behind HTTP (FastAPI on uvicorn).

    app.py        the application: limits, one-line JSON errors, health and readiness, the
                  model lock, startup and graceful shutdown; `create_app`, `serve`
    endpoints.py  the routes of each application's run (generate, classify, translate,
                  forecast, detect) with their JSON schemas, keyed by task name
    sessions.py   stateful streaming sessions: a language model's hidden state kept between
                  the chunks a client posts, capped in number and idle time

Every request that reaches a model goes through one lock (the model and its autograd-free
state are not thread-safe); a streamed generation takes the lock once per token, so
concurrent streams interleave instead of waiting for each other. torch's threads are set once,
before the model loads.

Example:
    >>> from rnnkit.serve import Limits, create_app
    >>> app = create_app("runs/text-20260101-120000", Limits(max_generate=256))
"""

from .app import Limits, create_app, serve

__all__ = ["Limits", "create_app", "serve"]
