"""`rnnkit serve`: the real server as a subprocess on a free loopback port, over HTTP (a text
run: streaming, sessions, limits, errors, SIGTERM); a sentiment run's /classify through the same
app (`create_app`) called in process over ASGI, which spares a second server start."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from asgitest import post

CORPUS = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak.\n\n" * 30
LIMITS = ["--max-generate", "50", "--max-sessions", "2", "--max-body", "4096"]


class Server:
    """`rnnkit serve RUN` in a subprocess; `call` talks HTTP to it."""

    def __init__(self, run: Path, *flags: str):
        with socket.socket() as s:  # a free port (the server binds it right after)
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rnnkit", "serve", str(run), "--port", str(self.port), *flags],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip

    def wait_ready(self) -> Server:
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.call("GET", "/ready")[0] == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"server did not start:\n{self.proc.stdout.read()}")
            time.sleep(0.1)

    def call(self, method: str, path: str, body=None, raw: bytes | None = None,
             content_type: str = "application/json") -> tuple[int, bytes]:  # fmt: skip
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def json(self, method: str, path: str, body=None, **kw):
        status, data = self.call(method, path, body, **kw)
        return status, json.loads(data)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


def one_line_4xx(server: Server, status: int, method: str, path: str, body=None, **kw) -> str:
    code, reply = server.json(method, path, body, **kw)
    assert code == status, (code, reply)
    assert set(reply) == {"error"} and "\n" not in reply["error"] and reply["error"], reply
    return reply["error"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    from rnnkit.tasks import sentiment, text

    root = tmp_path_factory.mktemp("serve")
    (root / "tiny.txt").write_text(CORPUS)
    options = text.TextOptions(data=str(root / "tiny.txt"), steps=4, hidden=16, embedding=8,
                               seq_len=16, batch=4, threads=1)  # fmt: skip
    small = sentiment.Options(limit=200, steps=3, hidden=8, embedding=8, threads=1)
    return {"text": text.train(options, root / "text", progress=False).path,
            "sentiment": sentiment.train(small, root / "sentiment", progress=False).path}


@pytest.fixture(scope="module")
def text_server(runs):
    server = Server(runs["text"], *LIMITS)
    try:
        yield server.wait_ready()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def test_generate_streams_what_the_library_generates(runs, text_server):
    from rnnkit.tasks import text

    lm = text.load(runs["text"])
    expected = "".join(text.generate(lm.model, lm.tokenizer, "All:", 30, 0.8, None, None, 7))
    status, data = text_server.call("POST", "/generate", {"prompt": "All:", "length": 30,
                                                          "seed": 7})  # fmt: skip
    lines = [json.loads(x) for x in data.decode().splitlines()]
    assert status == 200 and lines[-1] == {"done": True, "tokens": 30, "prompt_tokens": 4}
    assert "".join(x["text"] for x in lines[:-1]) == expected
    body = {"prompt": "All:", "length": 30, "seed": 7, "stream": False}
    assert text_server.json("POST", "/generate", body) == (200, {"text": expected, "tokens": 30})

    # concurrent requests are served one model call at a time: the same texts as alone
    results = []

    def client():
        results.append(text_server.json("POST", "/generate", body))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(200, {"text": expected, "tokens": 30})] * 8


def test_a_session_keeps_the_hidden_state_between_chunks(runs, text_server):
    import torch

    from rnnkit.tasks import text

    lm = text.load(runs["text"])
    ids = torch.tensor([lm.tokenizer.encode("First Citizen:")])
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(ids)[0][0].float(), -1)
    whole = float(-logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]].mean())

    status, opened = text_server.json("POST", "/sessions")
    assert status == 201
    key = opened["session"]
    _, a = text_server.json("POST", f"/sessions/{key}", {"text": "First Cit"})
    _, b = text_server.json("POST", f"/sessions/{key}", {"text": "izen:"})
    assert (a["tokens"], b["tokens"], b["total_tokens"]) == (9, 5, 14)
    chunked = (a["nats_per_token"] * 8 + b["nats_per_token"] * 5) / 13
    assert abs(chunked - whole) < 1e-5  # the second chunk read on from the first one's state
    assert text_server.json("GET", f"/sessions/{key}")[1]["total_tokens"] == 14
    assert text_server.json("DELETE", f"/sessions/{key}") == (200, {"ended": key})
    assert "no session" in one_line_4xx(text_server, 404, "POST", f"/sessions/{key}",
                                        {"text": "x"})  # fmt: skip

    keys = [text_server.json("POST", "/sessions")[1]["session"] for _ in range(2)]
    assert "limit" in one_line_4xx(text_server, 429, "POST", "/sessions")
    text_server.json("DELETE", f"/sessions/{keys[0]}")
    assert text_server.json("POST", "/sessions")[0] == 201


def test_bad_requests_get_one_line_4xx_and_the_server_keeps_serving(text_server):
    s = text_server
    assert "length" in one_line_4xx(s, 422, "POST", "/generate", {"length": 51})
    assert "temperature" in one_line_4xx(s, 422, "POST", "/generate", {"temperature": -1})
    assert "lenght" in one_line_4xx(s, 422, "POST", "/generate", {"lenght": 3})
    assert "JSON" in one_line_4xx(s, 422, "POST", "/generate", raw=b"{not json")
    assert "JSON" in one_line_4xx(s, 422, "POST", "/generate", raw=b"{}", content_type="text/plain")
    assert "finite" in one_line_4xx(s, 422, "POST", "/generate", raw=b'{"temperature": NaN}')
    assert "4096" in one_line_4xx(s, 413, "POST", "/generate", {"prompt": "a" * 5000})
    assert "/nowhere" in one_line_4xx(s, 404, "GET", "/nowhere")
    assert "PUT" in one_line_4xx(s, 405, "PUT", "/generate", {})
    assert s.json("GET", "/health") == (200, {"status": "ok"})
    spec = s.json("GET", "/openapi.json")[1]
    assert {"/generate", "/sessions", "/sessions/{key}", "/health", "/ready"} <= set(spec["paths"])
    schema = spec["components"]["schemas"]["GenerateRequest"]["properties"]["length"]
    assert schema["maximum"] == 50  # the limit is part of the published schema
    assert s.call("GET", "/docs")[0] == 200


def one_line_4xx_in_process(app, status: int, path: str, body: dict) -> str:
    code, reply = post(app, path, body)
    assert code == status, (code, reply)
    assert set(reply) == {"error"} and "\n" not in reply["error"] and reply["error"], reply
    return reply["error"]


def test_classify_a_sentence(runs):
    from rnnkit.serve.app import create_app
    from rnnkit.tasks import sentiment

    app = create_app(runs["sentiment"])
    status, reply = post(app, "/classify", {"text": "a wonderful film"})
    assert status == 200 and reply == sentiment.load(runs["sentiment"]).classify("a wonderful film")
    assert "text" in one_line_4xx_in_process(app, 422, "/classify", {"text": ""})
    assert "/generate" in one_line_4xx_in_process(app, 404, "/generate", {})


def test_sigterm_shuts_down_gracefully(text_server):  # last: it ends the server
    assert text_server.stop() == 0
    assert "Application shutdown complete" in text_server.proc.stdout.read()
