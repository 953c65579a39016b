"""Stateful streaming sessions: the hidden state of a sequence model kept between requests.

A client opens a session, posts its sequence chunk by chunk and gets, for each chunk, what
the model makes of it given everything before (the state is carried, never recomputed). The
store is capped: at most `limit` open sessions, each ended after `idle` seconds without a
request (checked on every access), or by DELETE.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .app import ClientError


@dataclass
class Session:
    id: str
    state: Any = None  # the model's recurrent state after the last chunk (None: none yet)
    logits: Any = None  # (V,) the prediction for the next token
    tokens: int = 0  # read so far
    nats: float = 0.0  # summed loss of the tokens that had a prediction
    scored: int = 0
    last: float = field(default_factory=time.monotonic)


class Sessions:
    def __init__(self, limit: int, idle: float):
        self.limit, self.idle = limit, idle
        self.open: dict[str, Session] = {}
        self.guard = threading.Lock()  # the dict; the model has its own lock

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self.open.items() if now - s.last > self.idle]:
            del self.open[key]

    def new(self) -> Session:
        now = time.monotonic()
        with self.guard:
            self._expire(now)
            if len(self.open) >= self.limit:
                raise ClientError(429, f"{self.limit} sessions are open (the limit); DELETE one "
                                  f"or wait until one is idle for {self.idle:g} s")  # fmt: skip
            session = Session(secrets.token_hex(8), last=now)
            self.open[session.id] = session
            return session

    def get(self, key: str) -> Session:
        now = time.monotonic()
        with self.guard:
            self._expire(now)
            session = self.open.get(key)
            if session is None:
                raise ClientError(404, f"no session {key!r} (never opened, deleted, or ended "
                                  f"after {self.idle:g} s idle)")  # fmt: skip
            session.last = now
            return session

    def end(self, key: str) -> None:
        self.get(key)
        with self.guard:
            self.open.pop(key, None)
