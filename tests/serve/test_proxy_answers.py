"""The proxy logs a 200 that is no chat completion as an error (never an answer graduate label
would reuse), and an answer with a nonsense usage as an answer: relayed, logged, never a 500."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from graduate.data.teacher_labels import teacher_key
from graduate.pipeline.project import Project
from graduate.serve.proxy import create_proxy_app
from graduate.store.calls import answers
from graduate.store.schema import teacher_calls
from servers import fake_openai_server
from servers.graduate_server import ThreadServer, prompt_messages

TEXT = "you stupid moron"


def _proxied(proj: Project, shape: str) -> tuple[httpx.Response, list]:
    with fake_openai_server(shape=shape) as upstream, ThreadServer(create_proxy_app(proj, upstream.base_url)) as proxy:
        body = {"model": proj.spec.teacher.model, "messages": prompt_messages(proj, TEXT), "temperature": 0}
        reply = httpx.post(f"{proxy.base_url}/chat/completions", json=body, headers={"authorization": "Bearer sk-test"}, timeout=30)
    with proj.engine.connect() as conn:
        calls = conn.execute(select(teacher_calls).where(teacher_calls.c.source == "proxy")).all()
    return reply, calls


@pytest.mark.parametrize("shape", ["html", "truncated", "no-choices", "text-completion"])
def test_a_200_that_is_no_chat_completion_is_relayed_and_logged_as_an_error(tiny_project, shape: str) -> None:
    proj = Project.load(tiny_project)
    reply, calls = _proxied(proj, shape)
    assert reply.status_code == 200  # the caller gets what the upstream sent
    assert [c.status for c in calls] == ["error"], calls
    assert "no chat completion" in calls[0].error
    key = teacher_key(proj.spec.teacher, TEXT)
    assert key not in answers(proj.engine, [key])  # graduate label sends it instead of reusing nothing


@pytest.mark.parametrize("shape", ["string-usage", "negative-usage"])
def test_an_answer_with_a_nonsense_usage_is_relayed_and_logged_with_estimated_tokens(tiny_project, shape: str) -> None:
    proj = Project.load(tiny_project)
    reply, calls = _proxied(proj, shape)
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == '{"is_bad": 1}'
    assert [c.status for c in calls] == ["ok"], calls
    call = calls[0]
    assert call.tokens_estimated and call.input_tokens > 0 and call.output_tokens > 0 and call.cost_usd > 0


def test_a_key_the_upstream_names_in_its_401_is_not_stored(tiny_project) -> None:
    proj = Project.load(tiny_project)
    key = "sk-callers-own-key-0c9e4f1a2b"
    with fake_openai_server(api_key="sk-right", echo_key=True) as upstream, ThreadServer(create_proxy_app(proj, upstream.base_url)) as proxy:
        body = {"model": proj.spec.teacher.model, "messages": prompt_messages(proj, TEXT)}
        reply = httpx.post(f"{proxy.base_url}/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert reply.status_code == 401
    with proj.engine.connect() as conn:
        calls = conn.execute(select(teacher_calls).where(teacher_calls.c.source == "proxy")).all()
    assert [c.status for c in calls] == ["error"] and "Incorrect API key provided" in calls[0].error, calls
    proj.engine.dispose()
    assert not [p for p in (tiny_project / ".graduate").glob("graduate.db*") if key.encode() in p.read_bytes()]
