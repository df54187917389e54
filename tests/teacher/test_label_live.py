"""The live teacher client against a real OpenAI-compatible server: answered, parsed, stored, cached."""

from __future__ import annotations

import json
from pathlib import Path

from teacher.live_teacher import comments, live_calls, point_teacher
from servers import fake_openai_server
from servers.fake_openai import is_rude

from graduate.pipeline.project import Project
from graduate.teacher.parse import parse_answer

N = 50


def test_labels_are_answered_parsed_stored_and_then_cached(tiny_project: Path) -> None:
    texts = comments(tiny_project, N)
    with fake_openai_server(latency=0.01) as server:
        point_teacher(tiny_project, server.base_url, concurrency=8, requests_per_minute=60_000)
        project = Project.load(tiny_project)

        outcomes, stats = project.label(texts)
        assert [o.status for o in outcomes] == ["sent"] * N
        assert (stats.sent, stats.failed, stats.not_sent, stats.cached) == (N, 0, 0, 0)
        task = project.spec.task
        for text, outcome in zip(texts, outcomes):
            parsed = parse_answer(outcome.content, task.parse, task.labels)
            assert parsed.label == ("bad" if is_rude(text) else "ok"), text
        rows = live_calls(tiny_project)
        assert len(rows) == N and {r.status for r in rows} == {"ok"}
        assert all(r.input_tokens and r.output_tokens and not r.tokens_estimated and r.cost_usd > 0 for r in rows)
        assert {json.loads(r.content)["is_bad"] for r in rows} == {0, 1}
        assert server.stats()["ok"] == N

        # A second run (a fresh process would do the same) sends nothing.
        again, stats = Project.load(tiny_project).label(texts)
        assert [o.status for o in again] == ["cached"] * N
        assert [o.content for o in again] == [o.content for o in outcomes]
        assert (stats.cached, stats.sent) == (N, 0)
        assert server.stats()["requests"] == N
    assert len(live_calls(tiny_project)) == N
