"""``graduate proxy``: an OpenAI-compatible pass-through to the real teacher that writes every chat
completion (streamed ones too) into the call log, so an app collects distillation data from its
production traffic by changing only its ``base_url``.

- Each chat completion is logged ``pending`` before it is sent upstream and finished after (ok with
  the answer and usage, or error with the status), with ``source="proxy"``: the app's own spend,
  not counted against the project's budget. A request that matches the project's prompt template
  also adds its text as an example (source ``proxy``, tag ``proxy``), ready for the training pool.
- Streams are relayed chunk by chunk as they arrive; the log gets the assembled answer when the
  stream ends (or the error if it breaks or the caller goes away).
- Keys: the caller's ``Authorization`` header is passed upstream as is; or, with
  ``key_from_env``, callers authenticate with the server's API keys and the proxy sends the key in
  ``teacher.api_key_env``. Headers are never stored: the log holds the request body only.
- Only the routes in ``proxy.routes`` are forwarded (default: chat completions and the model
  list); everything else is 404, so a key the proxy holds (``--key-from-env``) cannot reach the
  upstream's files, fine-tuning or batches. Paths are checked segment by segment after
  percent-decoding: ``.``/``..`` segments, empty segments and backslashes are refused, so nothing
  reaches outside the upstream's ``/v1``.
- Lone surrogates in a request (``"\\ud800"``) are forwarded as sent but logged as U+FFFD, so the
  log can always store what it keeps.
"""

from __future__ import annotations

import asyncio
import json
import os
from fnmatch import fnmatchcase
from urllib.parse import quote
import time
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, AsyncIterator

import httpx
from fastapi import FastAPI, Request
from starlette.middleware import Middleware
from starlette.responses import Response, StreamingResponse

from graduate.errors import SpecError
from graduate.serve.proxy_owner import owner_gone, process_owner
from graduate.serve.context import ServedProject
from graduate.serve.auth import AuthMiddleware, resolve_keys
from graduate.serve.chat import message_text, recover_text
from graduate.serve.errors import error_body
from graduate.serve.limits import BodySizeLimit
from graduate.data.text import scrub_surrogates
from graduate.privacy import records, redact_messages
from graduate.store.calls import begin_call, fail_abandoned, finish_call, request_key
from graduate.formats.tokens import estimate_prompt_tokens, estimate_text_tokens, reported_tokens

# Not sampling parameters: they change how the answer travels, not what it says.
NOT_PARAMS = frozenset({"model", "messages", "stream", "stream_options", "user", "metadata", "store"})
# Hop-by-hop and framing headers are the proxy's own business on each side.
DROP_REQUEST = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "accept-encoding", "te", "upgrade", "proxy-authorization"})
DROP_RESPONSE = frozenset({"content-length", "connection", "keep-alive", "transfer-encoding", "content-encoding", "server", "date"})


def _error(status: int, message: str, kind: str, code: str) -> Response:
    """An error the way OpenAI's API sends one, so the caller's SDK raises its usual exception."""
    return Response(json.dumps(error_body(message, kind, code=code)), status, media_type="application/json")


def route_allowed(method: str, path: str, routes: list[str]) -> bool:
    """Whether ``METHOD /path`` (under /v1) matches an allowed route; '*' matches one segment."""
    segments = path.strip("/").split("/")
    for route in routes:
        r_method, _, r_path = route.partition(" ")
        r_segments = r_path.strip("/").split("/")
        if r_method == method and len(r_segments) == len(segments) and all(fnmatchcase(seg, pat) for seg, pat in zip(segments, r_segments)):
            return True
    return False


def safe_path(path: str) -> str | None:
    """The path under /v1 if every segment is a plain name, else None (``..``, ``.``, empty, ``\\``)."""
    segments = path.split("/")
    if not path or any(seg in ("", ".", "..") or "\\" in seg or any(ord(c) < 32 for c in seg) for seg in segments):
        return None
    return path


