"""privacy.redact_teacher_input: item texts are stored and sent to the teacher redacted, on every
path (data files, graduate label, the proxy's forwarded prompts, the server's teacher calls), and the
answers still link to their items because every key is computed from the same redacted text."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from graduate.data.examples import select_examples
from graduate.data.teacher_labels import teacher_labels
from graduate.errors import InputDataError
from graduate.pipeline.project import Project
from graduate.store.schema import teacher_calls
from servers import fake_openai_server
from teacher.live_teacher import cli_env, point_teacher

pytest.importorskip("presidio_analyzer")

EMAIL = "kim.private77@example.com"


def plant(project: Path, row: int = 0) -> str:
    """Put an e-mail address into one comment of the project's data file; returns the row's id."""
    path = project / "comments.csv"
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    rows[row]["comment_text"] = f"write to {EMAIL}, you fool"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows[row]["id"]


def input_redaction(project: Path, on: bool = True) -> None:
    path = project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["privacy"] = {"redact_teacher_input": on}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_items_are_stored_and_sent_redacted_and_their_answers_link(tiny_project: Path) -> None:
    import subprocess
    import sys

    item = plant(tiny_project)
    input_redaction(tiny_project)
    proj = Project.load(tiny_project)
    proj.load_data()
    (ex,) = [e for e in select_examples(proj.engine) if e.external_id == item]
    assert ex.text == "write to <EMAIL_1>, you fool"
    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url)
        items = tiny_project / "new.csv"
        items.write_text(f'id,comment_text\n1,"mail {EMAIL} now"\n', encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "graduate", "label", str(tiny_project), "--input", str(items)], capture_output=True, text=True, timeout=120, env=cli_env())
        assert done.returncode == 0, done.stderr
    proj = Project.load(tiny_project)
    with proj.engine.connect() as conn:
        sent = [r.request["messages"][-1]["content"] for r in conn.execute(select(teacher_calls).where(teacher_calls.c.source == "live"))]
    assert len(sent) == 1 and "mail <EMAIL_1> now" in sent[0] and EMAIL not in sent[0]
    (labelled,) = select_examples(proj.engine, source="label:new")
    found = teacher_labels(proj.engine, proj.spec.task, proj.spec.teacher, [labelled], record=False)
    assert found[labelled.id].call is not None and found[labelled.id].label is not None  # the key of the redacted text finds the answer


def test_turning_it_on_after_loading_is_one_clear_line(tiny_project: Path) -> None:
    plant(tiny_project)
    Project.load(tiny_project).load_data()
    input_redaction(tiny_project)
    with pytest.raises(InputDataError, match="privacy.redact_teacher_input changed since it was stored") as err:
        Project.load(tiny_project).load_data()
    assert len(str(err.value).splitlines()) == 1


def test_the_proxy_forwards_redacted_prompts(tiny_project: Path) -> None:
    import openai

    from servers.graduate_server import ThreadServer, prompt_messages
    from servers.sse_openai import create_sse_app

    from graduate.serve.proxy import create_proxy_app

    input_redaction(tiny_project)
    proj = Project.load(tiny_project)
    upstream_app = create_sse_app()
    with ThreadServer(upstream_app) as upstream, ThreadServer(create_proxy_app(proj, upstream.base_url)) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="sk-x", max_retries=0)
        client.chat.completions.create(model="gpt-4-1106-preview", messages=prompt_messages(proj, f"hi {EMAIL}"), temperature=0)
    (body,) = upstream_app.state.bodies
    assert EMAIL not in str(body) and "hi <EMAIL_1>" in body["messages"][-1]["content"]
    with proj.engine.connect() as conn:
        (row,) = conn.execute(select(teacher_calls).where(teacher_calls.c.source == "proxy")).all()
    assert row.request["messages"] == body["messages"]  # stored (and keyed) as sent


def test_the_servers_teacher_sees_the_text_redacted(trained_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from servers.graduate_server import AUTH, KEY, ThreadServer, options, set_teacher

    from graduate.serve.app import create_app

    input_redaction(trained_copy)
    monkeypatch.setenv("GRADUATE_API_KEYS", KEY)
    with fake_openai_server() as teacher:
        set_teacher(trained_copy, base_url=teacher.base_url)
        proj = Project.load(trained_copy)
        with ThreadServer(create_app(proj, options(proj, mode="cascade", cascade_threshold=1.0))) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            r = client.post("/v1/classify", json={"texts": [f"ask {EMAIL} about it"]})
            assert r.status_code == 200 and r.json()["results"][0]["route"] == "teacher"
    with proj.engine.connect() as conn:
        (row,) = conn.execute(select(teacher_calls).where(teacher_calls.c.source == "live")).all()
    assert "ask <EMAIL_1> about it" in row.request["messages"][-1]["content"] and EMAIL not in str(row.request)
