"""What the teacher said about each example: the stored answer to the exact request the spec's
teacher would send, parsed into a label and recorded in the labels table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import Engine

from graduate.data.examples import Example
from graduate.spec import TaskSpec, TeacherSpec
from graduate.store.calls import CallRow, answers, request_key
from graduate.store.db import insert_ignore, now
from graduate.store.schema import labels as labels_table
from graduate.formats.registry import answer_format
from graduate.formats.prompt import render_messages, request_params
from graduate.formats.logprobs import answer_distribution


@dataclass
class TeacherLabel:
    label: str | None
    call: CallRow | None
    error: str | None = None
    probs: dict[str, float] | None = None  # from the answer's logprobs, where the teacher gave them
    # The answer's other fields (a chain-of-thought's reason_innocent / reason_toxic), kept for
    # rationale-augmented students.
    rationale: dict[str, Any] | None = None


def teacher_key(teacher: TeacherSpec, text: str) -> str:
    return request_key(teacher.model, render_messages(teacher, text), request_params(teacher))


def teacher_labels(
    engine: Engine, task: TaskSpec, teacher: TeacherSpec, examples: Sequence[Example], *, record: bool = True
) -> dict[int, TeacherLabel]:
    """Per example id: the parsed teacher label, the call it came from, or why there is none."""
    keys = {ex.id: teacher_key(teacher, ex.text) for ex in examples}
    found = answers(engine, keys.values())
    out: dict[int, TeacherLabel] = {}
    rows = []
    created = now()
    for ex in examples:
        call = found.get(keys[ex.id])
        if call is None:
            out[ex.id] = TeacherLabel(None, None, "no teacher answer")
            continue
        parsed = answer_format(task.parse, task.labels).parse(call.content)
        probs = answer_distribution(call.response, task.parse, task.labels) if parsed.label is not None else None
        rationale = {k: v if isinstance(v, (str, int, float, bool)) or v is None else str(v) for k, v in parsed.fields.items()} or None
        out[ex.id] = TeacherLabel(parsed.label, call, parsed.error, probs, rationale)
        rows.append(
            {
                "example_id": ex.id,
                "kind": "teacher",
                "labeller": teacher.labeller,
                "label": parsed.label,
                "probs": probs,
                "call_id": call.id,
                "note": parsed.error,
                "rationale": rationale,
                "terms": teacher.terms.model_dump(mode="json"),
                "created_at": created,
            }
        )
    if record and rows:
        with engine.begin() as conn:
            insert_ignore(conn, labels_table, rows)
    return out