class StreamAssembler:
    """Rebuilds a chat completion from its server-sent-event chunks, fed in arbitrary pieces."""

    def __init__(self) -> None:
        self._buf = b""
        self.done = False
        self.meta: dict[str, Any] = {}
        self.content: dict[int, list[str]] = {}
        self.finish: dict[int, str | None] = {}
        self.usage: dict[str, Any] | None = None
        self.errors: list[str] = []

    def feed(self, data: bytes) -> None:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            self._line(line.strip())

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(payload)
        except ValueError:
            self.errors.append(f"unreadable chunk: {payload[:80]!r}")
            return
        if not isinstance(chunk, dict):
            return
        if "error" in chunk:
            self.errors.append(json.dumps(chunk["error"])[:500])
        for k in ("id", "created", "model", "system_fingerprint"):
            if chunk.get(k) is not None:
                self.meta.setdefault(k, chunk[k])
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            i = int(choice.get("index", 0))
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.content.setdefault(i, []).append(str(delta["content"]))
            else:
                self.content.setdefault(i, [])
            if choice.get("finish_reason") is not None:
                self.finish[i] = choice["finish_reason"]

    def text(self, index: int = 0) -> str | None:
        parts = self.content.get(index)
        return None if parts is None else "".join(parts)

    def response(self) -> dict[str, Any]:
        return {
            **self.meta,
            "object": "chat.completion",
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": "".join(parts)}, "finish_reason": self.finish.get(i)}
                for i, parts in sorted(self.content.items())
            ],
            **({"usage": self.usage} if self.usage else {}),
            "streamed": True,
        }


