"""A refused API key: one clear line naming the variable to set, and no more requests than were in flight."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import fake_openai_server
from teacher.live_teacher import cli_env, comments, live_calls, point_teacher, run_label

from graduate.errors import TeacherAuthError
from graduate.pipeline.project import Project

N = 50
CONCURRENCY = 4


def test_cli_names_the_key_variable_on_401(tiny_project: Path) -> None:
    with fake_openai_server(api_key="sk-right") as server:
        point_teacher(tiny_project, server.base_url, concurrency=CONCURRENCY, api_key_env="TEACHER_KEY")
        result = run_label(tiny_project, "--limit", str(N), env=cli_env(TEACHER_KEY="sk-wrong"))
        served = server.stats()

    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    assert "refused the API key" in errors[0] and "set TEACHER_KEY" in errors[0]
    assert "Traceback" not in result.stderr
    # Stopped at the first refusal: only the calls already in flight were sent.
    assert served["status_401"] == served["requests"] <= CONCURRENCY


def test_label_raises_and_records_the_refused_calls(tiny_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEACHER_KEY", raising=False)
    with fake_openai_server(api_key="sk-right") as server:
        point_teacher(tiny_project, server.base_url, concurrency=CONCURRENCY, api_key_env="TEACHER_KEY")
        with pytest.raises(TeacherAuthError, match="TEACHER_KEY is not set") as raised:
            Project.load(tiny_project).label(comments(tiny_project, N))
        served = server.stats()

    assert raised.value.api_key_env == "TEACHER_KEY"
    rows = live_calls(tiny_project)
    assert len(rows) == served["requests"] <= CONCURRENCY
    assert {r.status for r in rows} == {"error"}


def test_an_account_out_of_quota_stops_labelling_at_once(tiny_project: Path) -> None:
    """OpenAI's 429 insufficient_quota is no rate limit: each call was retried (max_retries, with
    backoff and a client-wide pause) and failed alike, for hours on a large file."""
    from graduate.errors import TeacherQuotaError

    with fake_openai_server(shape="quota") as server:
        project = Project.load(point_teacher(tiny_project, server.base_url, concurrency=2, max_retries=6))
        with pytest.raises(TeacherQuotaError) as refused:
            project.label(comments(tiny_project, 20))
        served = server.stats()
    assert served["requests"] <= 2  # the calls in flight when the first refusal came, none retried
    assert "out of quota (HTTP 429: You exceeded your current quota" in str(refused.value) and "check its plan and billing" in str(refused.value)
