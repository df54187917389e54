"""A small OpenAI-compatible upstream that streams (server-sent events), for the proxy's tests.

Answers like fake_openai.py (``{"is_bad": 1}`` for a rude user message), one character per chunk
with ``delay_s`` between chunks, honours ``stream_options.include_usage``, and records the
``Authorization`` header of each request so a test can see which key reached it. Run it in a
thread with ``ThreadServer(create_sse_app())``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from servers.fake_openai import answer_for


def create_sse_app(*, api_key: str | None = None, delay_s: float = 0.005) -> FastAPI:
    app = FastAPI()
    app.state.authorizations = []
    app.state.requests = 0
    app.state.bodies = []

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "upstream-model", "object": "model", "created": 0, "owned_by": "test"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        app.state.requests += 1
        auth = request.headers.get("authorization")
        app.state.authorizations.append(auth)
        if api_key is not None and auth != f"Bearer {api_key}":
            return JSONResponse({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_api_key"}}, 401)
        body = await request.json()
        app.state.bodies.append(body)  # what the upstream was sent (tests check what a proxy forwards)
        content = answer_for(body.get("messages") or [])
        created = int(time.time())
        cid = f"chatcmpl-up{app.state.requests}"
        usage = {"prompt_tokens": 50, "completion_tokens": len(content), "total_tokens": 50 + len(content)}
        if not body.get("stream"):
            return {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": usage,
            }
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def events():
            base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": body.get("model")}
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {'role': 'assistant', 'content': ''}, 'finish_reason': None}]})}\n\n"
            for ch in content:
                await asyncio.sleep(delay_s)
                yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {'content': ch}, 'finish_reason': None}]})}\n\n"
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
            if include_usage:
                yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
