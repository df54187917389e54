"""`graduate serve`'s teacher tier holds teacher.budget_usd as `graduate label` does: an unpriced
remote teacher is refused before the server listens, and what other processes spend from the same
budget while it runs is counted before each live call (not read once at start)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from servers import fake_openai_server
from servers.graduate_server import AUTH, cli_env, serve_process, set_teacher

from graduate.pipeline.project import Project
from graduate.store.calls import live_spend
from graduate.store.traffic import read_traffic


def test_an_unpriced_remote_teacher_is_refused_before_serving(served: Path) -> None:
    set_teacher(served, base_url="https://teacher.example.com/v1", model="unpriced-model")
    cmd = [sys.executable, "-m", "graduate", "serve", str(served), "--port", "0", "--mode", "cascade"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env())
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'unpriced-model' has no price, so teacher.budget_usd" in lines[0], result.stderr
    assert "listening on" not in result.stdout


def test_spend_by_another_process_while_serving_is_held_against_the_budget(served: Path) -> None:
    budget = 0.01  # a few calls at the fixture's gpt-4-1106-preview prices
    with fake_openai_server() as teacher:
        set_teacher(served, base_url=teacher.base_url, budget_usd=budget, concurrency=1, requests_per_minute=60_000)
        with serve_process(served, "--mode", "cascade", "--threshold", "1.0", "--workers", "0") as server:
            with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
                first = client.post("/v1/classify", json={"texts": [f"you idiot {uuid.uuid4().hex[:6]}"]}).json()["results"][0]
                assert first["route"] == "teacher", first
                # graduate label spends the rest of the budget meanwhile, from another process.
                items = served / "new.csv"
                items.write_text("comment_text\n" + "".join(f"new comment {i} {uuid.uuid4().hex[:6]}\n" for i in range(40)))
                cmd = [sys.executable, "-m", "graduate", "label", str(served), "--input", str(items)]
                labelled = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env(OPENAI_API_KEY="sk-test"))
                assert labelled.returncode == 3, labelled.stderr
                asked = teacher.stats()["requests"]
                later = client.post("/v1/classify", json={"texts": [f"nice garden {uuid.uuid4().hex[:6]}"]}).json()["results"][0]
                assert later["route"] == "student", later
                assert teacher.stats()["requests"] == asked  # nothing sent past the budget
            server.stop()  # SIGTERM: the traffic rows are written out
            assert "stopped: 2 traffic rows written" in server.text, server.text
    project = Project.load(served)
    assert live_spend(project.engine) <= budget
    assert [r.reason for r in read_traffic(project.engine)][-1] == "budget"


def test_a_cut_off_teacher_answer_is_a_failed_call_the_student_covers(served: Path) -> None:
    """An answer cut at max_tokens was logged as an ok call and read back from the log for good."""
    from servers.graduate_server import ThreadServer, options

    from graduate.serve.app import create_app

    text = f"you idiot {uuid.uuid4().hex[:6]}"
    with fake_openai_server(shape="length") as teacher:
        set_teacher(served, base_url=teacher.base_url, max_tokens=3)
        project = Project.load(served)
        app = create_app(project, options(project, mode="cascade", cascade_threshold=1.0))
        with ThreadServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            for _ in range(2):
                result = client.post("/v1/classify", json={"texts": [text]}).json()["results"][0]
                assert result["route"] == "student", result
        assert teacher.stats()["requests"] == 2  # not answered from the log the second time
    rows = [r for r in read_traffic(project.engine) if r.text == text]
    assert [r.reason for r in rows] == ["teacher_failed"] * 2
    assert all("cut off at teacher.max_tokens (3)" in (r.teacher_error or "") for r in rows), [r.teacher_error for r in rows]
