"""privacy.redact on every path that writes the call log or the traffic log: `graduate label`,
`graduate import`, the server's traffic and teacher calls, the proxy. The stored rows hold
placeholders, never the planted values; answers still link to their items (keys hash the request
as sent) and `graduate status` counts what was replaced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.store.schema import teacher_calls, traffic
from servers import fake_openai_server
from teacher.live_teacher import cli_env, point_teacher

pytest.importorskip("presidio_analyzer")

EMAIL, CARD, IP = "jane.roe42@example.com", "4111 1111 1111 1111", "203.0.113.77"
PLANTED = (EMAIL, CARD, IP)


def redact_on(project: Path) -> None:
    path = project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["privacy"] = {"redact": True}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def stored_calls(project: Path) -> list:
    engine = Project.load(project).engine
    with engine.connect() as conn:
        rows = conn.execute(select(teacher_calls)).all()
    engine.dispose()
    return rows


def blob(rows: list) -> str:
    return json.dumps([[str(v) for v in r] for r in rows], ensure_ascii=False)


def graduate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, timeout=180, env=cli_env())


def test_label_stores_requests_redacted_and_still_answers_from_the_log(tiny_project: Path, tmp_path: Path) -> None:
    redact_on(tiny_project)
    items = tmp_path / "items.csv"
    items.write_text(
        "id,comment_text\n"
        f"1,\"mail me at {EMAIL}, you idiot\"\n"
        f"2,\"card {CARD} from {IP}, write {EMAIL}\"\n"
        "3,nothing personal here\n",
        encoding="utf-8",
    )
    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url)
        first = graduate("label", str(tiny_project), "--input", str(items))
        assert first.returncode == 0, first.stderr
        again = graduate("label", str(tiny_project), "--input", str(items))
        assert again.returncode == 0, again.stderr
    assert "answered from the call log" in again.stdout and " 3" in next(l for l in again.stdout.splitlines() if "answered from the call log" in l)
    rows = [r for r in stored_calls(tiny_project) if r.source == "live"]
    assert len(rows) == 3 and all(r.status == "ok" for r in rows)
    text = blob(rows)
    assert not any(v in text for v in PLANTED)
    contents = sorted(r.request["messages"][-1]["content"] for r in rows)
    assert any("<EMAIL_1>, you idiot" in c for c in contents)
    assert any("card <CARD_1> from <IP_1>, write <EMAIL_1>" in c for c in contents)
    assert sorted((r.redactions or {}).get("EMAIL", 0) for r in rows) == [0, 1, 1]
    status = graduate("status", str(tiny_project))
    assert status.returncode == 0, status.stderr
    assert "redacted in calls: <EMAIL_n>" in status.stdout and "privacy.redact" in status.stdout


def test_import_stores_calls_redacted_keyed_by_what_was_sent(tiny_project: Path, tmp_path: Path) -> None:
    """A recorded log with personal data in prompts and answers: stored redacted, imported once,
    and the item's label still found (its key is the hash of the request as sent)."""
    from graduate.data.csv_source import Item
    from graduate.data.examples import add_examples
    from graduate.data.examples import select_examples
    from graduate.data.teacher_labels import teacher_labels

    redact_on(tiny_project)
    proj = Project.load(tiny_project)
    text = f"call me, {EMAIL}"
    prompt = proj.spec.teacher.prompt.replace("{text}", text)
    request = {"custom_id": "x1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": proj.spec.teacher.model, "temperature": 0.0, "messages": [{"role": "user", "content": prompt}]}}
    answer = {"custom_id": "x1", "response": {"status_code": 200, "body": {"choices": [{"message": {"role": "assistant", "content": f'{{"is_bad": 0, "note": "{EMAIL}"}}'}}]}}, "error": None}
    (tmp_path / "in.jsonl").write_text(json.dumps(request) + "\n")
    (tmp_path / "out.jsonl").write_text(json.dumps(answer) + "\n")
    report = proj.import_batch(tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    assert report.added == 1
    (row,) = stored_calls(tiny_project)
    assert EMAIL not in blob([row]) and "call me, <EMAIL_1>" in row.request["messages"][0]["content"]
    assert '"note": "<EMAIL_1>"' in row.content and row.redactions == {"EMAIL": 3}  # the prompt, the response body, its content
    add_examples(proj.engine, "mine", [Item(external_id="1", text=text, tags=[])])
    examples = select_examples(proj.engine, source="mine")
    labels = teacher_labels(proj.engine, proj.spec.task, proj.spec.teacher, examples, record=False)
    assert labels[examples[0].id].label == "ok"


def _store_bytes(project: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (project / ".graduate").glob("graduate.db*"))


def test_the_proxy_stores_calls_and_items_redacted(tiny_project: Path) -> None:
    """Plain and streamed calls through the proxy: request, answer and the item it recovers from
    the prompt are stored with placeholders; the planted values are in no file of the store (WAL too)."""
    import openai

    from servers.graduate_server import ThreadServer, prompt_messages
    from servers.sse_openai import create_sse_app

    from graduate.serve.proxy import create_proxy_app
    from graduate.store.schema import examples

    redact_on(tiny_project)
    proj = Project.load(tiny_project)
    with ThreadServer(create_sse_app(api_key="sk-up")) as upstream, ThreadServer(create_proxy_app(proj, upstream.base_url)) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="sk-up", max_retries=0)
        client.chat.completions.create(model="gpt-4-1106-preview", messages=prompt_messages(proj, f"you moron, {EMAIL}"), temperature=0)
        stream = client.chat.completions.create(model="gpt-4-1106-preview", messages=prompt_messages(proj, f"card {CARD} from {IP}"), stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    rows = [r for r in stored_calls(tiny_project) if r.source == "proxy"]
    assert len(rows) == 2 and [r.status for r in rows] == ["ok", "ok"]
    assert "you moron, <EMAIL_1>" in rows[0].request["messages"][-1]["content"] and rows[0].redactions == {"EMAIL": 1}
    assert "card <CARD_1> from <IP_1>" in rows[1].request["messages"][-1]["content"]
    with proj.engine.connect() as conn:
        items = conn.execute(select(examples.c.text).where(examples.c.source == "proxy")).scalars().all()
    assert sorted(items) == sorted(["you moron, <EMAIL_1>", "card <CARD_1> from <IP_1>"])
    proj.engine.dispose()
    stored = _store_bytes(tiny_project)
    assert not any(v.encode() in stored for v in PLANTED)


def test_the_servers_traffic_log_is_redacted_by_its_writer(trained_copy: Path) -> None:
    """/v1/classify with personal data: the traffic rows hold placeholders and count them; the
    response the caller gets is untouched (redaction is for what is stored)."""
    import httpx

    from servers.graduate_server import AUTH, KEY, ThreadServer, options

    from graduate.serve.app import create_app

    redact_on(trained_copy)
    proj = Project.load(trained_copy)
    os.environ["GRADUATE_API_KEYS"] = KEY
    try:
        with ThreadServer(create_app(proj, options(proj))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            r = client.post("/v1/classify", json={"texts": [f"write to {EMAIL} or {EMAIL}", "plain words"]})
            assert r.status_code == 200, r.text
    finally:
        os.environ.pop("GRADUATE_API_KEYS", None)
    with proj.engine.connect() as conn:
        rows = conn.execute(select(traffic.c.text, traffic.c.redactions).order_by(traffic.c.item)).all()
    assert [r.text for r in rows] == ["write to <EMAIL_1> or <EMAIL_1>", "plain words"]
    assert [r.redactions for r in rows] == [{"EMAIL": 2}, None]
    html = proj.report().read_text()
    assert '<table id="redactions">' in html and "<td>traffic</td><td><code>&lt;EMAIL_n&gt;</code></td><td>2</td>" in html
    proj.engine.dispose()
    assert EMAIL.encode() not in _store_bytes(trained_copy)


def test_the_servers_teacher_calls_never_store_the_api_key(trained_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16's key point for the server: a cascade that sends every item to a teacher requiring a
    key (from the environment) leaves it in no file of the project (store, WAL, spill files, report)."""
    import httpx

    from servers.graduate_server import AUTH, KEY, ThreadServer, options, set_teacher

    from graduate.serve.app import create_app

    key = "sk-serve-never-store-91be0c"
    monkeypatch.setenv("GRADUATE_API_KEYS", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with fake_openai_server(api_key=key) as teacher:
        set_teacher(trained_copy, base_url=teacher.base_url)
        proj = Project.load(trained_copy)
        with ThreadServer(create_app(proj, options(proj, mode="cascade", cascade_threshold=1.0))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            results = client.post("/v1/classify", json={"texts": ["a novel text for the teacher", "you stupid jerk, new"]}).json()["results"]
    assert [r["route"] for r in results] == ["teacher", "teacher"]
    assert len([r for r in stored_calls(trained_copy) if r.source == "live"]) == 2
    proj.report()
    proj.engine.dispose()
    leaked = [str(p) for p in trained_copy.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert leaked == []
