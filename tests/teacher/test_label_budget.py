"""The budget cap: a tiny `budget_usd` stops sending, says so, and keeps what was answered."""

from __future__ import annotations

from pathlib import Path

from servers import fake_openai_server
from teacher.live_teacher import comments, live_calls, point_teacher, run_label

from graduate.pipeline.project import Project
from graduate.formats.prompt import render_messages
from graduate.formats.tokens import estimate_prompt_tokens
from graduate.store.calls import live_spend

N = 50
BUDGET = 0.01  # a few calls of gpt-4-1106-preview at the fixture's prices


def test_budget_stops_sending_and_keeps_answered_calls(tiny_project: Path) -> None:
    texts = comments(tiny_project, N)
    with fake_openai_server(latency=0.05) as server:
        point_teacher(tiny_project, server.base_url, concurrency=8, requests_per_minute=60_000, budget_usd=BUDGET)
        project = Project.load(tiny_project)
        outcomes, stats = project.label(texts)
        served = server.stats()

    assert stats.budget_stopped
    assert stats.sent >= 1 and stats.not_sent == N - stats.sent and stats.failed == 0
    assert {o.status for o in outcomes} == {"sent", "not_sent"}
    assert live_spend(project.engine) <= BUDGET
    rows = live_calls(tiny_project)
    assert len(rows) == stats.sent == served["ok"] == served["requests"]
    assert {r.status for r in rows} == {"ok"}


def test_cli_exits_3_at_the_budget_and_resumes_from_the_answers(tiny_project: Path) -> None:
    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url, concurrency=2, requests_per_minute=60_000, budget_usd=BUDGET)
        stopped = run_label(tiny_project, "--limit", str(N))
        assert stopped.returncode == 3, stopped.stderr
        assert f"budget of ${BUDGET:.2f} reached" in stopped.stderr
        assert "Raise teacher.budget_usd in graduate.yaml" in stopped.stderr
        answered = len(live_calls(tiny_project))
        assert 1 <= answered < N and server.stats()["ok"] == answered

        point_teacher(tiny_project, server.base_url, budget_usd=5.0)
        resumed = run_label(tiny_project, "--limit", str(N))
        assert resumed.returncode == 0, resumed.stderr
        served = server.stats()

    assert _row(resumed.stdout, "answered from the call log") == answered
    assert _row(resumed.stdout, "sent and answered") == N - answered
    assert served["ok"] == N and served["paid_twice"] == 0


def _row(table: str, name: str) -> int:
    line = next(line for line in table.splitlines() if name in line)
    return int(line.strip(" │|").split("│")[-1].strip())


def test_two_label_runs_at_once_never_pay_twice_or_pass_the_budget(tiny_project: Path) -> None:
    # Each run read the budget once when it started: two at once each spent up to it, and paid
    # for the same items twice. The second is now refused while the first holds the work lock.
    import subprocess

    from teacher.live_teacher import cli_env, label_command

    # 0.5 s answers: the first run holds the lock for 10 s, longer than a loaded machine may start the second late
    with fake_openai_server(latency=0.5) as server:
        point_teacher(tiny_project, server.base_url, concurrency=2, requests_per_minute=60_000, budget_usd=5.0)
        Project.load(tiny_project).engine.dispose()  # the store exists before both start
        runs = [subprocess.Popen(label_command(tiny_project, "--limit", "40"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()) for _ in range(2)]
        results = [(p.wait(timeout=120), *p.communicate()) for p in runs]
        served = server.stats()
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 2], [err[-400:] for _, _, err in results]
    refused = next(err for rc, _, err in results if rc == 2)
    assert "another graduate process is working on this project" in refused.strip().splitlines()[-1]
    assert served["paid_twice"] == 0 and served["ok"] == 40
    assert len(live_calls(tiny_project)) == 40


