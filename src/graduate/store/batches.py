"""Batch API batches and their lines in the store.

A batch's lines are call-log rows with source ``batch``: written ``pending`` in the same
transaction as the batch row, before the file is uploaded; completed ``ok`` or ``error`` when the
batch is collected, or set ``unsent`` when the batch ended without answering them (expired,
cancelled, failed), so that the next submit sends them again, in place. The custom_id of a line
is its cache key, unique within a batch because a batch holds each request once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import Connection, Engine, and_, bindparam, func, select, update

from graduate.store.db import now
from graduate.store.schema import batches, teacher_calls

CHUNK = 500


@dataclass
class BatchRow:
    id: int
    uid: str
    state: str
    model: str
    input_path: str
    requests: int
    bytes: int
    reserved_usd: float
    input_file_id: str | None
    remote_id: str | None
    remote_status: str | None
    output_file_id: str | None
    error_file_id: str | None
    counts: dict[str, int] | None
    cost_usd: float | None
    error: str | None
    created_at: datetime
    updated_at: datetime


_COLS = [getattr(batches.c, f) for f in BatchRow.__dataclass_fields__]


def list_batches(engine: Engine, *, open_only: bool = False) -> list[BatchRow]:
    stmt = select(*_COLS).order_by(batches.c.id)
    if open_only:
        stmt = stmt.where(batches.c.state != "collected")
    with engine.connect() as conn:
        return [BatchRow(*r) for r in conn.execute(stmt)]


def find_batch(engine: Engine, ref: str) -> BatchRow | None:
    """A batch of this project by our uid or the provider's id."""
    with engine.connect() as conn:
        row = conn.execute(select(*_COLS).where((batches.c.uid == ref) | (batches.c.remote_id == ref))).first()
    return BatchRow(*row) if row else None


def update_batch(engine: Engine, batch_id: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(batches).where(batches.c.id == batch_id).values(updated_at=now(), **values))


@dataclass
class KeyState:
    """What the call log already holds for the requests a submit plans."""

    answered: set[str]  # a successful answer exists: not sent again
    held: set[str]  # pending in a batch not yet collected: not sent twice
    reusable: dict[str, int]  # a batch row that failed or went unsent: sent again in place
    next_index: dict[str, int]  # the next free sample index of keys that have rows


def key_state(engine: Engine, keys: Iterable[str]) -> KeyState:
    keys = list(dict.fromkeys(keys))
    state = KeyState(set(), set(), {}, {})
    with engine.connect() as conn:
        for i in range(0, len(keys), CHUNK):
            chunk = keys[i : i + CHUNK]
            rows = conn.execute(
                select(
                    teacher_calls.c.id, teacher_calls.c.cache_key, teacher_calls.c.sample_index, teacher_calls.c.status, teacher_calls.c.source,
                    teacher_calls.c.cost_usd,
                    # what holds_answer reads, computed by the database: not every stored completion loaded
                    teacher_calls.c.content.is_not(None).label("has_text"),
                    teacher_calls.c.response["choices"][0]["finish_reason"].as_string().label("finish_reason"),
                )
                .where(teacher_calls.c.cache_key.in_(chunk))
                .order_by(teacher_calls.c.cache_key, teacher_calls.c.sample_index)
            )
            for r in rows:
                state.next_index[r.cache_key] = max(state.next_index.get(r.cache_key, 0), r.sample_index + 1)
                if r.status == "ok":
                    if r.has_text and r.finish_reason != "length":  # not an older version's cut answer, stored as ok (holds_answer)
                        state.answered.add(r.cache_key)
                elif r.source == "batch" and r.status == "pending":
                    state.held.add(r.cache_key)
                elif r.source == "batch" and not r.cost_usd:  # a paid failure (an answer cut off) keeps its row and cost
                    state.reusable.setdefault(r.cache_key, int(r.id))
    state.held -= state.answered
    return state


def insert_batch(conn: Connection, *, uid: str, model: str, input_path: str) -> int:
    """A planned batch, sized by ``size_batch`` once its lines are written (same transaction)."""
    stamp = now()
    result = conn.execute(
        batches.insert().values(
            uid=uid, state="planned", model=model, input_path=input_path, requests=0, bytes=0, reserved_usd=0.0, created_at=stamp, updated_at=stamp
        )
    )
    return int(result.inserted_primary_key[0])


