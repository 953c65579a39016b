"""`rnnkit serve` under load: concurrent clients, latency, throughput, errors, memory.

For each run (a text run: generate N tokens; a classifier: classify a sentence) the server is
started as a subprocess on a free loopback port, warmed up, and then `--clients` threads each
send `--requests` requests over a kept-alive connection while one more thread interleaves
malformed requests of 10 kinds (`--malformed` in all). Recorded: p50/p99 latency, requests/s,
status counts (5xx must be zero), every malformed request's status (each must be a 4xx with a
message), and the server's RSS after warm-up and at the end. Bounded: `--timeout` seconds per
run; clients still going then stop, and the figures say how many requests were made.

    python benchmarks/serve.py                         # trains two small runs first
    python benchmarks/serve.py --text RUN --classifier RUN --clients 32 --requests 100

Results: benchmarks/results/serve.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RNNKIT = [sys.executable, "-m", "rnnkit"]
MALFORMED = [  # (name, method, path, body bytes, content type)
    ("invalid JSON", "POST", "{path}", b"{not json", "application/json"),
    ("not an object", "POST", "{path}", b"[1, 2]", "application/json"),
    ("unknown field", "POST", "{path}", b'{"nonsense": 1}', "application/json"),
    ("wrong type", "POST", "{path}", b'{"text": 5, "length": "x"}', "application/json"),
    ("NaN", "POST", "{path}", b'{"temperature": NaN, "text": "a"}', "application/json"),
    ("over the body limit", "POST", "{path}", b'{"text": "' + b"a" * 70_000 + b'"}',
     "application/json"),
    ("form body", "POST", "{path}", b"text=hello", "application/x-www-form-urlencoded"),
    ("unknown path", "GET", "/no/such/endpoint", b"", "application/json"),
    ("wrong method", "PUT", "{path}", b"{}", "application/json"),
    ("missing session", "POST", "/sessions/0000", b'{"text": "a"}', "application/json"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes,
            content_type: str = "application/json") -> tuple[int, bytes]:  # fmt: skip
    conn.request(method, path, body=body or None, headers={"Content-Type": content_type})
    r = conn.getresponse()
    return r.status, r.read()


def start(run: Path, port: int, threads: int) -> subprocess.Popen:
    proc = subprocess.Popen([*RNNKIT, "serve", str(run), "--port", str(port), "--threads",
                             str(threads), "--max-body", "65536"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            if request(conn, "GET", "/ready", b"")[0] == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server for {run} did not start")


def load(run: Path, path: str, body: dict, args) -> dict:
    port = free_port()
    proc = start(run, port, args.threads)
    payload = json.dumps(body).encode()
    try:
        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(args.warmup):
            assert request(warm, "POST", path, payload)[0] == 200
        rss_warm = rss_kib(proc.pid)
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        guard, stop_at = threading.Lock(), time.monotonic() + args.timeout

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            for _ in range(args.requests):
                if time.monotonic() > stop_at:
                    return
                t0 = time.perf_counter()
                status, _ = request(conn, "POST", path, payload)
                with guard:
                    latencies.append(time.perf_counter() - t0)
                    statuses[status] = statuses.get(status, 0) + 1

        bad: list[dict] = []

        def malformed() -> None:
            for i in range(args.malformed):
                name, method, where, data, ctype = MALFORMED[i % len(MALFORMED)]
                # a connection each: a refused body may be left unread, ending the connection
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                try:
                    status, reply = request(conn, method, where.format(path=path), data, ctype)
                    message = json.loads(reply).get("error")
                except (OSError, http.client.HTTPException, ValueError) as err:
                    status, message = 0, f"{type(err).__name__}: {err}"
                finally:
                    conn.close()
                bad.append({"kind": name, "status": status, "message": message})
                # interleaved: the next one after another share of the load is done
                while len(latencies) < (i + 1) * planned / args.malformed and any(
                        w.is_alive() for w in workers[:-1]):  # fmt: skip
                    time.sleep(0.005)

        workers = [threading.Thread(target=client) for _ in range(args.clients)]
        workers.append(threading.Thread(target=malformed))
        planned = args.clients * args.requests
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers[:-1]:
            w.join()
        seconds = time.perf_counter() - t0  # the load's clients, not the malformed stream
        workers[-1].join()
        rss_end = rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    latencies.sort()
    n = len(latencies)
    kinds = {}
    for b in bad:
        k = kinds.setdefault(b["kind"], {"statuses": set(), "example": b["message"]})
        k["statuses"].add(b["status"])
    return {
        "run": str(run), "endpoint": path, "body": body, "clients": args.clients,
        "requests": n, "planned": planned, "seconds": round(seconds, 2),
        "requests_per_s": round(n / seconds, 1), "p50_ms": round(1e3 * latencies[n // 2], 1),
        "p99_ms": round(1e3 * latencies[min(n - 1, int(0.99 * n))], 1), "statuses": statuses,
        "5xx": sum(c for s, c in statuses.items() if s >= 500),
        "rss_after_warmup_mib": round(rss_warm / 1024, 1), "rss_end_mib": round(rss_end / 1024, 1),
        "rss_growth": round(rss_end / rss_warm - 1, 4),
        "malformed": len(bad), "malformed_all_4xx_with_message":
            all(400 <= b["status"] < 500 and b["message"] for b in bad),
        "malformed_kinds": {k: {"statuses": sorted(v["statuses"]), "example": v["example"]}
                            for k, v in kinds.items()},
    }  # fmt: skip


def train_small(root: Path) -> tuple[Path, Path]:
    text, clf = root / "text", root / "sentiment"
    for cmd in (["train", "text", "--steps", "100", "--hidden", "128", "--out", str(text)],
                ["train", "sentiment", "--epochs", "1", "--out", str(clf)]):  # fmt: skip
        print("$ rnnkit", " ".join(cmd), flush=True)
        subprocess.run([*RNNKIT, *cmd, "--quiet", "--threads", "1"], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    return text, clf


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--text", type=Path, help="A text run (default: train a small one).")
    p.add_argument("--classifier", type=Path, help="A sentiment run (default: a small one).")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=100, help="Per client.")
    p.add_argument("--tokens", type=int, default=64, help="Generated per text request.")
    p.add_argument("--malformed", type=int, default=200)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--threads", type=int, default=1, help="The server's torch threads.")
    p.add_argument("--timeout", type=float, default=300.0, help="Seconds per run, at most.")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "serve.json")
    args = p.parse_args()
    tmp = None
    if args.text is None or args.classifier is None:
        tmp = tempfile.TemporaryDirectory()
        text, clf = train_small(Path(tmp.name))
        args.text, args.classifier = args.text or text, args.classifier or clf
    results = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "text": load(args.text, "/generate",
                     {"prompt": "ROMEO:", "length": args.tokens, "stream": False}, args),
        "classifier": load(args.classifier, "/classify", {"text": "a wonderful film"}, args),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print("| run | requests | req/s | p50 ms | p99 ms | 5xx | RSS warm → end MiB | malformed 4xx |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("text", "classifier"):
        r = results[name]
        print(f"| {name} {r['endpoint']} | {r['requests']}/{r['planned']} | {r['requests_per_s']} "
              f"| {r['p50_ms']} | {r['p99_ms']} | {r['5xx']} | {r['rss_after_warmup_mib']} → "
              f"{r['rss_end_mib']} | {r['malformed']} all 4xx: "
              f"{r['malformed_all_4xx_with_message']} |")  # fmt: skip
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
