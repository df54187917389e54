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
    assert stats.failed == 1 and stats.retryable == 0, stats
    assert stats.errors == ["HTTP 400: request rejected by gateway: body too large; the server refused the request as sent: fix the teacher section of graduate.yaml as its message says"], stats.errors


@pytest.mark.parametrize(
    ("shape", "fix"),
    [
        ("model-404", "check teacher.model in graduate.yaml"),
        ("context-400", "do not fit the model's context: shorten the item or teacher.prompt, or lower teacher.max_tokens in graduate.yaml"),
        ("param-400", "the server refused parameter 'max_tokens': fix teacher.max_tokens in graduate.yaml"),
    ],
)
def test_a_refused_request_names_the_field_to_fix_and_advises_no_rerun(tiny_project: Path, tmp_path: Path, shape: str, fix: str) -> None:
    """A 4xx refusal fails alike on every run: the message names what to change, not "run again"."""
    import subprocess
    import sys

    from teacher.live_teacher import cli_env

    items = tmp_path / "items.csv"
    items.write_text("id,comment_text\n1,a kind word\n")
    with fake_openai_server(shape=shape) as server:
        point_teacher(tiny_project, server.base_url, max_tokens=50)
        cmd = [sys.executable, "-m", "graduate", "label", str(tiny_project), "--input", str(items)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env())
        assert server.stats()["requests"] == 1  # not retried
    assert result.returncode == 1, result.stderr
    assert fix in result.stderr, result.stderr
    assert "run the same command again" not in result.stderr and "1 calls were refused or cut off as sent" in result.stderr, result.stderr


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


def test_answers_cut_at_max_tokens_fail_with_the_fix_and_are_not_reused(tiny_project: Path, tmp_path: Path) -> None:
    """A cut answer is paid for but no label: a failed call (its cost kept in the spend), the CLI
    names teacher.max_tokens and advises no plain re-run, and the next run does not read it back."""
    import subprocess
    import sys

    from teacher.live_teacher import cli_env

    from graduate.store.calls import live_spend

    items = tmp_path / "items.csv"
    items.write_text("id,comment_text\n1,you stupid moron\n2,a kind word\n")
    cmd = [sys.executable, "-m", "graduate", "label", str(tiny_project), "--input", str(items)]
    with fake_openai_server(shape="length") as server:
        point_teacher(tiny_project, server.base_url, max_tokens=3)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env())
        assert result.returncode == 1, result.stderr
        says = "the answer was cut off at teacher.max_tokens (3) (finish_reason length); raise teacher.max_tokens in graduate.yaml"
        assert result.stderr.count(says) == 2, result.stderr
        assert "2 calls were refused or cut off as sent" in result.stderr and "run the same command again" not in result.stderr, result.stderr
        rows = live_calls(tiny_project)
        assert [r.status for r in rows] == ["error", "error"] and all(r.cost_usd > 0 for r in rows), rows
        spent = live_spend(Project.load(tiny_project).engine)
        assert spent == pytest.approx(sum(r.cost_usd for r in rows))

    # At temperature 0 the same request is cut off again: a rerun at the same settings pays for
    # nothing and says, once, what to change.
    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url, max_tokens=3)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env())
        assert server.stats()["requests"] == 0
    assert result.returncode == 1, result.stderr
    says = "2 requests were not sent: their answers at these same settings (temperature 0) were cut off at teacher.max_tokens (3) before"
    assert result.stderr.count(says) == 1 and "raise teacher.max_tokens" in result.stderr, result.stderr
    assert "│ not sent (cut off at these settings before" in result.stdout and "┃" in result.stdout, result.stdout
    assert live_spend(Project.load(tiny_project).engine) == pytest.approx(spent)

    # The budget stops the same rerun before a new item is sent: both lines are said (the budget's
    # exit came first and hid what to change for the cut ones).
    more = tmp_path / "more.csv"
    more.write_text(items.read_text() + "3,a brand new comment\n")
    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url, max_tokens=3, budget_usd=spent)
        result = subprocess.run([*cmd[:-1], str(more)], capture_output=True, text=True, timeout=120, env=cli_env())
        assert server.stats()["requests"] == 0
    assert result.returncode == 3, result.stderr
    assert result.stderr.count(says) == 1 and "reached; 1 items not sent" in result.stderr, result.stderr
    point_teacher(tiny_project, server.base_url, budget_usd=100.0)

    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url, max_tokens=50)  # another request: sent
        _, again = Project.load(tiny_project).label(["you stupid moron", "a kind word"])
        assert (again.cached, again.sent, again.known_cut) == (0, 2, 0) and server.stats()["ok"] == 2
    # The paid cut answers keep their rows: the spend still holds their cost.
    assert live_spend(Project.load(tiny_project).engine) > spent


