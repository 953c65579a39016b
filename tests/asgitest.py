"""Call an ASGI app in process (no server, no socket): what the serve tests share."""

from __future__ import annotations

import asyncio
import json


def post(app, path: str, body: dict) -> tuple[int, dict]:
    """One HTTP POST through the ASGI interface -> (status, JSON reply)."""
    data, sent = json.dumps(body).encode(), []
    inbox = [{"type": "http.request", "body": data, "more_body": False}]

    async def receive():
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80),
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(data)).encode())]}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    reply = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(reply)
