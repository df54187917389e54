"""Faults on the wire (429 with Retry-After, 500, hung requests) cost retries, never a second payment."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from servers import fake_openai_server
from servers.fake_openai import Faults, content_key, is_rude
from teacher.live_teacher import comments, live_calls, point_teacher

from graduate.pipeline.project import Project
from graduate.teacher.parse import parse_answer

N = 50
# Seed 5 puts 4 429s, 3 500s and 4 hangs among the first 50 requests (see Faults.roll), so every
# kind of fault is met whatever order the client sends in.
FAULTS = Faults(p429=0.06, p500=0.04, phang=0.04, retry_after=0.2, hang_s=10, seed=5)


def test_every_item_is_answered_once_despite_faults(tiny_project: Path) -> None:
    texts = comments(tiny_project, N)
    options = {k: v for k, v in vars(FAULTS).items() if k != "api_key"}
    with fake_openai_server(**options) as server:
        point_teacher(
            # timeout_s: past it a hang is given up, and an answer that was merely slow (0.5 s was, on a
            # loaded machine) would be paid twice
            tiny_project, server.base_url, concurrency=16, requests_per_minute=60_000, timeout_s=3.0, max_retries=8
        )
        project = Project.load(tiny_project)
        outcomes, stats = project.label(texts)
        served = server.stats(detail=True)

    assert (stats.sent, stats.failed, stats.not_sent) == (N, 0, 0), stats.errors
    assert stats.attempts > N  # the faults were retried, not dropped
    assert served["status_429"] >= 4 and served["status_500"] >= 3 and served["hangs"] >= 4, served
    task = project.spec.task
    for text, outcome in zip(texts, outcomes):
        assert parse_answer(outcome.content, task.parse, task.labels).label == ("bad" if is_rude(text) else "ok")

    rows = live_calls(tiny_project)
    assert {r.status for r in rows} == {"ok"}
    assert Counter(r.cache_key for r in rows) == Counter({o.cache_key: 1 for o in outcomes})
    # What the server was paid for is exactly what was stored: one answer per item.
    assert served["ok"] == len(rows) == N
    assert served["per_content"] == {content_key(r.request["messages"]): 1 for r in rows}
    assert sum(r.attempts for r in rows) == stats.attempts


def test_a_base_url_without_v1_gets_a_hint_to_add_it(tiny_project: Path) -> None:
    """The SDK appends /chat/completions to teacher.base_url; a server's 404 alone did not say why."""
    import asyncio

    from graduate.errors import TeacherError
    from graduate.teacher.base import ChatRequest
    from graduate.teacher.openai_compat import OpenAICompatTeacher

    with fake_openai_server() as server:
        proj = Project.load(point_teacher(tiny_project, server.url))
        teacher = OpenAICompatTeacher(proj.spec.teacher, api_key="sk-test")
        try:
            asyncio.run(teacher.complete(ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], params={})))
        except TeacherError as exc:
            message = str(exc)
        else:
            raise AssertionError("a 404 passed")
        assert "HTTP 404" in message and f"teacher.base_url '{server.url}' usually ends in /v1 (e.g. {server.url}/v1)" in message, message
        proj = Project.load(point_teacher(tiny_project, server.base_url))
        ok = asyncio.run(OpenAICompatTeacher(proj.spec.teacher, api_key="sk-test").complete(ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], params={})))
        assert ok.content
