"""Multi-class projects built from tests/fixtures/topics (product title -> category), with labels
in a non-alphabetical order and a recorded teacher whose answers are a known function of gold, so
tests can check every figure against hand counts.

The recorded teacher (imported as a `pairs` log, logprobs included):
- answers gold, except items whose id (hex) is divisible by 7: then the next label in the spec's
  order (a wrong answer);
- items whose id is divisible by 31 get an unparseable answer ("not sure");
- its soft label puts 0.7 on its answer, 0.2 on the gold label when wrong (else on the next
  label) and 0.1 on the label after that.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MODEL = "gpt-4-0613"
PROMPT = "Which category is this product in: {labels}? Answer with JSON: {{\"category\": \"...\"}}.\n\nTitle: {text}"


def teacher_answer(item_id: str, gold: str, labels: list[str]) -> tuple[str | None, str]:
    """(the label the recorded teacher answers or None when unparseable, its raw answer text)."""
    n = int(item_id, 16)
    if n % 31 == 0:
        return None, "not sure"
    answer = labels[(labels.index(gold) + 1) % len(labels)] if n % 7 == 0 else gold
    return answer, json.dumps({"category": answer})


def items(labels: list[str]) -> list[dict[str, str]]:
    with (FIXTURES / "topics" / "items.csv").open(newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["category"] in labels]


def _response(raw: str, answer: str | None, gold: str, labels: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": raw}, "finish_reason": "stop"}],
    }
    if answer is not None:
        second = gold if answer != gold else labels[(labels.index(answer) + 1) % len(labels)]
        third = next(lab for lab in labels[labels.index(second) + 1 :] + labels if lab not in (answer, second))
        top = [{"token": answer, "logprob": math.log(0.7)}, {"token": second, "logprob": math.log(0.2)}, {"token": third, "logprob": math.log(0.1)}]
        tokens = ['{"', "category", '":', ' "', answer, '"}']
        body["choices"][0]["logprobs"] = {
            "content": [{"token": t, "logprob": 0.0 if t != answer else math.log(0.7), "top_logprobs": top if t == answer else []} for t in tokens]
        }
    return body


def make_project(directory: Path, labels: list[str], *, students: list[dict[str, Any]] | None = None, gates: list[str] | None = None) -> Path:
    """A project folder: items.csv, teacher.jsonl (the recorded teacher) and graduate.yaml."""
    from graduate.spec import parse_spec
    from graduate.teacher.base import ChatRequest
    from graduate.teacher.prompt import render_messages, request_params

    directory.mkdir(parents=True, exist_ok=True)
    rows = items(labels)
    with (directory / "items.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "title", "category", "subsets"])
        w.writeheader()
        w.writerows(rows)
    prompt = PROMPT.replace("{labels}", ", ".join(labels)).replace("{{", "{").replace("}}", "}")
    raw = {
        "task": {"name": "product-category", "text_column": "title", "labels": labels, "parse": {"kind": "json_key", "key": "category"}},
        "teacher": {"model": MODEL, "prompt": prompt, "temperature": 0, "logprobs": True, "top_logprobs": 5, "budget_usd": 1.0},
        "prices": {MODEL: {"input_per_1m": 30.0, "output_per_1m": 60.0}},
        "data": [{"name": "products", "path": "items.csv", "id_column": "id", "gold_column": "category", "tags_column": "subsets"}],
        "teacher_logs": [{"format": "pairs", "input": "teacher.jsonl"}],
        "train": {"source": "products", "tags": ["pool"]},
        "test_sets": [{"name": "test", "source": "products", "tags": ["test"]}],
        "students": students or [{"kind": "majority"}, {"kind": "tfidf-logreg"}],
        "evaluation": {"latency_items": 20, "min_slice_size": 3},
        "gates": gates if gates is not None else ["student.accuracy >= 0.8 * teacher.accuracy on test", "student.cost_per_1k <= 0.001 * teacher.cost_per_1k"],
    }
    spec = parse_spec(raw)
    with (directory / "teacher.jsonl").open("w", encoding="utf-8") as f:
        for r in rows:
            answer, text = teacher_answer(r["id"], r["category"], labels)
            request = ChatRequest(MODEL, render_messages(spec.teacher, r["title"]), request_params(spec.teacher)).body()
            f.write(json.dumps({"id": r["id"], "request": request, "response": _response(text, answer, r["category"], labels)}) + "\n")
    (directory / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    return directory


def hand_counts(labels: list[str], subset: str = "test") -> dict[str, Any]:
    """The recorded teacher's figures on a subset, computed from the fixture alone."""
    rows = [r for r in items(labels) if r["subsets"] == subset]
    answered = [(r["category"], teacher_answer(r["id"], r["category"], labels)[0]) for r in rows]
    parsed = [(g, a) for g, a in answered if a is not None]
    per_label = {}
    for lab in labels:
        tp = sum(g == lab and a == lab for g, a in parsed)
        fp = sum(g != lab and a == lab for g, a in parsed)
        fn = sum(g == lab and a != lab for g, a in parsed)
        per_label[lab] = {"tp": tp, "fp": fp, "fn": fn, "support": sum(g == lab for g, _ in parsed)}
    return {
        "items": len(rows),
        "answered": len(parsed),
        "correct": sum(g == a for g, a in parsed),
        "accuracy": sum(g == a for g, a in parsed) / len(parsed),
        "per_label": per_label,
    }