def size_batch(conn: Connection, batch_id: int, *, requests: int, size: int, reserved_usd: float) -> None:
    conn.execute(update(batches).where(batches.c.id == batch_id).values(requests=requests, bytes=size, reserved_usd=reserved_usd))


def add_lines(conn: Connection, batch_id: int, lines: list[dict[str, Any]]) -> None:
    """Pending rows for a batch's lines: ``lines`` carry cache_key, sample_index, model, request,
    params, redactions, and ``reuse`` (the id of a failed or unsent batch row to send again)."""
    stamp = now()
    fresh = [
        {
            "cache_key": ln["cache_key"], "sample_index": ln["sample_index"], "model": ln["model"], "request": ln["request"],
            "params": ln["params"], "redactions": ln["redactions"], "status": "pending", "source": "batch", "external_id": ln["cache_key"],
            "batch_id": batch_id, "attempts": 0, "tokens_estimated": False, "created_at": stamp,
        }
        for ln in lines
        if ln.get("reuse") is None
    ]
    again = [{"_id": ln["reuse"], "_request": ln["request"], "_redactions": ln["redactions"]} for ln in lines if ln.get("reuse") is not None]
    if fresh:
        conn.execute(teacher_calls.insert(), fresh)
    if again:
        conn.execute(
            update(teacher_calls)
            .where(teacher_calls.c.id == bindparam("_id"))
            .values(status="pending", error=None, batch_id=batch_id, request=bindparam("_request"), redactions=bindparam("_redactions")),
            again,
        )


def pending_lines(conn: Connection, batch_id: int, custom_ids: list[str]) -> dict[str, int]:
    """custom_id -> row id of this batch's lines still pending."""
    out: dict[str, int] = {}
    for i in range(0, len(custom_ids), CHUNK):
        chunk = custom_ids[i : i + CHUNK]
        rows = conn.execute(
            select(teacher_calls.c.external_id, teacher_calls.c.id).where(
                and_(teacher_calls.c.batch_id == batch_id, teacher_calls.c.status == "pending", teacher_calls.c.external_id.in_(chunk))
            )
        )
        out.update({r.external_id: int(r.id) for r in rows})
    return out


def finish_lines(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Complete lines: each dict has _id, status, content, response, error, input_tokens,
    output_tokens, tokens_estimated, cost_usd, redactions."""
    if not rows:
        return
    conn.execute(
        update(teacher_calls)
        .where(teacher_calls.c.id == bindparam("_id"))
        .values(
            status=bindparam("_status"),
            content=bindparam("_content"),
            response=bindparam("_response"),
            error=bindparam("_error"),
            input_tokens=bindparam("_input_tokens"),
            output_tokens=bindparam("_output_tokens"),
            tokens_estimated=bindparam("_tokens_estimated"),
            cost_usd=bindparam("_cost_usd"),
            redactions=bindparam("_redactions"),
            attempts=teacher_calls.c.attempts + 1,
            completed_at=now(),
        ),
        [{f"_{k}" if not k.startswith("_") else k: v for k, v in r.items()} for r in rows],
    )


def unsend_rest(conn: Connection, batch_id: int, reason: str) -> int:
    """Lines of the batch still pending go back to unsent (nothing was paid for them)."""
    result = conn.execute(
        update(teacher_calls)
        .where(and_(teacher_calls.c.batch_id == batch_id, teacher_calls.c.status == "pending"))
        .values(status="unsent", error=reason)
    )
    return int(result.rowcount or 0)


def line_counts(engine: Engine, batch_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(teacher_calls.c.status, func.count()).where(teacher_calls.c.batch_id == batch_id).group_by(teacher_calls.c.status)
        ).all()
    return {status: int(n) for status, n in rows}


def close_batch(conn: Connection, batch_id: int, **values: Any) -> None:
    conn.execute(update(batches).where(batches.c.id == batch_id).values(state="collected", updated_at=now(), **values))
