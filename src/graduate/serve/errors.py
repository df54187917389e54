"""Errors the way OpenAI's API sends them, ``{"error": {"message", "type", "param", "code"}}``, so
the openai SDK raises its usual exceptions with our message."""

from __future__ import annotations

import json
from typing import Any


def error_body(message: str, kind: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


async def send_error(
    send: Any,
    status: int,
    message: str,
    kind: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer from ASGI middleware, before the app is reached."""
    body = json.dumps(error_body(message, kind, param=param, code=code)).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
