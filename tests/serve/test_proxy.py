"""`graduate proxy` in front of a real upstream on 127.0.0.1: every chat completion, streamed or
not, lands in the call log (source proxy) with its answer; keys pass through or come from the
environment and are never stored; unmatched errors pass through as the upstream sent them."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from graduate.errors import SpecError
from graduate.pipeline.project import Project
from graduate.serve.proxy import StreamAssembler, create_proxy_app
from graduate.store.calls import live_spend
from graduate.store.schema import examples, teacher_calls
from servers.graduate_server import ThreadServer, prompt_messages
from servers.sse_openai import create_sse_app

UPSTREAM_KEY = "sk-upstream-secret-0123456789"


def _proxy_calls(proj: Project) -> list:
    with proj.engine.connect() as conn:
        return conn.execute(select(teacher_calls).where(teacher_calls.c.source == "proxy").order_by(teacher_calls.c.id)).all()


def _store_bytes(project_dir) -> bytes:
    return b"".join(p.read_bytes() for p in (project_dir / ".graduate").glob("graduate.db*"))


def test_proxy_logs_plain_and_streamed_calls_and_never_stores_the_key(tiny_project):
    upstream_app = create_sse_app(api_key=UPSTREAM_KEY)
    proj = Project.load(tiny_project)
    before = live_spend(proj.engine)
    with ThreadServer(upstream_app) as upstream, ThreadServer(create_proxy_app(proj, upstream.base_url)) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key=UPSTREAM_KEY, max_retries=0)
        plain = client.chat.completions.create(model="gpt-4-1106-preview", messages=prompt_messages(proj, "you stupid moron"), temperature=0)
        assert plain.choices[0].message.content == '{"is_bad": 1}'
        stream = client.chat.completions.create(
            model="gpt-4-1106-preview", messages=prompt_messages(proj, "a kind word"), temperature=0, stream=True, stream_options={"include_usage": True}
        )
        chunks = [c for c in stream]
        assert len(chunks) > 5  # relayed chunk by chunk, not buffered into one
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == '{"is_bad": 0}'
        other = client.chat.completions.create(model="gpt-4-1106-preview", messages=[{"role": "user", "content": "not the template, idiot"}], stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in other if c.choices) == '{"is_bad": 1}'
        # other endpoints pass through unlogged
        assert [m.id for m in client.models.list()] == ["upstream-model"]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=proxy.base_url, api_key="sk-wrong", max_retries=0).chat.completions.create(
                model="gpt-4-1106-preview", messages=prompt_messages(proj, "x")
            )
    assert upstream_app.state.authorizations.count(f"Bearer {UPSTREAM_KEY}") == 3  # passed through as sent

    calls = _proxy_calls(proj)
    assert [c.status for c in calls] == ["ok", "ok", "ok", "error"]
    assert [c.content for c in calls[:3]] == ['{"is_bad": 1}', '{"is_bad": 0}', '{"is_bad": 1}']
    assert calls[0].response["usage"]["prompt_tokens"] == 50 and not calls[0].tokens_estimated
    assert calls[1].response["streamed"] is True and calls[1].output_tokens == len('{"is_bad": 0}') and not calls[1].tokens_estimated
    assert calls[2].tokens_estimated  # a stream without usage: tokens estimated offline
    assert "HTTP 401" in calls[3].error
    assert calls[0].request["messages"] == prompt_messages(proj, "you stupid moron") and calls[0].params == {"temperature": 0}
    assert all(c.cost_usd > 0 for c in calls[:3])
    # the same request graduate would send for that text: the answer is a cached teacher label now
    from graduate.store.calls import answers
    from graduate.data.teacher_labels import teacher_key

    assert teacher_key(proj.spec.teacher, "you stupid moron") in answers(proj.engine, [teacher_key(proj.spec.teacher, "you stupid moron")])
    # texts that match the prompt template become examples for the training pool
    with proj.engine.connect() as conn:
        proxied = conn.execute(select(examples.c.text, examples.c.tags).where(examples.c.source == "proxy")).all()
    assert sorted(t for t, _ in proxied) == ["a kind word", "you stupid moron"] and all(tags == ["proxy"] for _, tags in proxied)
    # the app's spend is not the project's budget
    assert live_spend(proj.engine) == before
    proj.engine.dispose()
    assert UPSTREAM_KEY.encode() not in _store_bytes(tiny_project)
    assert b"sk-wrong" not in _store_bytes(tiny_project)


def test_proxy_with_the_key_from_the_environment(tiny_project, monkeypatch):
    upstream_app = create_sse_app(api_key=UPSTREAM_KEY)
    proj = Project.load(tiny_project)
    env = {"OPENAI_API_KEY": UPSTREAM_KEY, "GRADUATE_API_KEYS": "app-key"}
    with pytest.raises(SpecError, match="OPENAI_API_KEY is not set"):
        create_proxy_app(proj, "http://127.0.0.1:9/v1", key_from_env=True, env={"GRADUATE_API_KEYS": "app-key"})
    with ThreadServer(upstream_app) as upstream, ThreadServer(create_proxy_app(proj, upstream.base_url, key_from_env=True, env=env)) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="app-key", max_retries=0)
        reply = client.chat.completions.create(model="gpt-4-1106-preview", messages=prompt_messages(proj, "hello there"))
        assert reply.choices[0].message.content == '{"is_bad": 0}'
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=proxy.base_url, api_key=UPSTREAM_KEY, max_retries=0).models.list()
    assert upstream_app.state.authorizations == [f"Bearer {UPSTREAM_KEY}"]
    assert [c.status for c in _proxy_calls(proj)] == ["ok"]
    proj.engine.dispose()
    assert UPSTREAM_KEY.encode() not in _store_bytes(tiny_project) and b"app-key" not in _store_bytes(tiny_project)


def test_stream_assembler_takes_chunks_split_anywhere():
    events = (
        b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"He"}}]}\n\n'
        b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"llo"},"finish_reason":"stop"}]}\n\n'
        b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\r\n\r\n'
        b"data: [DONE]\n\n"
    )
    for size in (1, 3, 7, len(events)):
        a = StreamAssembler()
        for i in range(0, len(events), size):
            a.feed(events[i : i + size])
        assert a.done and a.text() == "Hello" and a.usage == {"prompt_tokens": 3, "completion_tokens": 2}
        assert a.response()["choices"][0] == {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}


def _any_body_upstream():
    """An upstream that answers every chat completion (streamed when asked), so that anything
    the proxy answers with a 5xx is the proxy's own."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": {"message": "not JSON", "type": "invalid_request_error"}}, 400)
        if isinstance(body, dict) and body.get("stream") is True:
            chunks = [b'data: {"choices":[{"index":0,"delta":{"content":"{\\"is_bad\\": 0}"}}]}\n\n', b"data: [DONE]\n\n"]
            return StreamingResponse(iter(chunks), media_type="text/event-stream")
        answer = {"role": "assistant", "content": '{"is_bad": 0}'}
        return {"id": "c", "object": "chat.completion", "choices": [{"index": 0, "message": answer, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}

    return app


def test_any_chat_body_is_forwarded_or_refused_never_a_proxy_500(tiny_project):
    """Fuzz POST /v1/chat/completions through the proxy: any JSON (odd Unicode, lone surrogates,
    messages of any type, bad stream options) is forwarded and answered as the upstream answers,
    and no call is left pending in the log. A message that was no object (``"messages": [1]``)
    was the proxy's own 500 (the request key read it as a mapping)."""
    chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
    texts = st.text(chars, max_size=30)
    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
        max_leaves=10,
    )
    content = texts | st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", ""]), "text": texts | values}), max_size=3) | values
    message = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", ""]) | values, "content": content}) | values
    bodies = st.fixed_dictionaries(
        {"model": st.just("gpt-4-1106-preview") | texts | values, "messages": st.lists(message, max_size=3)},
        optional={"stream": st.booleans() | values, "temperature": values, "stream_options": values},
    ) | values
    proj = Project.load(tiny_project)
    with ThreadServer(_any_body_upstream()) as upstream, ThreadServer(create_proxy_app(proj, upstream.base_url)) as proxy, httpx.Client(base_url=proxy.url, timeout=30) as client:

        @settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(body=bodies, raw_utf8=st.booleans())
        def check(body: object, raw_utf8: bool) -> None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass") if raw_utf8 else json.dumps(body).encode()
            r = client.post("/v1/chat/completions", content=data, headers={"content-type": "application/json"})
            assert r.status_code in (200, 400, 413), (r.status_code, r.text[:300], data[:200])

        check.hypothesis.inner_test(body={"model": "gpt-4-1106-preview", "messages": [1, {"role": "user", "content": "hi"}]}, raw_utf8=False)
        check()
        assert client.get("/healthz").status_code == 200
    calls = _proxy_calls(proj)
    assert calls and {c.status for c in calls} <= {"ok", "error"}, [c.status for c in calls]


def test_a_timeout_that_is_no_number_of_seconds_is_refused_before_the_proxy_starts(tiny_project):
    """`graduate proxy --timeout nan` reset every connection (httpx: "deadline must not be NaN"), and
    0 or less answered every call 502 "unreachable: " with no reason; each is now one line naming
    the option, and the 502 of an upstream that does not answer names what happened."""
    from typer.testing import CliRunner

    from graduate.cli.app import app

    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(timeout=st.floats(max_value=0) | st.sampled_from([float("nan"), float("inf"), -0.0]))
    def check(timeout: float) -> None:
        # no project there: refused before it is read (and a proxy that started would not end the test)
        res = CliRunner().invoke(app, ["proxy", str(tiny_project / "none"), "--upstream", "http://127.0.0.1:9/v1", "--port", "0", "--timeout", repr(timeout)])
        assert isinstance(res.exception, SpecError), (timeout, res.output)
        assert str(res.exception).startswith("option: --timeout: ") and "above 0" in str(res.exception)

    check()
    proj = Project.load(tiny_project)
    with ThreadServer(create_proxy_app(proj, "http://127.0.0.1:9/v1", timeout_s=5)) as proxy, httpx.Client(base_url=proxy.url, timeout=30) as client:
        for r in (client.get("/v1/models"), client.post("/v1/chat/completions", json={"model": "m", "messages": prompt_messages(proj, "hi")})):
            assert r.status_code == 502 and "unreachable: ConnectError: " in r.json()["error"]["message"], r.text