def test_the_budget_is_spent_up_to_the_last_call_that_fits(tiny_project: Path) -> None:
    # A reservation that did not fit while others were in flight ended the run for good: at
    # concurrency 8 it stopped near 70% of the budget, and each rerun sent a few more.
    texts = comments(tiny_project, 161)
    budget = 0.05
    with fake_openai_server(latency=0.05) as server:
        point_teacher(tiny_project, server.base_url, concurrency=8, requests_per_minute=60_000, budget_usd=budget)
        project = Project.load(tiny_project)
        _, stats = project.label(texts)
        again = project.label(texts)[1]
    spent = live_spend(project.engine)
    reserve = max(project.spec.price_for(project.spec.teacher.model).cost(estimate_prompt_tokens(render_messages(project.spec.teacher, t)), 64) for t in texts)
    assert stats.budget_stopped and spent <= budget
    assert spent > budget - reserve, (spent, reserve)  # stopped only when the next worst case no longer fits
    assert again.sent <= 1  # a rerun finds (almost) nothing left to spend


def test_a_remote_teacher_without_a_price_is_refused_before_anything_is_sent(tiny_project: Path) -> None:
    """Its calls were stored as free ($0.0000), so teacher.budget_usd held nothing back."""
    import subprocess
    import sys

    from teacher.live_teacher import cli_env

    # Refused before any connection: the address is never reached.
    point_teacher(tiny_project, "https://teacher.invalid/v1", model="gpt-4o", budget_usd=0.0001)
    result = run_label(tiny_project, "--limit", "3")
    assert result.returncode != 0
    assert "teacher.model: 'gpt-4o' has no price, so teacher.budget_usd ($0.0001) cannot be held and nothing was sent" in result.stderr, result.stderr
    submit = subprocess.run(
        [sys.executable, "-m", "graduate", "batch", "submit", str(tiny_project), "--limit", "3"], capture_output=True, text=True, timeout=120, env=cli_env()
    )
    assert submit.returncode != 0 and "'gpt-4o' has no price" in submit.stderr, submit.stderr
    assert live_calls(tiny_project) == []
    assert not list((tiny_project / ".graduate").glob("batches/*.jsonl"))


def test_a_teacher_on_this_machine_needs_no_price(tiny_project: Path) -> None:
    with fake_openai_server() as server:
        project = Project.load(point_teacher(tiny_project, server.base_url, model="llama-3-8b"))
        _, stats = project.label(comments(tiny_project, 2))
    assert stats.sent == 2 and stats.cost_usd == 0


def test_a_teacher_writing_long_answers_without_max_tokens_stays_within_the_budget(tiny_project: Path) -> None:
    """No max_tokens: an answer's length has no bound. The first call runs alone (nothing says how
    long the model writes), the rest reserve the longest answer seen, so the spend stays under the
    cap although each answer costs ~20 times the 64 tokens once reserved."""
    budget = 0.005  # gpt-3.5-turbo at $1.5/1M out: two ~1,250-token answers, not three
    texts = comments(tiny_project, 20)
    with fake_openai_server(shape="verbose", latency=0.2) as server:
        point_teacher(tiny_project, server.base_url, model="gpt-3.5-turbo", concurrency=8, requests_per_minute=60_000, budget_usd=budget)
        project = Project.load(tiny_project)
        assert project.spec.teacher.max_tokens is None
        _, stats = project.label(texts)
        served = server.stats()
    assert stats.budget_stopped and stats.sent >= 1 and stats.failed == 0, stats
    assert served["ok"] == stats.sent
    assert live_spend(project.engine) <= budget, (live_spend(project.engine), stats.sent)


def test_texts_in_another_script_stay_within_the_budget(tiny_project: Path) -> None:
    """The 4-characters rule made a Chinese prompt's reservation a quarter of what it costs (about a
    token a character), so 8 calls in flight at once spent past budget_usd."""
    budget = 0.02
    texts = [f"{i} " + "这是一个非常长的评论，" * 40 for i in range(30)]  # ~400 characters, ~400 tokens each
    with fake_openai_server(script_tokens=True, latency=0.2) as server:
        point_teacher(tiny_project, server.base_url, concurrency=8, requests_per_minute=60_000, budget_usd=budget, max_tokens=5)
        project = Project.load(tiny_project)
        _, stats = project.label(texts)
        served = server.stats()
    assert stats.budget_stopped and stats.sent >= 1 and served["ok"] == stats.sent, stats
    assert live_spend(project.engine) <= budget, (live_spend(project.engine), stats.sent)
