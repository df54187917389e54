"""A 200 response that is no chat completion is a failed call, never a stored (cached, paid) answer;
odd but readable shapes (content parts, nonsense usage) are read without a crash or a wrong cost."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import fake_openai_server
from teacher.live_teacher import comments, live_calls, point_teacher

from graduate.pipeline.project import Project
from graduate.teacher.parse import parse_answer

N = 3


@pytest.mark.parametrize(
    ("shape", "says"),
    [
        ("truncated", "unreadable answer (HTTP 200, application/json)"),
        ("html", "no chat completion (HTTP 200, text/html"),
        ("event-stream", "no chat completion (HTTP 200, text/event-stream"),
        ("no-choices", "no chat completion (HTTP 200, application/json)"),
        ("error-body", "The server had an error"),
        ("text-completion", "no chat completion (HTTP 200, application/json)"),
    ],
)
def test_a_broken_answer_fails_the_call_and_the_next_run_sends_it(tiny_project: Path, shape: str, says: str) -> None:
    texts = comments(tiny_project, N)
    with fake_openai_server(shape=shape) as server:
        point_teacher(tiny_project, server.base_url, max_retries=1)
        outcomes, stats = Project.load(tiny_project).label(texts)
    assert (stats.sent, stats.failed) == (0, N), stats
    assert all(says in e and "(2 attempts)" in e for e in stats.errors), stats.errors
    assert {r.status for r in live_calls(tiny_project)} == {"error"}

    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url)
        project = Project.load(tiny_project)
        _, again = project.label(texts)
        assert server.stats()["ok"] == N
    assert (again.cached, again.sent) == (0, N)
    assert {r.status for r in live_calls(tiny_project)} == {"ok"}


@pytest.mark.parametrize("shape", ["content-parts", "negative-usage", "string-usage"])
def test_an_odd_but_readable_answer_is_read(tiny_project: Path, shape: str) -> None:
    texts = comments(tiny_project, N)
    with fake_openai_server(shape=shape) as server:
        project = Project.load(point_teacher(tiny_project, server.base_url, max_retries=0))
        outcomes, stats = project.label(texts)
    assert (stats.sent, stats.failed) == (N, 0), stats.errors
    task = project.spec.task
    assert all(parse_answer(o.content, task.parse, task.labels).label is not None for o in outcomes), outcomes
    rows = live_calls(tiny_project)
    # A usage that is no count is estimated instead: never a negative cost that frees budget.
    assert all(r.cost_usd > 0 and r.input_tokens > 0 and r.output_tokens > 0 for r in rows), rows
    assert all(isinstance(r.content, str) for r in rows)
    assert stats.cost_usd > 0


def test_an_error_status_in_plain_text_names_what_the_server_said(tiny_project: Path) -> None:
    """The SDK's message for a body that is not OpenAI's error object is only "Error code: 400"."""
    with fake_openai_server(shape="plain-400") as server:
        _, stats = Project.load(point_teacher(tiny_project, server.base_url)).label(comments(tiny_project, 1))
    assert stats.failed == 1 and stats.errors == ["HTTP 400: request rejected by gateway: body too large"], stats.errors


def test_an_answer_trickling_in_past_timeout_s_is_cut_off(tiny_project: Path) -> None:
    """teacher.timeout_s bounds an attempt, not only each read: a server that sends a byte every
    half second would otherwise hold a call (and its concurrency slot) for as long as it likes."""
    import time

    with fake_openai_server(shape="trickle") as server:
        project = Project.load(point_teacher(tiny_project, server.base_url, timeout_s=1.5, max_retries=0))
        started = time.monotonic()
        _, stats = project.label(comments(tiny_project, 1))
        took = time.monotonic() - started
    assert stats.failed == 1 and stats.errors == ["timed out (1 attempt)"], stats.errors
    assert took < 15, took  # the trickle lasts 20 s; cut at 1.5 s (slack for a loaded machine)


def test_answers_cut_at_max_tokens_are_named_with_the_fix(tiny_project: Path, tmp_path: Path) -> None:
    """They read as unparseable only, and a re-run reads the same cut answers from the call log."""
    import subprocess
    import sys

    from teacher.live_teacher import cli_env

    items = tmp_path / "items.csv"
    items.write_text("id,comment_text\n1,you stupid moron\n2,a kind word\n")
    with fake_openai_server(shape="length") as server:
        point_teacher(tiny_project, server.base_url, max_tokens=3)
        cmd = [sys.executable, "-m", "graduate", "label", str(tiny_project), "--input", str(items)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env())
    assert result.returncode == 0, result.stderr
    assert "2 unparseable answers were cut off at the token limit (finish_reason length, teacher.max_tokens 3): raise teacher.max_tokens" in result.stderr, result.stderr
