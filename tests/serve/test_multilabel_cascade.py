"""A cascade's middle tier on a multi-label task, over real HTTP: the middle tier is another graduate
server (a json_booleans student, whose chat answers carry each label's probability as logprobs),
the teacher too; what the middle tier says decides whether its answer stops an item."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from graduate.formats import answer_format, labelset
from graduate.pipeline.project import Project
from graduate.serve.app import create_app
from graduate.store.schema import teacher_calls
from servers.graduate_server import AUTH, KEY, ThreadServer, options
from test_multilabel_edges import make_project

LABELS = ["alpha", "beta", "gamma"]


def json_booleans_project(root: Path) -> Path:
    """test_multilabel_edges' project, its teacher answering in the json_booleans spelling."""
    project = make_project(root, LABELS, {"kind": "json_booleans"})
    fmt = answer_format(Project.load(project).spec.task.parse, LABELS)
    answers = [json.loads(line) for line in (project / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    for a in answers:
        message = a["response"]["body"]["choices"][0]["message"]
        said = [w.strip() for w in message["content"].split(",") if w.strip()]  # make_project's label_list answer
        message["content"] = fmt.render(labelset.encode(said, LABELS))[0]
    (project / "out.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers), encoding="utf-8")
    raw = yaml.safe_load((project / "graduate.yaml").read_text(encoding="utf-8"))
    raw["students"] = [{"kind": "tfidf-logreg"}]
    raw["prices"] = {"m": {"input_per_1m": 1.0, "output_per_1m": 1.0}}
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return project


def test_a_middle_tier_is_judged_by_its_least_sure_label_decision_not_its_likeliest_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The middle tier's answer stopped an item when the largest of its per-label probabilities
    reached serve.middle.threshold: an answer of no label (every P(label) near 0, so every decision
    sure) never did, and each went on to the teacher at a cost; an answer sure of one label and a
    coin toss on another did. Now, as the student's own cascade confidence, the least sure per-label
    decision of the answered set is judged."""
    monkeypatch.setenv("GRADUATE_API_KEYS", KEY)
    middle_dir = json_booleans_project(tmp_path / "middle")
    Project.load(middle_dir).run()
    project = tmp_path / "served"
    shutil.copytree(middle_dir, project)
    middle = Project.load(middle_dir)
    student, _ = middle.best_student()
    texts = ["item 901 filler", "w0a w0b item 902", "w0a w0b w1a item 903", "w1a w1b w2a w2b item 904"]
    probs = student.predict_proba(texts)
    sets = student.decide(probs)
    sure = [labelset.confidence(s, p, LABELS) for s, p in zip(sets, probs)]
    # the cases this test is about: sure of the empty set, and sure of alpha but not of beta
    assert sets[0] == labelset.NONE and sure[0] > 0.95 and max(probs[0]) < 0.5
    assert sets[2] == "alpha" and max(probs[2]) > 0.95 and sure[2] < 0.8
    with ThreadServer(create_app(middle, options(middle))) as tier:
        raw = yaml.safe_load((project / "graduate.yaml").read_text(encoding="utf-8"))
        raw["teacher"].update(base_url=f"{tier.url}/v1", api_key_env="GRADUATE_API_KEYS", max_retries=0)
        (project / "graduate.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
        proj = Project.load(project)
        opts = options(proj, mode="cascade", cascade_threshold=1.0, middle={"teacher": {"logprobs": True, "top_logprobs": 2}, "threshold": 0.9})
        with ThreadServer(create_app(proj, opts)) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            r = client.post("/v1/classify", json={"texts": texts})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["route"] for x in results] == ["middle" if s >= 0.9 else "teacher" for s in sure] == ["middle", "middle", "teacher", "middle"]
    assert [x["label"] for x in results] == sets  # the middle tier and the teacher are the same student here
    with proj.engine.connect() as conn:
        asked = conn.execute(select(teacher_calls.c.params).where(teacher_calls.c.source == "live")).scalars().all()
    # the teacher (asked without logprobs) was called for the one item the middle tier was unsure of
    assert len(asked) == 5 and sum(not params.get("logprobs") for params in asked) == 1  # 4 middle-tier calls, 1 teacher call


def test_a_middle_tiers_chat_answer_carries_the_middle_tiers_probabilities_as_logprobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chat answer the middle tier gave carried logprobs made from the served student's
    probabilities: the middle tier's set said `"alpha": true` while its token's logprob said the
    student's P(alpha), below that of `false` (the teacher's answers carry the teacher's own). They
    carry the middle tier's, read from its logprobs, so they agree with the answer they come with."""
    from graduate.teacher.prompt import render_messages

    monkeypatch.setenv("GRADUATE_API_KEYS", KEY)
    middle_dir = json_booleans_project(tmp_path / "middle")
    Project.load(middle_dir).run()
    project = tmp_path / "served"
    shutil.copytree(middle_dir, project, ignore=shutil.ignore_patterns(".graduate"))
    raw = yaml.safe_load((project / "graduate.yaml").read_text(encoding="utf-8"))
    raw["students"] = [{"kind": "majority"}]  # the same P(label) for every text: unsure of each
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    Project.load(project).run()
    middle = Project.load(middle_dir)
    student, _ = middle.best_student()
    text = "w0a w0b item 902"
    (p,) = student.predict_proba([text])
    fmt = answer_format(middle.spec.task.parse, LABELS)
    with ThreadServer(create_app(middle, options(middle))) as tier:
        raw["teacher"].update(base_url=f"{tier.url}/v1", api_key_env="GRADUATE_API_KEYS", max_retries=0)
        (project / "graduate.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
        proj = Project.load(project)
        served, _ = proj.best_student()
        (q,) = served.predict_proba([text])
        assert q[0] < 0.5 < p[0]  # the served student doubts alpha; the middle tier is sure of it
        opts = options(proj, mode="cascade", cascade_threshold=1.0, middle={"teacher": {"logprobs": True, "top_logprobs": 2}, "threshold": 0.9})
        with ThreadServer(create_app(proj, opts)) as server, httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            r = client.post("/v1/chat/completions", json={"model": "m", "messages": render_messages(proj.spec.teacher, text), "logprobs": True, "top_logprobs": 2})
    assert r.status_code == 200 and r.headers["x-graduate-route"] == "middle", r.text
    choice = r.json()["choices"][0]
    assert fmt.parse(choice["message"]["content"]).label == "alpha"
    read = fmt.label_probabilities(choice["logprobs"]["content"])
    assert read is not None and read == pytest.approx(dict(zip(LABELS, p.tolist())), abs=1e-6), (read, p)
