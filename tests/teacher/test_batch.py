"""graduate batch against a real fake Batch API server on 127.0.0.1: every item answered once,
nothing paid twice, through line failures, expiry, cancellation, validation failures and limits."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from graduate.data.import_calls import batch_result, completion_of
from graduate.data.examples import examples_for_texts
from graduate.data.teacher_labels import teacher_labels
from graduate.errors import BatchError
from graduate.pipeline import batch
from graduate.pipeline.project import Project
from graduate.store.calls import live_spend
from graduate.store.schema import teacher_calls
from graduate.teacher.batch_api import BatchClient
from servers import fake_batch_server
from servers.fake_openai import content_key, is_rude
from teacher.live_teacher import cli_env, comments, point_teacher


def batch_rows(project_dir: Path) -> list:
    engine = Project.load(project_dir).engine
    with engine.connect() as conn:
        rows = conn.execute(select(teacher_calls).where(teacher_calls.c.source == "batch")).all()
    engine.dispose()
    return rows


def setup(project_dir: Path, base_url: str, **batch_spec) -> Project:
    point_teacher(project_dir, base_url, batch=batch_spec) if batch_spec else point_teacher(project_dir, base_url)
    return Project.load(project_dir)


def client(proj: Project) -> BatchClient:
    return BatchClient(proj.spec.teacher, api_key="sk-test", retry_wait_s=0.01)


def rounds(proj: Project, texts: list[str], server, max_rounds: int = 6) -> int:
    """submit + collect until every item is answered; returns the rounds it took."""
    for n in range(1, max_rounds + 1):
        with client(proj) as api:
            report = batch.submit(proj, texts, client=api)
            if report.answered == report.distinct:
                return n - 1
            server.advance(60)
            batch.collect(proj, client=api)
    raise AssertionError("items still unanswered")


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graduate", "batch", *args], capture_output=True, text=True, env=cli_env(), timeout=timeout)


def test_submit_and_collect_answer_every_item_once_at_batch_prices(tiny_project: Path) -> None:
    texts = comments(tiny_project, 60)
    with fake_batch_server(p_line_500=0.15, p_line_400=0.05, seed=3) as server:
        proj = setup(tiny_project, server.base_url)
        assert rounds(proj, texts, server) >= 2  # some lines failed the first time and were sent again
        stats = server.stats(detail=True)
    rows = batch_rows(tiny_project)
    ok = [r for r in rows if r.status == "ok"]
    assert len(ok) == 60 and {r.status for r in rows} == {"ok"}  # failed lines were re-sent in place: no extra rows
    assert Counter(r.cache_key for r in rows).most_common(1)[0][1] == 1
    assert stats["paid_twice"] == 0 and stats["answered"] == 60
    assert set(stats["per_content"]) == {content_key(r.request["messages"]) for r in ok}
    # Batch prices: half the spec's live prices by default, from the usage the provider reported.
    price = proj.spec.price_for(proj.spec.teacher.model)
    for r in ok:
        assert not r.tokens_estimated
        assert r.cost_usd == pytest.approx(price.cost(r.input_tokens, r.output_tokens) / 2)
    # The answers are the teacher's labels, as if sent live.
    examples = examples_for_texts(proj.engine, "label:batch", texts)
    labels = teacher_labels(proj.engine, proj.spec.task, proj.spec.teacher, examples)
    assert [labels[ex.id].label for ex in examples] == ["bad" if is_rude(t) else "ok" for t in texts]
    # Nothing reserved once collected; the budget counts what was paid.
    assert live_spend(proj.engine) == pytest.approx(sum(r.cost_usd for r in ok))
    assert not list((tiny_project / ".graduate" / "batches").glob("*.jsonl"))  # raw texts left the disk


def test_files_are_split_under_the_limits(tiny_project: Path) -> None:
    texts = comments(tiny_project, 23)
    with fake_batch_server() as server:
        proj = setup(tiny_project, server.base_url, max_requests_per_file=7)
        with client(proj) as api:
            report = batch.submit(proj, texts, client=api)
        assert len(report.sent) == 4 and sorted(b.requests for b in report.sent) == [2, 7, 7, 7]
        proj = setup(tiny_project, server.base_url, max_bytes_per_file=3000)
        more = comments(tiny_project, 40)[23:]
        with client(proj) as api:
            report = batch.submit(proj, more, client=api)
        assert report.held == 0 and report.planned == 17 and len(report.sent) > 1
        assert all(b.bytes <= 3000 for b in report.sent)
        for b in report.sent:
            assert len(httpx.get(f"{server.base_url}/files/{_file_id(server, b.remote_id)}/content", timeout=60).content) == b.bytes


def _file_id(server, remote_id: str) -> str:
    return httpx.get(f"{server.base_url}/batches/{remote_id}", timeout=60).json()["input_file_id"]


def test_expired_batch_keeps_its_paid_lines_and_sends_the_rest_again(tiny_project: Path) -> None:
    texts = comments(tiny_project, 20)
    with fake_batch_server(expire_after=6) as server:
        proj = setup(tiny_project, server.base_url)
        with client(proj) as api:
            batch.submit(proj, texts, client=api)
            server.advance(60)
            done, running = batch.collect(proj, client=api)
        assert not running and done[0].remote_status == "expired"
        assert done[0].counts["ok"] == 6 and done[0].counts["unsent"] == 14 and done[0].counts["error"] == 0
        assert Counter(r.status for r in batch_rows(tiny_project)) == {"ok": 6, "unsent": 14}
        assert rounds(proj, texts, server) == 1
        stats = server.stats()
    assert stats["paid_twice"] == 0 and stats["answered"] == 20
    assert len(batch_rows(tiny_project)) == 20


def test_cancel_keeps_the_partial_output_and_lines_in_no_file_go_back_to_unsent(tiny_project: Path) -> None:
    texts = comments(tiny_project, 12)
    with fake_batch_server(cancel_partial=5) as server:
        proj = setup(tiny_project, server.base_url)
        with client(proj) as api:
            sent = batch.submit(proj, texts, client=api).sent
        result = run_cli("cancel", str(tiny_project), "--batch", sent[0].uid)
        assert result.returncode == 0, result.stderr
        server.advance(5)
        with client(proj) as api:
            done, _ = batch.collect(proj, client=api)
        assert done[0].remote_status == "cancelled" and done[0].counts["ok"] == 5 and done[0].counts["unsent"] == 7
        assert rounds(proj, texts, server) == 1
        assert server.stats()["paid_twice"] == 0


def test_every_line_failing_leaves_no_output_file_and_is_counted(tiny_project: Path) -> None:
    with fake_batch_server(all_fail=True) as server:
        proj = setup(tiny_project, server.base_url)
        with client(proj) as api:
            batch.submit(proj, comments(tiny_project, 8), client=api)
        server.advance(60)
        result = run_cli("collect", str(tiny_project))
    assert result.returncode == 1
    assert "8 lines have no answer yet" in result.stdout
    rows = batch_rows(tiny_project)
    assert {r.status for r in rows} == {"error"} and all("fake 400" in r.error for r in rows)


def test_a_batch_that_fails_validation_returns_its_lines_with_one_line_naming_why(tiny_project: Path) -> None:
    with fake_batch_server(fail_validation=True) as server:
        setup(tiny_project, server.base_url)
        assert run_cli("submit", str(tiny_project), "--input", str(tiny_project / "comments.csv"), "--limit", "5").returncode == 0
        result = run_cli("collect", str(tiny_project))
    assert result.returncode == 1
    assert "fake validation failure" in result.stderr and "graduate batch submit" in result.stderr
    assert {r.status for r in batch_rows(tiny_project)} == {"unsent"}


def test_transient_file_not_found_after_upload_is_retried(tiny_project: Path) -> None:
    with fake_batch_server(file_not_found=2) as server:
        proj = setup(tiny_project, server.base_url)
        with client(proj) as api:
            report = batch.submit(proj, comments(tiny_project, 4), client=api)
        assert len(report.sent) == 1 and server.stats()["creates"] == 1


def test_enqueued_token_limit_fails_the_batch_and_the_hint_says_what_to_change(tiny_project: Path) -> None:
    with fake_batch_server(token_limit=1500) as server:
        proj = setup(tiny_project, server.base_url, max_requests_per_file=10)
        with client(proj) as api:
            report = batch.submit(proj, comments(tiny_project, 30), client=api)
        assert len(report.sent) == 3
        result = run_cli("collect", str(tiny_project))
        assert result.returncode == 1
        assert "token_limit_exceeded" in result.stderr and "max_requests_per_file" in result.stderr
        # The failed batches' lines go out again once the others are done.
        server.advance(60)
        assert rounds(proj, comments(tiny_project, 30), server) >= 1
        assert server.stats()["paid_twice"] == 0


def test_a_second_collect_and_a_second_submit_add_nothing(tiny_project: Path) -> None:
    texts = comments(tiny_project, 10)
    with fake_batch_server(extra_lines=True) as server:
        proj = setup(tiny_project, server.base_url)
        with client(proj) as api:
            batch.submit(proj, texts, client=api)
            again = batch.submit(proj, texts, client=api)  # still running: held, not sent twice
            assert again.held == 10 and again.planned == 0 and not again.sent
            server.advance(60)
            done, _ = batch.collect(proj, client=api)
            assert done[0].counts["unmatched"] == 1 and done[0].counts["malformed"] == 1 and done[0].counts["ok"] == 10
            assert any("matches no pending line" in p for p in done[0].problems) and any(":12: not a Batch API result line" in p for p in done[0].problems)
            before = batch_rows(tiny_project)
            assert batch.collect(proj, client=api) == ([], [])
            assert batch.submit(proj, texts, client=api).answered == 10
        assert batch_rows(tiny_project) == before
        assert server.stats()["uploads"] == 1


def test_batch_files_read_by_import_batch_give_the_same_cache_keys(tiny_project: Path, tmp_path: Path) -> None:
    texts = comments(tiny_project, 10)
    with fake_batch_server() as server:
        proj = setup(tiny_project, server.base_url)
        with client(proj) as api:
            sent = batch.submit(proj, texts, client=api).sent
            server.advance(60)
            batch.collect(proj, client=api)
        info = httpx.get(f"{server.base_url}/batches/{sent[0].remote_id}", timeout=60).json()
        (tmp_path / "in.jsonl").write_bytes(httpx.get(f"{server.base_url}/files/{info['input_file_id']}/content", timeout=60).content)
        (tmp_path / "out.jsonl").write_bytes(httpx.get(f"{server.base_url}/files/{info['output_file_id']}/content", timeout=60).content)
    other = tmp_path / "other"
    import shutil

    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "tiny", other)
    imported = Project.load(other)
    report = imported.import_batch(tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    assert report.added == 10 and not report.problems
    with imported.engine.connect() as conn:
        keys = set(conn.execute(select(teacher_calls.c.cache_key).where(teacher_calls.c.source == "imported", teacher_calls.c.external_id.is_not(None))).scalars())
    assert {r.cache_key for r in batch_rows(tiny_project)} <= keys


def test_budget_caps_what_submit_plans_and_what_live_labelling_may_add(tiny_project: Path) -> None:
    texts = comments(tiny_project, 40)
    with fake_batch_server() as server:
        point_teacher(tiny_project, server.base_url, budget_usd=0.01)
        proj = Project.load(tiny_project)
        with client(proj) as api:
            report = batch.submit(proj, texts, client=api)
        assert 0 < report.planned < 40 and report.not_sent_budget == 40 - report.planned
        assert report.reserved_usd <= 0.01 and live_spend(proj.engine) == pytest.approx(report.reserved_usd)
        result = run_cli("submit", str(tiny_project), "--input", str(tiny_project / "comments.csv"), "--limit", "40")
        assert result.returncode == 3 and "budget of $0.01 reached" in result.stderr


def test_live_labelling_does_not_send_what_an_open_batch_holds(tiny_project: Path) -> None:
    texts = comments(tiny_project, 6)
    with fake_batch_server() as server:
        proj = setup(tiny_project, server.base_url)
        with client(proj) as api:
            batch.submit(proj, texts, client=api)
        outcomes, stats = proj.label(texts)  # the live endpoint is the same fake: it has no chat route
    assert stats.held == 6 and stats.sent == 0 and {o.status for o in outcomes} == {"not_sent"}


def test_a_batch_that_is_not_ours_is_refused_in_one_line(tiny_project: Path) -> None:
    with fake_batch_server() as server:
        proj = setup(tiny_project, server.base_url)
        with pytest.raises(BatchError, match="not one of this project's batches"):
            batch.cancel(proj, "batch_someone_else", client=client(proj))
        result = run_cli("cancel", str(tiny_project), "--batch", "batch_someone_else")
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
        result = run_cli("cancel", str(tiny_project))
        assert result.returncode == 2 and "--batch ID" in result.stderr


def test_unreachable_batch_api_is_one_line_and_keeps_the_plan(tiny_project: Path) -> None:
    point_teacher(tiny_project, "http://127.0.0.1:9/v1")
    result = run_cli("submit", str(tiny_project), "--input", str(tiny_project / "comments.csv"), "--limit", "3")
    assert result.returncode == 2 and "cannot reach the Batch API" in result.stderr
    assert len([ln for ln in result.stderr.splitlines() if "error" in ln]) == 1
    assert {r.status for r in batch_rows(tiny_project)} == {"pending"}  # planned, sent by the next submit
    with fake_batch_server() as server:
        proj = setup(tiny_project, server.base_url)
        with client(proj) as api:
            report = batch.submit(proj, comments(tiny_project, 3), client=api)
        assert report.held == 3 and len(report.sent) == 1 and report.sent[0].requests == 3


def test_a_remote_batch_api_without_a_key_is_refused_before_any_call(tiny_project: Path) -> None:
    point_teacher(tiny_project, "https://batch.example.invalid/v1")
    env = {k: v for k, v in cli_env().items() if k != "OPENAI_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "graduate", "batch", "submit", str(tiny_project), "--input", str(tiny_project / "comments.csv"), "--limit", "3"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "OPENAI_API_KEY is not set, so nothing was sent" in result.stderr and "cannot reach" not in result.stderr
    assert {r.status for r in batch_rows(tiny_project)} == {"pending"}  # the plan is kept for the next submit


def test_redacted_project_stores_no_planted_value(tiny_project: Path) -> None:
    pytest.importorskip("presidio_analyzer")
    spec = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    spec["privacy"] = {"redact": True}
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    texts = [f"write to jane.doe{i}@example.com you idiot" for i in range(3)]
    with fake_batch_server() as server:
        proj = setup(tiny_project, server.base_url)
        with client(proj) as api:
            batch.submit(proj, texts, client=api)
            server.advance(60)
            batch.collect(proj, client=api)
    rows = batch_rows(tiny_project)
    assert {r.status for r in rows} == {"ok"} and all("<EMAIL_1>" in json.dumps(r.request) for r in rows)
    proj.engine.dispose()
    for f in (tiny_project / ".graduate").rglob("*"):
        if f.is_file():
            assert b"example.com" not in f.read_bytes(), f


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    obj=st.fixed_dictionaries(
        {"custom_id": st.text(max_size=70)},
        optional={"response": json_values | st.fixed_dictionaries({"status_code": json_values, "body": json_values}), "error": json_values},
    )
)
def test_any_result_line_is_parsed_or_named_never_raises(obj: dict) -> None:
    body, error, problem = batch_result(obj)
    if body is not None:
        assert isinstance(body, dict) and problem is None
        content, tin, tout, estimated = completion_of(body, None)
        assert content is None or isinstance(content, str)
        assert tin >= 0 and tout >= 0


def test_a_batch_file_limit_over_the_apis_is_refused_naming_the_field(tiny_project: Path) -> None:
    point_teacher(tiny_project, "http://127.0.0.1:9/v1", batch={"max_requests_per_file": 60_000})
    result = subprocess.run([sys.executable, "-m", "graduate", "check", str(tiny_project)], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert result.returncode != 0 and "teacher.batch.max_requests_per_file" in result.stderr + result.stdout


def test_status_shows_open_batches_and_what_they_reserve(tiny_project: Path) -> None:
    with fake_batch_server() as server:
        proj = setup(tiny_project, server.base_url)
        with client(proj) as api:
            report = batch.submit(proj, comments(tiny_project, 5), client=api)
    result = subprocess.run([sys.executable, "-m", "graduate", "status", str(tiny_project)], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert result.returncode == 0
    assert "Batch API batches open (submitted)" in result.stdout
    assert f"{report.reserved_usd:.4f} of 5.00" in result.stdout


def test_forget_removes_an_open_batchs_input_file_that_holds_the_text(tiny_project: Path) -> None:
    """Batch input files are JSON written with non-ASCII kept as is: a text with both non-ASCII
    characters and a quote is spelt there neither raw nor as ensure_ascii JSON."""
    text = 'Élodie a dit "tu es nul" à tout le monde'
    with fake_batch_server() as server:
        proj = setup(tiny_project, server.base_url)
        with client(proj) as api:
            batch.submit(proj, [text, "another comment"], client=api)
    files = list((tiny_project / ".graduate" / "batches").glob("*.jsonl"))
    spelt = json.dumps(text, ensure_ascii=False)[1:-1]
    assert any(spelt in f.read_text(encoding="utf-8") for f in files)
    proj.forget(match=text)
    left = [f for f in (tiny_project / ".graduate").rglob("*") if f.is_file() and not f.name.startswith("graduate.db")]
    assert not any(spelt in f.read_text(encoding="utf-8", errors="replace") for f in left)


def test_status_and_batch_status_print_a_task_name_and_folder_that_look_like_rich_markup(tmp_path: Path) -> None:
    import shutil

    project = tmp_path / "[bold]proj"
    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "tiny", project, ignore=shutil.ignore_patterns(".graduate"))
    spec_path = project / "graduate.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["task"]["name"] = "tox[/]icity"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with fake_batch_server() as server:
        setup(project, server.base_url)
        assert run_cli("submit", str(project), "--input", str(project / "comments.csv"), "--limit", "3").returncode == 0
        result = run_cli("status", str(project))
        assert result.returncode == 0, result.stderr
        assert "batches of tox[/]icity" in result.stdout
    status = subprocess.run([sys.executable, "-m", "graduate", "status", str(project)], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert status.returncode == 0, status.stderr
    assert "tox[/]icity: store" in status.stdout


def test_submit_and_collect_stop_at_once_while_another_process_works_on_the_project(tiny_project: Path) -> None:
    """Two submits at once would plan, upload and create the same lines twice (paid twice): one
    spender at a time, as `graduate label`."""
    import signal

    from graduate.errors import BusyError

    hold = (
        "import sys, time\nfrom graduate.pipeline.project import Project\n"
        "with Project.load(sys.argv[1]).exclusive('graduate batch submit'):\n    print('held', flush=True)\n    time.sleep(600)\n"
    )
    with fake_batch_server() as server:
        proj = setup(tiny_project, server.base_url)
        holder = subprocess.Popen([sys.executable, "-c", hold, str(tiny_project)], stdout=subprocess.PIPE, text=True, env=cli_env())
        try:
            assert holder.stdout.readline().strip() == "held"
            with client(proj) as api:
                with pytest.raises(BusyError, match="graduate batch submit"):
                    batch.submit(proj, comments(tiny_project, 3), client=api)
                with pytest.raises(BusyError, match="graduate batch submit"):
                    batch.collect(proj, client=api)
            assert server.stats()["creates"] == 0 and batch_rows(tiny_project) == []
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
        with client(proj) as api:
            assert len(batch.submit(proj, comments(tiny_project, 3), client=api).sent) == 1  # the lock went with its process


def test_a_result_line_whose_usage_is_no_count_is_estimated() -> None:
    """A count past any context window (or negative) made collect fail for good: the store cannot hold it."""
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": '{"is_bad": 1}'}}]}
    for usage in ({"prompt_tokens": 10**30, "completion_tokens": 5}, {"prompt_tokens": 12, "completion_tokens": -5}, {"prompt_tokens": "12", "completion_tokens": 5}):
        content, tin, tout, estimated = completion_of({**answer, "usage": usage}, [{"role": "user", "content": "you idiot"}])
        assert estimated and 0 < tin < 100 and 0 < tout < 100, usage
    assert completion_of({**answer, "usage": {"prompt_tokens": 12, "completion_tokens": 5}}, None)[1:] == (12, 5, False)


def test_answers_cut_at_max_tokens_are_paid_failed_lines_that_keep_their_cost(tiny_project: Path) -> None:
    """A batch answer cut at max_tokens was stored as the teacher's answer; and a failed row that was
    paid for must keep its cost in the spend, not be overwritten by the next submit."""
    texts = comments(tiny_project, 5)
    with fake_batch_server(cut=True) as server:
        point_teacher(tiny_project, server.base_url, max_tokens=3)
        proj = Project.load(tiny_project)
        with client(proj) as api:
            batch.submit(proj, texts, client=api)
        server.advance(60)
        result = run_cli("collect", str(tiny_project))
        assert result.returncode == 1, result.stderr
        assert "cut off at teacher.max_tokens (paid, no answer)" in result.stdout, result.stdout
        assert "5 answers were cut off at teacher.max_tokens (finish_reason length): raise teacher.max_tokens in graduate.yaml" in result.stderr, result.stderr
        rows = batch_rows(tiny_project)
        assert {r.status for r in rows} == {"error"} and all(r.cost_usd > 0 for r in rows)
        assert all(r.error.startswith("the answer was cut off at teacher.max_tokens (3) (finish_reason length)") for r in rows)
        spent = live_spend(proj.engine)
        assert spent == pytest.approx(sum(r.cost_usd for r in rows))
        # At temperature 0 the same request is cut off again: a second submit at the same settings
        # plans nothing and pays for nothing, and says once what to change (as `graduate label`).
        result = run_cli("submit", str(tiny_project), "--input", str(tiny_project / "comments.csv"), "--limit", "5")
        assert result.returncode == 1, result.stderr
        assert "not sent (cut off at these settings before)" in result.stdout and "│ planned into new batches" in result.stdout, result.stdout
        says = "5 requests were not sent: their answers at these same settings (temperature 0) were cut off at teacher.max_tokens (3) before"
        assert result.stderr.count(says) == 1 and "raise teacher.max_tokens" in result.stderr, result.stderr
        with client(proj) as api:
            again = batch.submit(proj, texts, client=api)
        assert (again.known_cut, again.planned, again.sent) == (5, 0, []), again
        assert "raise teacher.max_tokens" in (again.known_cut_advice or "")
        assert len(batch_rows(tiny_project)) == 5 and server.stats()["batches"] == 1
        assert live_spend(Project.load(tiny_project).engine) == pytest.approx(spent)
        point_teacher(tiny_project, server.base_url, max_tokens=4)  # another request: sent, as new rows; the paid ones stay
        proj = Project.load(tiny_project)
        with client(proj) as api:
            other = batch.submit(proj, texts, client=api)
            server.advance(60)
            batch.collect(proj, client=api)
    assert (other.known_cut, other.planned) == (0, 5), other
    assert len(batch_rows(tiny_project)) == 10
    assert live_spend(Project.load(tiny_project).engine) == pytest.approx(2 * spent)


def test_submit_input_leaves_out_texts_whose_item_left_its_data_file(tiny_project: Path, tmp_path: Path) -> None:
    """As `graduate label --input`: a row deleted from the data file is not sent again by a batch."""
    import csv

    from teacher.test_label_keys import write_items

    proj = Project.load(tiny_project)
    proj.load_data()
    with (tiny_project / "comments.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with (tiny_project / "comments.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[2:])
    proj.load_data()
    items = write_items(tmp_path / "in" / "items.csv", [("1", rows[0]["comment_text"]), ("2", rows[1]["comment_text"]), ("3", "a new text for the batch")])
    with fake_batch_server() as server:
        setup(tiny_project, server.base_url)
        result = run_cli("submit", str(tiny_project), "--input", str(items))
    assert result.returncode == 0, result.stderr
    assert "batch submit: 1 items" in result.stdout and "2 rows not labelled: their text is an item no longer in its data file" in result.stderr
