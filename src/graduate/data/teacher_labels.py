"""What the teacher said about each example: the stored answer to the exact request the spec's
teacher would send, parsed into a label and recorded in the labels table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import Engine, select, update

from graduate.data.examples import Example
from graduate.spec import TaskSpec, TeacherSpec
from graduate.store.calls import CallRow, answers, request_key
from graduate.store.db import insert_ignore, now
from graduate.store.schema import label_changes, labels as labels_table, teacher_calls
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
            _record(conn, rows, {ex.id: keys[ex.id] for ex in examples}, teacher.labeller)
    return out


def _record(conn: Any, rows: list[dict[str, Any]], keys: dict[int, str], labeller: str) -> None:
    """Store each answer as the example's label of ``labeller``. A stored label that answered another
    request (the teacher's temperature, max_tokens or other parameters changed since: a new cache
    key, asked again) is replaced by this one, the old value kept in ``label_changes``; one that
    answered this request stays, unless its call is no longer the request's answer (an answer cut off
    at max_tokens that an older version stored as ok: the request was asked again)."""
    rows = list({r["example_id"]: r for r in rows}.values())  # a text given twice is one example
    ids = [r["example_id"] for r in rows]
    stored: dict[int, Any] = {}
    for i in range(0, len(ids), 500):
        stmt = (
            select(labels_table.c.id, labels_table.c.example_id, labels_table.c.label, labels_table.c.note, labels_table.c.call_id, teacher_calls.c.cache_key)
            .outerjoin(teacher_calls, teacher_calls.c.id == labels_table.c.call_id)
            .where(labels_table.c.example_id.in_(ids[i : i + 500]), labels_table.c.labeller == labeller)
        )
        stored.update((r.example_id, r) for r in conn.execute(stmt))
    insert_ignore(conn, labels_table, [r for r in rows if r["example_id"] not in stored])
    for r in rows:
        old = stored.get(r["example_id"])
        same_request = old is not None and old.cache_key == keys[r["example_id"]]
        if old is None or (same_request and old.call_id == r["call_id"]):
            continue
        conn.execute(update(labels_table).where(labels_table.c.id == old.id).values({k: v for k, v in r.items() if k not in ("example_id", "kind", "labeller")}))
        if old.label != r["label"]:
            conn.execute(
                label_changes.insert().values(
                    example_id=r["example_id"], labeller=labeller, old_label=old.label, new_label=r["label"], old_note=old.note,
                    origin=(
                        "the answer it came from was cut off or held no text (stored as ok by an older version): the request's answer now replaces it"
                        if same_request
                        else "teacher request changed (temperature, max_tokens or other parameters): the answer to the current request replaces it"
                    ),
                    created_at=r["created_at"],
                )
            )  # fmt: skip


def owns_labels(main: TeacherSpec, teacher: TeacherSpec) -> bool:
    """Whether ``teacher``'s answers may be stored as its labeller's labels: a configuration with the
    main teacher's labeller but other request parameters would replace the main teacher's labels with
    its own, and back on the next build. An audit config at other sampling parameters is named apart
    (``TeacherSpec.sampling_params``), so this is a safeguard for any other such pair."""
    return teacher.labeller != main.labeller or request_params(teacher) == request_params(main)
