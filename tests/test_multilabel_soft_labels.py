"""Soft labels of a ``label_list`` teacher end to end (issue 18): a live OpenAI-compatible teacher on
127.0.0.1 answers label sets with logprobs, `Project.label` stores its calls, and the training set
(and the labels table) carries each item's per-label probabilities read from the label starts."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI, Request
from servers.graduate_server import ThreadServer
from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.store.schema import labels as labels_table

LABELS = ["care", "loyalty", "purity"]
TOPICS = {"care": "protect help safe", "loyalty": "team nation flag"}
L = math.log


def _tok(text: str, p: float, alternatives: list[tuple[str, float]]) -> dict[str, Any]:
    return {"token": text, "logprob": L(p), "top_logprobs": [{"token": a, "logprob": L(q)} for a, q in alternatives]}


def teacher_app() -> FastAPI:
    """Answers the labels whose topic words the text holds, in the label_list spelling ("care,
    loyalty"), with logprobs when asked: at the first label 0.7 for it, 0.2 for purity and 0.1 for
    the none word; at a second label (" loyalty") 0.6 for it, 0.3 for purity and 0.1 for care."""
    app = FastAPI()
    app.state.bodies = []

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        body = await request.json()
        app.state.bodies.append(body)
        text = body["messages"][-1]["content"]
        chosen = [lab for lab, words in TOPICS.items() if words.split()[0] in text]
        tokens = [_tok(chosen[0], 0.7, [(chosen[0], 0.7), ("purity", 0.2), ("none", 0.1)])]
        if len(chosen) > 1:
            tokens += [_tok(",", 1.0, [(",", 1.0)]), _tok(" " + chosen[1], 0.6, [(" " + chosen[1], 0.6), (" purity", 0.3), (" care", 0.1)])]
        content = "".join(t["token"] for t in tokens)
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": tokens}
        return {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"], "choices": [choice],
                "usage": {"prompt_tokens": 10, "completion_tokens": len(tokens), "total_tokens": 10 + len(tokens)}}

    return app


def make_project(root: Path, base_url: str) -> tuple[Path, dict[str, list[str]]]:
    """12 pool items (care, loyalty, or both: the teacher answers them right) and 3 test items."""
    root.mkdir(parents=True)
    sets = {}
    rows = []
    for i in range(15):
        chosen = [["care"], ["loyalty"], ["care", "loyalty"]][i % 3]
        text = " ".join(TOPICS[lab] for lab in chosen) + f" comment {i}"
        sets[text] = chosen
        rows.append([f"i{i}", text, ";".join(chosen), "test" if i >= 12 else "pool"])
    with (root / "items.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "text", "labels", "subsets"], *rows])
    spec = {
        "task": {"name": "tags", "kind": "multi_label", "labels": LABELS, "parse": {"kind": "label_list", "none": "none"}},
        "teacher": {"model": "m", "base_url": base_url, "prompt": "Tags for: {text}", "temperature": 0, "logprobs": True, "top_logprobs": 3},
        "data": [{"name": "items", "path": "items.csv", "id_column": "id", "gold_column": "labels", "gold_separator": ";", "tags_column": "subsets"}],
        "train": {"source": "items", "tags": ["pool"]},
        "test_sets": [{"name": "test", "source": "items", "tags": ["test"]}],
        "students": [{"kind": "tfidf-logreg"}],
    }
    (root / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root, sets


def test_a_label_list_teachers_logprobs_become_per_label_soft_labels_in_the_training_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    app = teacher_app()
    with ThreadServer(app) as server:
        root, sets = make_project(tmp_path / "p", server.base_url)
        proj = Project.load(root)
        proj.load_data()
        pool = [text for text in sets if int(text.rsplit(" ", 1)[1]) < 12]
        proj.label(pool)
        dataset = proj.build_training_set()
    assert app.state.bodies and all(b["logprobs"] is True and b["top_logprobs"] == 3 for b in app.state.bodies)
    assert dataset.soft_labels is not None and len(dataset.examples) == 12
    expected = {
        ("care",): {"care": 0.7, "loyalty": 0.0, "purity": 0.2},
        ("loyalty",): {"care": 0.0, "loyalty": 0.7, "purity": 0.2},
        # care: 0.7 at the first start, 0.1 at the second; purity 0.2 and 0.3: each 1 - (1 - p1)(1 - p2)
        ("care", "loyalty"): {"care": 1 - 0.3 * 0.9, "loyalty": 0.6, "purity": 1 - 0.8 * 0.7},
    }
    for ex, label, soft in zip(dataset.examples, dataset.labels, dataset.soft_labels):
        chosen = tuple(sets[ex.text])
        assert label == ";".join(chosen) and soft == pytest.approx(expected[chosen]), (ex.text, label, soft)
    # the labels table keeps them with the teacher's labels
    with proj.engine.connect() as conn:
        stored = conn.execute(select(labels_table.c.label, labels_table.c.probs).where(labels_table.c.kind == "teacher")).all()
    proj.engine.dispose()
    assert len(stored) == 12 and all(probs == pytest.approx(expected[tuple(label.split(";"))]) for label, probs in stored)
