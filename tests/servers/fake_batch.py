"""A fake OpenAI Batch API (files + batches) with a virtual clock and fault knobs, for tests and benchmarks.

    python tests/servers/fake_batch.py --port 0 --duration 10 --p-line-500 0.05 --expire-after 3

It prints ``listening on http://127.0.0.1:PORT`` once it accepts connections, and runs as its own
process so that it outlives a client killed with SIGKILL, as the real service would.

- Time is virtual: ``POST /_clock {"advance": s}`` moves it, and ``--auto-advance s`` moves it on
  every ``GET /v1/batches/{id}``. A batch validates at once, is in progress from +1 s and ends at
  ``--duration``; its result files are written when it ends.
- Answers are fake_openai's (a pure function of the prompt), with usage, so a test knows each label.
- Faults: ``--p-line-400`` / ``--p-line-500`` (a share of lines fail, a pure function of the
  custom_id and seed), ``--expire-after K`` (the first batch expires with K lines done; the rest are
  ``batch_expired`` lines in the error file), ``--all-fail`` (every line fails: no output file),
  ``--fail-validation`` (the batch fails after create, no files), ``--file-not-found N`` (the first
  N creates answer a transient 404 "file not found"), ``--token-limit T`` (a batch whose prompt
  tokens, with those of the batches still running, exceed T fails with token_limit_exceeded),
  ``--cancel-partial K`` (a cancelled batch keeps K answered lines; the others appear in no file),
  ``--hang-at upload|create|content`` (the first such request is done, then its answer hangs;
  ``upload-before|create-before``: it hangs before anything is done), ``--extra-lines`` (the output
  gains a line for a custom_id never sent and a malformed line).
- ``GET /stats`` counts uploads, creates and how often each distinct request was answered (paid),
  so a test can prove nothing was paid twice.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from fake_openai import _tokens, answer_for, content_key, serve_app

TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class Knobs:
    duration: float = 10.0
    auto_advance: float = 0.0
    p_line_400: float = 0.0
    p_line_500: float = 0.0
    expire_after: int | None = None
    all_fail: bool = False
    fail_validation: bool = False
    file_not_found: int = 0
    token_limit: int | None = None
    cancel_partial: int = 0
    extra_lines: bool = False
    hang_at: str | None = None
    hang_s: float = 600.0
    cut: bool = False  # every answer cut at max_tokens: half the answer, finish_reason length
    seed: int = 0


@dataclass
class State:
    clock: float = 1_800_000_000.0
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    paid: Counter = field(default_factory=Counter)
    sent: Counter = field(default_factory=Counter)
    hung: int = 0
    expired_once: bool = False
    seq: int = 0

    def new_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}_{self.seq:06d}{hashlib.sha1(str(self.seq).encode()).hexdigest()[:8]}"


def _lines(blob: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in blob.splitlines() if line.strip()]


def create_app(knobs: Knobs) -> FastAPI:
    app = FastAPI()
    state = State()

    def error(status: int, message: str, code: str | None = None) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "code": code}}, status_code=status)

    async def maybe_hang(where: str) -> None:
        # "upload" / "create": the request is done, then its answer hangs (the client dies not knowing);
        # "upload-before" / "create-before": it hangs before anything is done.
        if knobs.hang_at == where and state.hung == 0:
            state.hung += 1
            await asyncio.sleep(knobs.hang_s)

    def add_file(data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        fid = state.new_id("file")
        obj = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(state.clock), "filename": filename, "purpose": purpose, "status": "processed"}
        state.files[fid] = obj
        state.blobs[fid] = data
        return obj

    def roll(custom_id: str, what: str) -> float:
        # A pure function of the line and how often it was sent: a line that failed may succeed when sent again.
        state.sent[custom_id] += 1
        return random.Random(f"{knobs.seed}:{what}:{custom_id}:{state.sent[custom_id]}").random()

    def result_line(req: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        cid, body = req["custom_id"], req["body"]
        rid = state.new_id("batch_req")
        r = roll(cid, "line")
        if knobs.all_fail or r < knobs.p_line_400:
            return False, {"id": rid, "custom_id": cid, "response": {"status_code": 400, "request_id": rid, "body": {"error": {"message": "Invalid request: fake 400", "type": "invalid_request_error", "code": None}}}, "error": None}
        if r < knobs.p_line_400 + knobs.p_line_500:
            return False, {"id": rid, "custom_id": cid, "response": {"status_code": 500, "request_id": rid, "body": {"error": {"message": "The server had an error", "type": "server_error", "code": None}}}, "error": None}
        messages = body["messages"]
        answer = answer_for(messages)
        finish = "stop"
        if knobs.cut:
            answer, finish = answer[: len(answer) // 2], "length"
        state.paid[content_key(messages)] += 1
        state.counts["answered"] += 1
        prompt = sum(_tokens(str(m.get("content") or "")) for m in messages)
        completion = {
            "id": f"chatcmpl-{rid}", "object": "chat.completion", "created": int(state.clock), "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": _tokens(answer), "total_tokens": prompt + _tokens(answer)},
        }
        return True, {"id": rid, "custom_id": cid, "response": {"status_code": 200, "request_id": rid, "body": completion}, "error": None}

    def not_run(cid: str, code: str) -> dict[str, Any]:
        message = "This request could not be executed before the completion window expired." if code == "batch_expired" else "Batch was cancelled."
        return {"id": state.new_id("batch_req"), "custom_id": cid, "response": None, "error": {"code": code, "message": message}}

    def finish(b: dict[str, Any], status: str, done: int | None, rest: str | None) -> None:
        reqs = _lines(state.blobs[b["input_file_id"]])
        out, err = [], []
        for n, req in enumerate(reqs):
            if done is not None and n >= done:
                if rest:
                    err.append(not_run(req["custom_id"], rest))
                continue
            ok, line = result_line(req)
            (out if ok else err).append(line)
        dump = lambda rows: ("\n".join(json.dumps(r) for r in rows) + "\n").encode()  # noqa: E731
        extra = b""
        if knobs.extra_lines and out:
            stray = dict(out[0], custom_id="never-sent-" + out[0]["custom_id"][:8])
            extra = (json.dumps(stray) + "\n{not json\n").encode()
        b["output_file_id"] = add_file(dump(out) + extra, f"{b['id']}_output.jsonl", "batch_output")["id"] if out else None
        b["error_file_id"] = add_file(dump(err), f"{b['id']}_error.jsonl", "batch_output")["id"] if err else None
        b["status"] = status
        b[f"{status}_at"] = int(state.clock)
        b["request_counts"] = {"total": len(reqs), "completed": len(out), "failed": len([e for e in err if e.get("response")])}

    def advance(b: dict[str, Any]) -> None:
        if b["status"] in TERMINAL:
            return
        age = state.clock - b["created_at"]
        if b["status"] == "cancelling":
            if state.clock >= b["cancelling_at"] + 1:
                finish(b, "cancelled", knobs.cancel_partial, None)
            return
        if b["status"] == "validating" and age >= 1:
            b["status"], b["in_progress_at"] = "in_progress", int(state.clock)
        if b["status"] == "in_progress" and age >= knobs.duration:
            if knobs.expire_after is not None and not state.expired_once:
                state.expired_once = True
                finish(b, "expired", knobs.expire_after, "batch_expired")
            else:
                finish(b, "completed", None, None)

    def running_tokens() -> int:
        total = 0
        for b in state.batches.values():
            if b["status"] in ("validating", "in_progress", "finalizing"):
                total += b["_tokens"]
        return total

    @app.get("/stats")
    async def stats(detail: bool = False) -> dict[str, Any]:
        out = {
            "uploads": state.counts["upload"], "creates": state.counts["create"], "batches": len(state.batches),
            "answered": state.counts["answered"], "contents": len(state.paid), "paid_twice": sum(n - 1 for n in state.paid.values()),
            "hung": state.hung, "clock": state.clock, "statuses": dict(Counter(b["status"] for b in state.batches.values())),
        }
        if detail:
            out["per_content"] = dict(state.paid)
        return out

    @app.post("/_clock")
    async def clock(request: Request) -> dict[str, Any]:
        state.clock += float((await request.json()).get("advance", 0))
        for b in state.batches.values():
            advance(b)
        return {"clock": state.clock}

    @app.post("/v1/files")
    async def upload(request: Request):
        form = await request.form()
        upload = form.get("file")
        purpose = form.get("purpose")
        if upload is None or isinstance(upload, str) or purpose != "batch":
            return error(400, "expected a file and purpose=batch")
        await maybe_hang("upload-before")
        data = await upload.read()
        try:
            reqs = _lines(data)
        except json.JSONDecodeError:
            return error(400, "the file is not valid JSONL")
        if len(reqs) > 50_000 or len(data) > 200 * 1024 * 1024:
            return error(400, "the file is over the batch limits (50,000 lines, 200 MB)")
        state.counts["upload"] += 1
        obj = add_file(data, upload.filename or "upload.jsonl", "batch")
        await maybe_hang("upload")
        return obj

    @app.get("/v1/files")
    async def list_files(purpose: str | None = None, after: str | None = None, limit: int = 10000):
        data = [f for f in reversed(list(state.files.values())) if purpose is None or f["purpose"] == purpose]
        return {"object": "list", "data": data, "has_more": False, "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}

    @app.get("/v1/files/{file_id}/content")
    async def content(file_id: str):
        if file_id not in state.blobs:
            return error(404, f"No such File object: {file_id}")
        await maybe_hang("content")
        return Response(state.blobs[file_id], media_type="application/octet-stream")

    @app.post("/v1/batches")
    async def create(request: Request):
        body = await request.json()
        fid = body.get("input_file_id")
        await maybe_hang("create-before")
        state.counts["create_attempt"] += 1
        if state.counts["create_attempt"] <= knobs.file_not_found:
            return error(404, f"File with id '{fid}' not found.", "file_not_found")
        if fid not in state.files:
            return error(400, f"File with id '{fid}' not found.", "invalid_request")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return error(400, "unsupported endpoint or completion_window")
        state.counts["create"] += 1
        bid = state.new_id("batch")
        reqs = _lines(state.blobs[fid])
        tokens = sum(_tokens(str(m.get("content") or "")) for r in reqs for m in r["body"]["messages"])
        b = {
            "id": bid, "object": "batch", "endpoint": body["endpoint"], "errors": None, "input_file_id": fid, "completion_window": "24h",
            "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": int(state.clock),
            "expires_at": int(state.clock) + 86400, "request_counts": {"total": len(reqs), "completed": 0, "failed": 0},
            "metadata": body.get("metadata") or {}, "_tokens": tokens,
        }
        if knobs.fail_validation:
            b["status"], b["failed_at"] = "failed", int(state.clock)
            b["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "fake validation failure", "param": None, "line": 1}]}
        elif knobs.token_limit is not None and running_tokens() + tokens > knobs.token_limit:
            b["status"], b["failed_at"] = "failed", int(state.clock)
            b["errors"] = {"object": "list", "data": [{"code": "token_limit_exceeded", "message": f"Enqueued token limit reached ({knobs.token_limit}).", "param": None, "line": None}]}
        state.batches[bid] = b
        state.order.append(bid)
        await maybe_hang("create")
        return public(b)

    def public(b: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in b.items() if not k.startswith("_")}

    @app.get("/v1/batches/{batch_id}")
    async def get(batch_id: str):
        if batch_id not in state.batches:
            return error(404, f"No batch found with id '{batch_id}'.")
        state.clock += knobs.auto_advance
        for b in state.batches.values():
            advance(b)
        return public(state.batches[batch_id])

    @app.get("/v1/batches")
    async def list_batches(limit: int = 20, after: str | None = None):
        ids = list(reversed(state.order))
        if after in ids:
            ids = ids[ids.index(after) + 1 :]
        page = ids[:limit]
        data = [public(state.batches[i]) for i in page]
        return {"object": "list", "data": data, "has_more": len(ids) > limit, "first_id": page[0] if page else None, "last_id": page[-1] if page else None}

    @app.post("/v1/batches/{batch_id}/cancel")
    async def cancel(batch_id: str):
        b = state.batches.get(batch_id)
        if b is None:
            return error(404, f"No batch found with id '{batch_id}'.")
        if b["status"] in ("validating", "in_progress", "finalizing"):
            b["status"], b["cancelling_at"] = "cancelling", int(state.clock)
        return public(b)

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--duration", type=float, default=10.0, help="virtual seconds from create to the end of a batch")
    parser.add_argument("--auto-advance", type=float, default=0.0, help="virtual seconds each GET of a batch moves the clock")
    parser.add_argument("--p-line-400", type=float, default=0.0)
    parser.add_argument("--p-line-500", type=float, default=0.0)
    parser.add_argument("--expire-after", type=int, default=None)
    parser.add_argument("--all-fail", action="store_true")
    parser.add_argument("--fail-validation", action="store_true")
    parser.add_argument("--file-not-found", type=int, default=0)
    parser.add_argument("--token-limit", type=int, default=None)
    parser.add_argument("--cancel-partial", type=int, default=0)
    parser.add_argument("--hang-at", choices=["upload-before", "upload", "create-before", "create", "content"], default=None)
    parser.add_argument("--extra-lines", action="store_true", help="add a line for a custom_id that was never sent and a malformed line to the output")
    parser.add_argument("--hang-s", type=float, default=600.0)
    parser.add_argument("--cut", action="store_true", help="every answer cut at max_tokens (finish_reason length)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    knobs = Knobs(**{k: v for k, v in vars(args).items() if k not in ("host", "port")})
    serve_app(create_app(knobs), args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