@pytest.mark.parametrize("temperature", [0.5, 0])
def test_a_cut_answer_an_older_version_stored_as_ok_is_no_answer(tiny_project: Path, temperature: float) -> None:
    """Before cut detection an answer cut off at max_tokens was stored as ok: it is read as the
    failed call it is, never a label; sent again where another answer may differ (temperature
    above 0), else not paid for again, as a new cut answer."""
    from datetime import datetime, timezone

    from sqlalchemy import select, update

    from graduate.data.examples import examples_for_texts
    from graduate.data.teacher_labels import teacher_key, teacher_labels
    from graduate.store.schema import labels, teacher_calls

    texts = comments(tiny_project, 2)
    with fake_openai_server(shape="length") as server:
        point_teacher(tiny_project, server.base_url, max_tokens=3, temperature=temperature)
        Project.load(tiny_project).label(texts)
    project = Project.load(tiny_project)
    with project.engine.begin() as conn:  # as the older version stored them
        conn.execute(update(teacher_calls).where(teacher_calls.c.source == "live").values(status="ok", error=None))
    examples = examples_for_texts(project.engine, "label:items", texts)
    with project.engine.begin() as conn:  # what the older version recorded from them: the labels table's rows
        cut = dict(conn.execute(select(teacher_calls.c.cache_key, teacher_calls.c.id).where(teacher_calls.c.source == "live")).all())
        for ex in examples:
            conn.execute(labels.insert().values(example_id=ex.id, kind="teacher", labeller=project.spec.teacher.labeller, label=None,
                                                call_id=cut[teacher_key(project.spec.teacher, ex.text)], note="unparseable", created_at=datetime.now(timezone.utc)))  # fmt: skip
    assert all(t.call is None for t in teacher_labels(project.engine, project.spec.task, project.spec.teacher, examples).values())

    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url)
        outcomes, stats = Project.load(tiny_project).label(texts)
        asked = server.stats()["ok"]
    assert stats.cached == 0, stats
    if temperature:
        assert (asked, stats.sent, stats.known_cut) == (2, 2, 0), stats
        assert {o.status for o in outcomes} == {"sent"}
        # The labels table held what the cut answers parsed to: the new answers replace it.
        project = Project.load(tiny_project)
        found = teacher_labels(project.engine, project.spec.task, project.spec.teacher, examples)
        assert all(t.label is not None for t in found.values()), found
        with project.engine.connect() as conn:
            stored = dict(conn.execute(select(labels.c.example_id, labels.c.call_id).where(labels.c.kind == "teacher", labels.c.example_id.in_(list(found)))).all())
        assert stored == {i: t.call.id for i, t in found.items()} and set(stored.values()) == {o.call_id for o in outcomes}
    else:
        assert (asked, stats.sent, stats.known_cut, stats.not_sent) == (0, 0, 2, 2), stats
        assert {o.status for o in outcomes} == {"not_sent"} and "raise teacher.max_tokens" in (stats.known_cut_advice or "")


def test_a_timed_out_call_at_temperature_0_is_sent_again(tiny_project: Path) -> None:
    """Only an answer cut off is known to come back alike: a transient failure is retried on a rerun."""
    with fake_openai_server(shape="trickle") as server:
        Project.load(point_teacher(tiny_project, server.base_url, timeout_s=1.5, max_retries=0)).label(comments(tiny_project, 1))
    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url)
        _, stats = Project.load(tiny_project).label(comments(tiny_project, 1))
    assert (stats.sent, stats.known_cut) == (1, 0), stats


def test_a_run_whose_first_answers_are_all_cut_sends_no_more(tiny_project: Path) -> None:
    """max_tokens too small for every answer: each call would be paid for and fail alike, so after
    the first CUT_STOP unusable answers (none usable) the rest are not sent."""
    from graduate.teacher.labeling import CUT_STOP

    texts = comments(tiny_project, 12)
    with fake_openai_server(shape="length") as server:
        outcomes, stats = Project.load(point_teacher(tiny_project, server.base_url, max_tokens=3, concurrency=1)).label(texts)
        asked = server.stats()["ok"]
    assert asked == CUT_STOP and (stats.failed, stats.not_sent, stats.cut_stopped) == (CUT_STOP, 12 - CUT_STOP, True), stats
    assert len(live_calls(tiny_project)) == CUT_STOP
    assert [o.status for o in outcomes].count("not_sent") == 12 - CUT_STOP
    assert all("teacher.max_tokens" in (o.error or "") for o in outcomes if o.status == "not_sent")


def test_a_tool_call_answer_is_a_failed_call_naming_the_fix(tiny_project: Path) -> None:
    texts = comments(tiny_project, 2)
    with fake_openai_server(shape="tool-calls") as server:
        outcomes, stats = Project.load(point_teacher(tiny_project, server.base_url, max_retries=0)).label(texts)
    assert (stats.sent, stats.failed, stats.retryable) == (0, 2, 0), stats
    assert all(e.startswith("the answer holds a tool call, not text (finish_reason 'tool_calls'); check teacher.model") for e in stats.errors), stats.errors
    assert {o.status for o in outcomes} == {"failed"}
    assert {r.status for r in live_calls(tiny_project)} == {"error"}


@pytest.mark.parametrize(
    ("max_tokens", "says"),
    [
        (3, "the answer was cut off at teacher.max_tokens (3) (finish_reason length); raise teacher.max_tokens in graduate.yaml"),
        (None, "the answer was cut off at the server's default output limit (finish_reason length); set teacher.max_tokens in graduate.yaml above it"),
    ],
)
def test_a_cut_answer_names_the_limit_it_met(tiny_project: Path, max_tokens: int | None, says: str) -> None:
    with fake_openai_server(shape="length") as server:
        _, stats = Project.load(point_teacher(tiny_project, server.base_url, max_tokens=max_tokens)).label(comments(tiny_project, 1))
    assert stats.failed == 1 and stats.retryable == 0 and stats.errors[0].startswith(says), stats.errors
