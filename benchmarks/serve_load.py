"""Load generator for bench_serve.py: runs as its own process (so the server's CPU time is its own),
sends real HTTP to a server on 127.0.0.1, and prints one JSON object of results.

    python benchmarks/serve_load.py closed --url URL --key K --batch 64 --concurrency 4 --seconds 10
    python benchmarks/serve_load.py rate --url URL --key K --rate 200 --seconds 10 [--endpoint chat]
    python benchmarks/serve_load.py pair --url URL --key K --n 500

- closed: ``concurrency`` clients each send the next request as soon as the last is answered
  (throughput).
- rate: an open loop: request i is sent at t0 + i / rate whatever happened before, so a slow
  server cannot slow the load down; latency counts from the scheduled time (no coordinated
  omission) and from the actual send.
- pair: one client, single-item /v1/chat/completions and /v1/classify interleaved (overhead).

Every loop is bounded by ``--seconds`` (and ``--n``), and only 127.0.0.1 is accepted as a target.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COMMENTS = ROOT.parent / "shared" / "data" / "jigsaw" / "comments.csv"
PROMPT = (
    "Given the input text below, please classify whether it is toxic. Provide your classification in a JSON format "
    "with the key 'is_bad'. If the comment is indeed toxic, set is_bad=1, otherwise set is_bad=0.\n\nInput text: '{text}'\n\nOutput:"
)


def texts(n: int = 20_000) -> list[str]:
    csv.field_size_limit(10**9)
    with COMMENTS.open(newline="", encoding="utf-8") as f:
        return [r["comment_text"] for r, _ in zip(csv.DictReader(f), range(n))]


class Conn:
    """One keep-alive HTTP/1.1 connection: a few times cheaper per request than httpx, so the load
    generator is not the bottleneck it measures. Enough HTTP for our server: Content-Length bodies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.open = True

    @classmethod
    async def connect(cls, host: str, port: int) -> "Conn":
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def post(self, head: bytes, body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readline()
        if not status_line:
            self.open = False
            raise ConnectionError("closed by the server")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, data

    def close(self) -> None:
        self.open = False
        self.writer.close()


class Pool:
    def __init__(self, url: str, key: str, limit: int):
        u = urlparse(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.key = key
        self.idle: list[Conn] = []
        self.sem = asyncio.Semaphore(limit)

    def head(self, path: str) -> bytes:
        return (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {self.key}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        async with self.sem:
            reused = bool(self.idle)
            conn = self.idle.pop() if reused else await Conn.connect(self.host, self.port)
            try:
                result = await conn.post(self.head(path), body)
            except (ConnectionError, asyncio.IncompleteReadError):
                conn.close()
                if not reused:
                    raise
                # The server closed this idle keep-alive connection as we reused it: like any
                # HTTP client, send again once on a fresh connection.
                conn = await Conn.connect(self.host, self.port)
                result = await conn.post(self.head(path), body)
            except BaseException:
                conn.close()
                raise
            if conn.open:
                self.idle.append(conn)
            return result

    def close(self) -> None:
        for c in self.idle:
            c.close()


def pct(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "n": 0}
    a = np.asarray(values) * 1000
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(a.max()), "n": len(values)}


def payload(endpoint: str, items: list[str], model: str) -> tuple[str, dict[str, Any]]:
    if endpoint == "chat":
        return "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": PROMPT.replace("{text}", items[0])}], "temperature": 0}
    return "/v1/classify", {"texts": items}


async def closed(args: argparse.Namespace, corpus: list[str]) -> dict[str, Any]:
    lat: list[float] = []
    statuses: dict[int, int] = {}
    items = 0
    deadline = time.perf_counter() + args.seconds
    pool = Pool(args.url, args.key, args.concurrency)

    async def worker(k: int) -> None:
        nonlocal items
        i = k * 997
        while time.perf_counter() < deadline:
            batch = [corpus[(i + j) % len(corpus)] for j in range(args.batch)]
            i += args.batch * args.concurrency
            path, body = payload(args.endpoint, batch, args.model)
            raw = json.dumps(body).encode()
            t = time.perf_counter()
            status, _, _ = await pool.post(path, raw)
            lat.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                items += len(batch)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(args.concurrency)))
    elapsed = time.perf_counter() - t0
    pool.close()
    return {"mode": "closed", "seconds": elapsed, "requests": len(lat), "items": items, "items_per_s": items / elapsed, "requests_per_s": len(lat) / elapsed, "latency_ms": pct(lat), "statuses": statuses}


