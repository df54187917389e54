"""A fault-injecting OpenAI-compatible chat-completions server, for tests and benchmarks.

    python tests/servers/fake_openai.py --port 0 --p429 0.05 --p500 0.02 --phang 0.01 --rpm 600 --seed 1

It prints one line, ``listening on http://127.0.0.1:PORT``, once it accepts connections (port 0
picks a free one). It runs as its own process so that it outlives a client killed with SIGKILL,
as a real provider would.

- Answers are a pure function of the prompt (``{"is_bad": 1}`` when the user message holds a rude
  word, else ``{"is_bad": 0}``), so a test knows the right label of every item; ``n`` gives n
  choices, and with ``tools`` the answer is a call of the first function (finish_reason tool_calls).
  ``--shape`` sends every answer in a broken shape (cut short, an HTML page, no choices, ...).
- Faults are a pure function of (seed, request number): the first N requests meet the same
  faults in every run, whatever order the client sends them in.
- ``GET /stats`` counts what was sent, including how many successful (paid) answers each distinct
  request got, so a test can prove that nothing was paid twice.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import re
import socket
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

RUDE_WORDS = ("idiot", "stupid", "moron", "dumb", "loser", "jerk", "shut up", "hate you", "suck", "crap")
_RUDE = re.compile(r"\b(" + "|".join(re.escape(w) for w in RUDE_WORDS) + r")\b", re.IGNORECASE)
WINDOW_S = 60.0


def is_rude(text: str) -> bool:
    return _RUDE.search(text) is not None


def answer_for(messages: list[dict[str, Any]], label_lines: bool = False) -> str:
    """The server's answer to a request: judged on the user messages only, as the prompt template is fixed.
    A request for a numbered list (graduate synth / paraphrase) gets that many new lines: their own
    words (so no near copy of the request), every second one rude; with ``label_lines`` every second
    one is a label instead (LABEL_LINES), as a model that labels where it was asked to write answers."""
    text = " ".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
    if "Answer with a numbered list" in text:
        return _written_list(text, label_lines)
    return json.dumps({"is_bad": 1 if is_rude(text) else 0})


def _choice(index: int, content: str, body: dict[str, Any]) -> dict[str, Any]:
    """One choice; with ``tools`` (and tool_choice not "none") the answer is a call of the first
    function, its arguments the answer, as a model that calls tools replies."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    if tools and body.get("tool_choice") != "none":
        call = {"id": f"call_{index}", "type": "function", "function": {"name": tools[0]["function"].get("name", "f"), "arguments": content}}
        return {"index": index, "message": {"role": "assistant", "content": None, "tool_calls": [call]}, "finish_reason": "tool_calls"}
    return {"index": index, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}


# Labels of the tiny project's task (ok, bad; json_key is_bad) in the shapes a confused model writes them.
LABEL_LINES = ("bad", "Label: ok", '{"is_bad": 1}', "ok, bad")


def _written_list(prompt: str, label_lines: bool = False) -> str:
    m = re.search(r"(?:below|Write) (\d+) ", prompt)
    n = int(m.group(1)) if m else 3
    tag = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    lines = []
    for i in range(1, n + 1):
        if label_lines and i % 2 == 0:
            lines.append(f"{i}. {LABEL_LINES[(i // 2 - 1) % len(LABEL_LINES)]}")
            continue
        words = " ".join(_WORDS[(int(tag, 16) + 5 * i + k) % len(_WORDS)] for k in range(5))
        ending = "you stupid idiot" if i % 2 else "have a lovely afternoon"
        lines.append(f"{i}. w{tag}x{i} {words}, {ending}")
    return "\n".join(lines)


_WORDS = ("weather trains tea football gardening taxes music cats bicycles coffee harbour violin mountains bakery chess "
          "river lanterns orchard tractor museum pottery comet glacier festival library canoe sunflower volcano marathon "
          "telescope quilt lighthouse meadow compass").split()


