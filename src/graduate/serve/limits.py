"""Limits as ASGI middleware, checked before any work: a body-size limit (413) and a deadline to
receive the body (408), bounded in-flight requests (429 with Retry-After past the bound, never an
unbounded queue) and a per-request timeout (504). The body is read whole before a request takes
an in-flight slot, so a client that trickles its body holds no capacity, and only for
``body_timeout_s``. (The deadline for the headers is the server's: ``graduate.serve.server``.)
Health checks and /metrics are exempt from load limits, so an overloaded server still says it is
alive and can be watched."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from graduate.serve.auth import PUBLIC_PATHS
from graduate.serve.errors import send_error

Reject = Callable[[str], None]
# Never refused for load: an overloaded server must still answer its probes and its scraper.
EXEMPT = PUBLIC_PATHS | {"/metrics"}
# POST /admin/promote loads the candidate: its workers start together, each within
# graduate.serve.predictor.STARTUP_TIMEOUT_S (300 s); past this, 504 and whatever started is stopped.
PROMOTE_TIMEOUT_S = 360.0


def _noop(reason: str) -> None:
    return None


class InFlightLimit:
    def __init__(self, app: Any, *, limit: int, retry_after_s: int, on_reject: Reject = _noop, gauge: Any = None):
        self.app = app
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.on_reject = on_reject
        self.gauge = gauge
        self.current = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            return await self.app(scope, receive, send)
        if self.current >= self.limit:
            self.on_reject("overload")
            return await send_error(
                send,
                429,
                f"server busy: {self.limit} requests in flight (serve.max_in_flight); retry after {self.retry_after_s}s",
                "rate_limit_error",
                code="overloaded",
                headers={"retry-after": str(self.retry_after_s), "retry-after-ms": str(self.retry_after_s * 1000)},
            )
        self.current += 1
        if self.gauge is not None:
            self.gauge.set(self.current)
        try:
            await self.app(scope, receive, send)
        finally:
            self.current -= 1
            if self.gauge is not None:
                self.gauge.set(self.current)


class BodySizeLimit:
    """Reads the body up to the limit, within ``timeout_s``, before the app sees it (the app would
    read it whole anyway)."""

    def __init__(self, app: Any, *, max_bytes: int, timeout_s: float = 10.0, on_reject: Reject = _noop):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.on_reject = on_reject

    async def _too_large(self, send: Any) -> None:
        self.on_reject("too_large")
        await send_error(
            send, 413, f"request body larger than {self.max_bytes} bytes (serve.max_body_bytes)", "invalid_request_error", code="body_too_large"
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    return await self._too_large(send)
                break
        chunks: list[bytes] = []
        total = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body = message.get("body", b"")
                    total += len(body)
                    if total > self.max_bytes:
                        return await self._too_large(send)
                    chunks.append(body)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            self.on_reject("slow_body")
            return await send_error(
                send,
                408,
                f"the request body did not arrive within {self.timeout_s:g}s (serve.body_timeout_s)",
                "invalid_request_error",
                code="request_timeout",
                headers={"connection": "close"},
            )
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RequestTimeout:
    """``timeout_s`` for every request but the paths in ``slow_paths``, which get their own deadline
    (``POST /admin/promote`` starts the candidate's workers, which may take minutes to load)."""

    def __init__(self, app: Any, *, timeout_s: float, on_reject: Reject = _noop, slow_paths: dict[str, tuple[float, str]] | None = None):
        self.app = app
        self.timeout_s = timeout_s
        self.on_reject = on_reject
        self.slow_paths = slow_paths or {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            return await self.app(scope, receive, send)
        timeout_s, setting = self.slow_paths.get(scope["path"], (self.timeout_s, "serve.request_timeout_s"))
        started = False

        async def tracked(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(timeout_s):
                await self.app(scope, receive, tracked)
        except TimeoutError:
            self.on_reject("timeout")
            if not started:
                await send_error(
                    send,
                    504,
                    f"request took longer than {timeout_s:g}s ({setting})",
                    "timeout_error",
                    code="timeout",
                )