def _without(value: Any, secret: str) -> Any:
    """``value`` (JSON-like) with ``secret`` replaced by *** in every string."""
    if isinstance(value, str):
        return value.replace(secret, "***")
    if isinstance(value, dict):
        return {k: _without(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_without(v, secret) for v in value]
    return value


def create_proxy_app(project: ServedProject, upstream: str, *, key_from_env: bool = False, timeout_s: float = 600.0, env: dict[str, str] | None = None) -> Any:
    spec = project.spec
    engine = project.engine
    redactor = project.redactor  # privacy.redact: requests, answers and items stored redacted
    input_redactor = project.input_redactor  # privacy.redact_teacher_input: prompts redacted before they are forwarded
    env = dict(os.environ) if env is None else env
    base = upstream.rstrip("/")
    upstream_key: str | None = None
    keys = None
    if key_from_env:
        upstream_key = env.get(spec.teacher.api_key_env)
        if not upstream_key:
            raise SpecError(f"--key-from-env: {spec.teacher.api_key_env} is not set", field="teacher.api_key_env")
        # The proxy then spends the project's key: callers must hold one of the server's keys.
        keys = resolve_keys(spec.serve.api_keys_env, spec.serve.api_keys, auth=True, env=env)
    writes: set[asyncio.Future] = set()
    client_box: dict[str, httpx.AsyncClient] = {}
    owner = process_owner()

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        # Calls a killed proxy (kill -9, a crash) left pending never end otherwise.
        await asyncio.to_thread(
            fail_abandoned, engine, "proxy", partial(owner_gone, me=owner), "graduate proxy stopped before the upstream answered (killed?); the app got no answer through it"
        )
        client_box["c"] = httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(timeout_s, connect=10.0), limits=httpx.Limits(max_connections=256))
        try:
            yield
        finally:
            await client_box["c"].aclose()
            if writes:
                await asyncio.gather(*list(writes), return_exceptions=True)

    app = FastAPI(
        title=f"graduate proxy: {spec.task.name}",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        middleware=[
            Middleware(AuthMiddleware, keys=keys),
            Middleware(BodySizeLimit, max_bytes=spec.proxy.max_body_bytes, timeout_s=spec.proxy.body_timeout_s),
        ],
    )
    app.state.upstream = base
    routes = list(spec.proxy.routes)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Never a plain-text 500: the caller's SDK reads an OpenAI-shaped error.
        return _error(500, f"graduate proxy: internal error ({type(exc).__name__}); the request was not logged", "server_error", "internal_error")

    def forward_headers(request: Request) -> dict[str, str]:
        out = {k: v for k, v in request.headers.items() if k.lower() not in DROP_REQUEST}
        if upstream_key is not None:
            out["authorization"] = f"Bearer {upstream_key}"
        return out

    def reply_headers(resp: httpx.Response) -> dict[str, str]:
        return {k: v for k, v in resp.headers.items() if k.lower() not in DROP_RESPONSE}

    async def log_write(fn: Any, *args: Any, **kwargs: Any) -> Any:
        # The write runs to the end in its thread even if this request is cancelled (caller gone).
        fut = asyncio.get_running_loop().run_in_executor(None, partial(fn, *args, **kwargs))
        writes.add(fut)
        fut.add_done_callback(writes.discard)
        return await asyncio.shield(fut)

    def finish(
        call_id: int, status_code: int, body: dict[str, Any] | None, content: str | None, messages: list[Any], model: str, started: float, error: str | None,
        secret: str = "",
    ) -> None:
        if len(secret) >= 8:  # the key sent upstream, which an upstream's 401 names ("Incorrect API key provided: sk-...")
            body, error = _without(body, secret), _without(error, secret)
        usage = (body or {}).get("usage")
        usage = usage if isinstance(usage, dict) else {}
        # A count that is none (a string, negative, huge) is estimated: it would crash pricing or store a negative cost.
        tin, tout = reported_tokens(usage.get("prompt_tokens")), reported_tokens(usage.get("completion_tokens"))
        estimated = tin is None or tout is None
        if tin is None:
            tin = estimate_prompt_tokens(messages)
        if tout is None:
            tout = estimate_text_tokens(content or "")
        price = spec.price_for(model)
        ok = error is None and 200 <= status_code < 300
        stored = records.answer(redactor, {"messages": messages}, content=content, response=body, error=None if ok else (error or f"HTTP {status_code}"))
        finish_call(
            engine,
            call_id,
            status="ok" if ok else "error",
            content=stored.content,
            response=stored.response,
            error=stored.error,
            redactions=stored.redactions,
            input_tokens=tin,
            output_tokens=tout,
            tokens_estimated=estimated,
            latency_ms=(time.perf_counter() - started) * 1000,
            cost_usd=price.cost(tin, tout) if (price and ok) else None,
        )
        text = recover_text(spec.teacher, messages) if ok else None
        if text is not None and redactor is not None:
            text = redactor.record({"messages": messages}).text(text)
        if text is not None:
            from graduate.data.csv_source import Item
            from graduate.data.examples import add_examples
            from graduate.data.text import text_hash

            add_examples(engine, "proxy", [Item(external_id=text_hash(text)[:32], text=text, tags=["proxy"])])

    def begin(key: str, model: str, body: dict[str, Any], params: dict[str, Any]) -> int:
        from sqlalchemy.exc import IntegrityError

        # Identical requests at the same moment race for the same sample index: the loser retries.
        for attempt in range(5):
            try:
                stored, counts = records.request(redactor, body)
                return begin_call(engine, cache_key=key, model=model, request=stored, params=params, source="proxy", redactions=counts, owner=owner)
            except IntegrityError:
                if attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def chat(request: Request) -> Any:
        raw = await request.body()
        try:
            body = scrub_surrogates(json.loads(raw))
        except ValueError:
            body = None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("messages"), list)
            or not all(isinstance(m, dict) for m in body["messages"])  # a message that is no object was an internal 500
            or not body.get("model")
        ):
            return await passthrough(request, "chat/completions", raw)  # the upstream explains what is wrong
        if input_redactor is not None:  # privacy.redact_teacher_input: the upstream sees placeholders
            body = {**body, "messages": redact_messages(input_redactor, body["messages"])}
            raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        model, messages = str(body["model"]), body["messages"]
        params = {k: v for k, v in body.items() if k not in NOT_PARAMS}
        key = request_key(model, messages, params)
        call_id = await log_write(begin, key, model, body, params)
        started = time.perf_counter()
        client = client_box["c"]
        headers = forward_headers(request)
        secret = next((v for k, v in headers.items() if k.lower() == "authorization"), "").removeprefix("Bearer ").strip()
        upstream_req = client.build_request("POST", "/chat/completions", content=raw, headers=headers)
        try:
            resp = await client.send(upstream_req, stream=True)
        except httpx.HTTPError as exc:
            await log_write(finish, call_id, 502, None, None, messages, model, started, f"upstream unreachable: {type(exc).__name__}: {exc}", secret=secret)
            return _error(502, f"graduate proxy: upstream {base} unreachable: {type(exc).__name__}: {exc}", "server_error", "bad_gateway")
        streaming = resp.headers.get("content-type", "").startswith("text/event-stream")
        if not streaming:
            try:
                data = await resp.aread()
            finally:
                await resp.aclose()
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = None
            content = None
            if isinstance(parsed, dict) and parsed.get("choices"):
                content = message_text((parsed["choices"][0].get("message") or {}).get("content"))
            error = None
            if resp.status_code >= 300:
                detail = (parsed or {}).get("error") if isinstance(parsed, dict) else None
                error = f"HTTP {resp.status_code}: {json.dumps(detail)[:500] if detail else data[:200]!r}"
            elif not (isinstance(parsed, dict) and isinstance(parsed.get("choices"), list) and parsed["choices"]
                      and isinstance(parsed["choices"][0], dict) and isinstance(parsed["choices"][0].get("message"), dict)):
                # A gateway's page or a body cut short is relayed as it came, but is no answer to
                # log as one (the call log's answers are what graduate label reuses).
                error = f"HTTP {resp.status_code}: the answer is no chat completion ({resp.headers.get('content-type', 'no content-type')}): {data[:200]!r}"
            await log_write(finish, call_id, resp.status_code, parsed if isinstance(parsed, dict) else None, content, messages, model, started, error, secret=secret)
            return Response(data, resp.status_code, headers=reply_headers(resp))

        assembler = StreamAssembler()

        async def relay() -> AsyncIterator[bytes]:
            error: str | None = "the caller went away before the stream ended"
            try:
                async for chunk in resp.aiter_raw():
                    assembler.feed(chunk)
                    yield chunk
                error = None if (assembler.done or assembler.finish) and not assembler.errors else (
                    "; ".join(assembler.errors) or "the stream ended without [DONE]"
                )
            except httpx.HTTPError as exc:
                error = f"upstream stream broke: {type(exc).__name__}: {exc}"
                raise
            finally:
                try:
                    await log_write(finish, call_id, resp.status_code, assembler.response(), assembler.text(0), messages, model, started, error, secret=secret)
                finally:
                    await resp.aclose()

        return StreamingResponse(relay(), status_code=resp.status_code, headers=reply_headers(resp), media_type="text/event-stream")

    async def passthrough(request: Request, path: str, raw: bytes | None = None) -> Any:
        client = client_box["c"]
        body = raw if raw is not None else await request.body()
        try:
            url = "/" + "/".join(quote(seg, safe="") for seg in path.split("/"))
            resp = await client.request(request.method, url, content=body or None, params=request.query_params, headers=forward_headers(request))
        except httpx.HTTPError as exc:
            return _error(502, f"graduate proxy: upstream {base} unreachable: {type(exc).__name__}: {exc}", "server_error", "bad_gateway")
        return Response(resp.content, resp.status_code, headers=reply_headers(resp))

    @app.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def route(path: str, request: Request) -> Any:
        clean = safe_path(path)
        if clean is None or not route_allowed(request.method, clean, routes):
            return _error(
                404,
                f"graduate proxy: {request.method} /v1/{path} is not forwarded; allowed: {', '.join(routes)} (proxy.routes in graduate.yaml)",
                "invalid_request_error",
                "route_not_allowed",
            )
        if clean == "chat/completions" and request.method == "POST":
            return await chat(request)
        return await passthrough(request, clean)

    @app.get("/healthz")
    async def healthz() -> Any:
        return {"status": "ok"}

    return app