def content_key(messages: list[dict[str, Any]]) -> str:
    """What the server counts answers by: the request's messages (a test computes the same key)."""
    payload = [{"role": m.get("role"), "content": m.get("content")} for m in messages]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _script_tokens(text: str) -> int:
    """Tokens as a real tokenizer counts them roughly: 4 ASCII characters, or one other character, a token."""
    other = sum(1 for c in text if ord(c) > 127)
    return max(1, math.ceil((len(text) - other) / 4) + other)


@dataclass
class Faults:
    p429: float = 0.0
    p500: float = 0.0
    phang: float = 0.0
    rpm: int = 0  # 0: no request limit
    window_s: float = 60.0  # the rpm limit holds per sliding window of this length (rpm * window_s / 60 requests)
    count_refused: bool = False  # refused (429) requests count against the window too, as some providers do
    retry_after: float = 1.0
    hang_s: float = 30.0
    latency: float = 0.0
    jitter: float = 0.0
    api_key: str | None = None
    echo_key: bool = False  # the 401 names the key it got, as OpenAI's does ("Incorrect API key provided: sk-...")
    seed: int = 0
    shape: str | None = None  # every 200 answer in a broken shape: one of SHAPES
    script_tokens: bool = False  # count a non-ASCII character as a token, as real tokenizers roughly do for Chinese
    label_lines: bool = False  # written lists give a label in place of every second text (answer_for)

    def roll(self, number: int) -> float:
        # A string seed goes through sha512 in `random`, so the draw is stable across processes.
        return random.Random(f"{self.seed}:{number}").random()


@dataclass
class State:
    requests: int = 0
    counts: Counter = field(default_factory=Counter)
    paid: Counter = field(default_factory=Counter)  # content key -> successful answers
    window: deque = field(default_factory=deque)  # arrival times of requests the rpm limit let in
    other: list = field(default_factory=list)  # "METHOD /path" of every request to any other route
    first_ok_at: float | None = None
    last_ok_at: float | None = None
    in_flight: int = 0  # chat requests being answered now
    max_in_flight: int = 0  # the most at once, so a test can prove a client kept to its concurrency

    def snapshot(self, detail: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requests": self.requests,
            "ok": self.counts["ok"],
            "status_401": self.counts["401"],
            "status_429": self.counts["429"],
            "status_429_rpm": self.counts["429_rpm"],
            "status_500": self.counts["500"],
            "hangs": self.counts["hang"],
            "contents": len(self.paid),
            "paid_twice": sum(n - 1 for n in self.paid.values()),
            "max_per_content": max(self.paid.values(), default=0),
            "other_requests": list(self.other),
            "first_ok_at": self.first_ok_at,
            "last_ok_at": self.last_ok_at,
            "max_in_flight": self.max_in_flight,
        }
        if detail:
            out["per_content"] = dict(self.paid)
        return out


# Answers in a shape no client should store as an answer, or one it must read with care.
SHAPES = ("truncated", "html", "event-stream", "no-choices", "error-body", "content-parts", "negative-usage", "string-usage", "plain-400", "trickle", "text-completion", "length", "tool-calls", "quota", "model-404", "context-400", "param-400", "verbose")


