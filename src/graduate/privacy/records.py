"""What graduate stores, redacted: a teacher call's request and answer, an imported call, a traffic
row. Each is one record: a value in the request and in its answer gets the same placeholder."""

from __future__ import annotations

import dataclasses
from typing import Any

from graduate.privacy.redact import Redactor
from graduate.store.calls import CallRecord


@dataclasses.dataclass
class StoredAnswer:
    content: str | None
    response: dict[str, Any] | None
    error: str | None
    redactions: dict[str, int] | None


def request(redactor: Redactor | None, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int] | None]:
    """A chat request body as stored, and what was replaced in it."""
    if redactor is None:
        return body, None
    rec = redactor.record()
    return rec.json(body), rec.tally()


def answer(
    redactor: Redactor | None, body: dict[str, Any] | None, *, content: str | None = None, response: dict[str, Any] | None = None, error: str | None = None
) -> StoredAnswer:
    """A call's answer as stored; ``body``: its request as sent (numbers the placeholders first,
    so a value from the request keeps its placeholder in the answer)."""
    if redactor is None:
        return StoredAnswer(content, response, error, None)
    rec = redactor.record(body)
    return StoredAnswer(rec.text(content), rec.json(response), rec.text(error), rec.tally())


def call_record(redactor: Redactor, record: CallRecord) -> CallRecord:
    """An imported call as stored: messages, response, content and error redacted as one record."""
    rec = redactor.record()
    return dataclasses.replace(
        record,
        messages=rec.json(record.messages),
        response=rec.json(record.response),
        content=rec.text(record.content),
        error=rec.text(record.error),
        redactions=rec.tally(),
    )


TRAFFIC_TEXT = ("text", "answer", "teacher_error")


def traffic_row(redactor: Redactor, row: dict[str, Any]) -> dict[str, Any]:
    """A traffic row as stored: its text, answer and teacher error redacted as one record (a row
    already carrying ``redactions`` is left as it is)."""
    if "redactions" in row:
        return row
    rec = redactor.record()
    out = {**row, **{k: rec.text(row.get(k)) for k in TRAFFIC_TEXT if k in row}}
    out["redactions"] = rec.tally()
    return out