async def rate(args: argparse.Namespace, corpus: list[str]) -> dict[str, Any]:
    n = int(args.rate * args.seconds)
    results: list[tuple[float, float, float, int, str | None]] = []  # scheduled, sent, done, status, request id
    errors = 0
    pool = Pool(args.url, args.key, 1024)
    distinct = min(5000, max(50, len(corpus) // args.batch))
    bodies = [
        json.dumps(payload(args.endpoint, [corpus[(i * args.batch + j) % len(corpus)] for j in range(args.batch)], args.model)[1]).encode()
        for i in range(distinct)
    ]
    path = payload(args.endpoint, ["x"], args.model)[0]

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors
        sent = time.perf_counter()
        try:
            status, headers, _ = await pool.post(path, bodies[i % len(bodies)])
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            errors += 1
            return
        results.append((scheduled, sent, time.perf_counter(), status, headers.get("x-request-id")))

    t0 = time.perf_counter() + 0.05
    tasks = []
    for i in range(n):
        scheduled = t0 + i / args.rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    pool.close()
    ok = [r for r in results if r[3] == 200]
    rejected = [r for r in results if r[3] == 429]
    out: dict[str, Any] = {
        "mode": "rate",
        "target_rate": args.rate,
        "sent": n,
        "seconds": elapsed,
        "achieved_rate": len(results) / elapsed,
        "statuses": {str(s): sum(1 for r in results if r[3] == s) for s in sorted({r[3] for r in results})},
        "connection_errors": errors,
        "ok_latency_ms": pct([d - s for s, _, d, _, _ in ok]),
        "ok_latency_from_send_ms": pct([d - s for _, s, d, _, _ in ok]),
        "rejected_latency_ms": pct([d - s for _, s, d, _, _ in rejected]),
        "send_lag_ms": pct([s - sch for sch, s, _, _, _ in results]),
    }
    if args.ids:
        out["acknowledged"] = [r[4] for r in ok]
    return out


async def pair(args: argparse.Namespace, corpus: list[str]) -> dict[str, Any]:
    chat: list[float] = []
    classify: list[float] = []
    pool = Pool(args.url, args.key, 1)
    for i in range(args.n + 20):
        text = corpus[i % len(corpus)]
        for endpoint, sink in (("chat", chat), ("classify", classify)) if i % 2 else (("classify", classify), ("chat", chat)):
            path, body = payload(endpoint, [text], args.model)
            raw = json.dumps(body).encode()
            t = time.perf_counter()
            status, _, data = await pool.post(path, raw)
            if status != 200:
                raise SystemExit(f"{endpoint}: HTTP {status}: {data[:200]!r}")
            if i >= 20:  # the first ones warm caches
                sink.append(time.perf_counter() - t)
    pool.close()
    c, k = pct(chat), pct(classify)
    return {"mode": "pair", "chat_ms": c, "classify_ms": k, "overhead_p50_ms": c["p50"] - k["p50"]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["closed", "rate", "pair"])
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--endpoint", choices=["classify", "chat"], default="classify")
    p.add_argument("--model", default="gpt-4-1106-preview")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--ids", action="store_true", help="rate: list the request ids answered 200")
    args = p.parse_args(argv)
    if urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("serve_load.py sends load to 127.0.0.1 only")
    args.seconds = min(args.seconds, 900.0)
    corpus = texts()
    coro = {"closed": closed, "rate": rate, "pair": pair}[args.mode](args, corpus)
    try:
        import uvloop

        result = uvloop.run(coro)
    except ImportError:
        result = asyncio.run(coro)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