def broken(answer: dict[str, Any], shape: str) -> Any:
    """``answer`` (a chat completion) as a misbehaving server or gateway sends it."""
    from fastapi.responses import Response

    text = json.dumps(answer)
    content = answer["choices"][0]["message"]["content"]
    if shape == "truncated":  # the connection cut mid-body
        return Response(text[: len(text) // 2], media_type="application/json")
    if shape == "html":  # a gateway's page
        return Response("<html><body>Service temporarily unavailable</body></html>", media_type="text/html")
    if shape == "event-stream":  # streamed although nobody asked
        chunk = {**answer, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": "stop"}]}
        return Response(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n", media_type="text/event-stream")
    if shape == "length":  # cut at max_tokens: half the answer, finish_reason length
        choice = answer["choices"][0]
        return {**answer, "choices": [{**choice, "message": {"role": "assistant", "content": content[: len(content) // 2]}, "finish_reason": "length"}]}
    if shape == "verbose":  # the label with a long reason, as a chatty model writes without max_tokens (~1,250 tokens)
        long = json.dumps({**json.loads(content), "reason": "word " * 1000})
        choice = answer["choices"][0]
        usage = {**answer["usage"], "completion_tokens": _tokens(long), "total_tokens": answer["usage"]["prompt_tokens"] + _tokens(long)}
        return {**answer, "choices": [{**choice, "message": {"role": "assistant", "content": long}}], "usage": usage}
    if shape == "tool-calls":  # a call of a function nobody offered: no text, finish_reason tool_calls
        call = {"id": "call_0", "type": "function", "function": {"name": "answer", "arguments": content}}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return {**answer, "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}
    if shape == "text-completion":  # the legacy /completions shape: choices[].text, no message
        return {**answer, "object": "text_completion", "choices": [{"index": 0, "text": content, "finish_reason": "stop"}]}
    if shape == "no-choices":
        return {**answer, "choices": []}
    if shape == "error-body":  # an error with status 200
        return {"error": {"message": "The server had an error", "type": "server_error"}}
    if shape == "content-parts":  # content as a list of parts
        choice = answer["choices"][0]
        return {**answer, "choices": [{**choice, "message": {"role": "assistant", "content": [{"type": "text", "text": content}]}}]}
    if shape == "negative-usage":
        return {**answer, "usage": {"prompt_tokens": -1_000_000, "completion_tokens": -5, "total_tokens": -1_000_005}}
    if shape == "string-usage":
        return {**answer, "usage": {"prompt_tokens": "many", "completion_tokens": None}}
    if shape == "trickle":  # a byte every half second for 20 s (JSON may start with spaces), then the answer
        from fastapi.responses import StreamingResponse

        async def slowly() -> Any:
            for _ in range(40):
                yield b" "
                await asyncio.sleep(0.5)
            yield text.encode()

        return StreamingResponse(slowly(), media_type="application/json")
    if shape == "quota":  # OpenAI's answer once the account's credit is spent: a 429 no retry helps
        return JSONResponse(
            {"error": {"message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}},
            status_code=429,
        )
    refusals = {  # OpenAI's refusals of a request as sent: no retry can help
        "model-404": (404, "The model `gpt-nope` does not exist or you do not have access to it.", None, "model_not_found"),
        "context-400": (400, "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.", "messages", "context_length_exceeded"),
        "param-400": (400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter"),
    }
    if shape in refusals:
        status, message, param, code = refusals[shape]
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}, status_code=status)
    if shape == "plain-400":  # a gateway's refusal in plain text, not OpenAI's error object
        return Response("request rejected by gateway: body too large", status_code=400, media_type="text/plain")
    raise ValueError(f"unknown shape {shape!r}: one of {', '.join(SHAPES)}")


def create_app(faults: Faults) -> FastAPI:
    app = FastAPI()
    state = State()

    def error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind, "code": None}}, status_code=status, headers=headers)

    def retry_headers(seconds: float) -> dict[str, str]:
        # Both forms, as OpenAI sends them: the SDK reads retry-after-ms first, others Retry-After.
        return {"retry-after": str(max(1, math.ceil(seconds))), "retry-after-ms": str(max(1, round(seconds * 1000)))}

    @app.get("/stats")
    async def stats(detail: bool = False) -> dict[str, Any]:
        return state.snapshot(detail)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            return await answer(request)
        finally:
            state.in_flight -= 1

    async def answer(request: Request):
        number = state.requests
        state.requests += 1
        if faults.api_key and request.headers.get("authorization") != f"Bearer {faults.api_key}":
            state.counts["401"] += 1
            sent = (request.headers.get("authorization") or "").removeprefix("Bearer ")
            said = f"Incorrect API key provided: {sent}. You can find your API key at https://platform.openai.com/account/api-keys." if faults.echo_key else "Incorrect API key provided."
            return error(401, said, "invalid_request_error")
        body = await request.json()
        now = time.monotonic()
        if faults.rpm:
            allowed = max(1, math.floor(faults.rpm * faults.window_s / 60.0))
            while state.window and state.window[0] <= now - faults.window_s:
                state.window.popleft()
            if len(state.window) >= allowed:
                state.counts["429_rpm"] += 1
                wait = state.window[0] + faults.window_s - now
                if faults.count_refused:
                    state.window.append(now)
                return error(429, f"Rate limit reached: {faults.rpm} requests per minute.", "requests", retry_headers(wait))
            state.window.append(now)
        roll = faults.roll(number)
        if roll < faults.p429:
            state.counts["429"] += 1
            return error(429, "Rate limit reached (injected).", "requests", retry_headers(faults.retry_after))
        roll -= faults.p429
        if roll < faults.p500:
            state.counts["500"] += 1
            return error(500, "The server had an error (injected).", "server_error")
        roll -= faults.p500
        if roll < faults.phang:
            # Longer than the client's timeout: the client gives up, and nothing is paid.
            state.counts["hang"] += 1
            await asyncio.sleep(faults.hang_s)
            return error(504, "Hung (injected).", "server_error")
        if faults.latency or faults.jitter:
            await asyncio.sleep(faults.latency + faults.jitter * random.Random(f"latency:{faults.seed}:{number}").random())
        messages = body.get("messages") or []
        content = answer_for(messages, faults.label_lines)
        count = _script_tokens if faults.script_tokens else _tokens
        prompt_tokens = 3 + sum(3 + count(str(m.get("content") or "")) for m in messages)
        n = body.get("n") if isinstance(body.get("n"), int) and body.get("n") > 0 else 1
        completion_tokens = _tokens(content) * n
        # Counted when the answer leaves: a client killed meanwhile has still been billed for it.
        state.paid[content_key(messages)] += 1
        state.counts["ok"] += 1
        stamp = time.time()
        state.first_ok_at = state.first_ok_at or stamp
        state.last_ok_at = stamp
        answer = {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": int(stamp),
            "model": body.get("model", "fake"),
            "choices": [_choice(i, content, body) for i in range(n)],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return broken(answer, faults.shape) if faults.shape else answer

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def other(path: str, request: Request):
        # Anything else is recorded, so a test can prove a proxy never let such a request through.
        state.other.append(f"{request.method} /{path}")
        return error(404, f"no route {request.method} /{path}", "invalid_request_error")

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--p429", type=float, default=0.0, help="share of requests answered 429 with Retry-After")
    parser.add_argument("--p500", type=float, default=0.0, help="share of requests answered 500")
    parser.add_argument("--phang", type=float, default=0.0, help="share of requests that hang for --hang-s")
    parser.add_argument("--rpm", type=int, default=0, help="requests per sliding minute before 429s (0: no limit)")
    parser.add_argument("--window-s", type=float, default=60.0, help="the rpm limit holds per sliding window of this many seconds")
    parser.add_argument("--count-refused", action="store_true", help="requests answered 429 count against the window too")
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds the injected 429s ask to wait")
    parser.add_argument("--hang-s", type=float, default=30.0, help="how long a hung request sleeps")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each successful answer")
    parser.add_argument("--jitter", type=float, default=0.0, help="up to this many seconds added to --latency")
    parser.add_argument("--api-key", default=None, help="answer 401 unless this bearer key is sent")
    parser.add_argument("--echo-key", action="store_true", help="the 401 names the key it got, as OpenAI's does")
    parser.add_argument("--script-tokens", action="store_true", help="count a non-ASCII character as a token (the usage a real tokenizer reports for e.g. Chinese)")
    parser.add_argument("--label-lines", action="store_true", help="written lists (synth, paraphrase) give a label in place of every second text")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", choices=SHAPES, default=None, help="answer every request in this broken shape")
    args = parser.parse_args(argv)

    faults = Faults(**{k: v for k, v in vars(args).items() if k not in ("host", "port")})
    serve_app(create_app(faults), args.host, args.port)


def serve_app(app: FastAPI, host: str, port: int) -> None:
    """Bind, print ``listening on URL``, then serve ``app`` with uvicorn until stopped."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    # Listening already: connections queue in the backlog until uvicorn accepts them.
    print(f"listening on http://{host}:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
