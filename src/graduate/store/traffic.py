"""The traffic log: one row per item ``graduate serve`` answered (see ``schema.traffic``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Engine, func, select

from graduate.store.schema import traffic

TRAFFIC_COLUMNS = tuple(c.name for c in traffic.c if c.name != "id")


def write_traffic(engine: Engine, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows in one transaction; returns how many."""
    if not rows:
        return 0
    with engine.begin() as conn:
        conn.execute(traffic.insert(), list(rows))
    return len(rows)


def update_traffic(engine: Engine, updates: Sequence[tuple[str, int, dict[str, Any]]]) -> int:
    """Fill in columns of rows written before, each named by (request id, item), in one
    transaction (a shadow item's teacher side, once its comparison settles); returns how many
    rows matched."""
    if not updates:
        return 0
    matched = 0
    with engine.begin() as conn:
        for request_id, item, values in updates:
            matched += conn.execute(traffic.update().where(traffic.c.request_id == request_id, traffic.c.item == item).values(**values)).rowcount
    return matched


@dataclass
class TrafficRow:
    request_id: str
    item: int
    created_at: datetime
    endpoint: str
    mode: str
    route: str
    reason: str
    status: int
    text: str | None
    label: str | None
    student_label: str | None
    confidence: float | None
    teacher_label: str | None
    agree: bool | None
    shadow: bool
    latency_ms: float
    teacher_error: str | None


_READ = [
    traffic.c.request_id,
    traffic.c.item,
    traffic.c.created_at,
    traffic.c.endpoint,
    traffic.c.mode,
    traffic.c.route,
    traffic.c.reason,
    traffic.c.status,
    traffic.c.text,
    traffic.c.label,
    traffic.c.student_label,
    traffic.c.confidence,
    traffic.c.teacher_label,
    traffic.c.agree,
    traffic.c.shadow,
    traffic.c.latency_ms,
    traffic.c.teacher_error,
]


def read_traffic(engine: Engine, *, since: datetime | None = None, until: datetime | None = None) -> list[TrafficRow]:
    """Rows in arrival order, optionally within [since, until)."""
    stmt = select(*_READ).order_by(traffic.c.created_at, traffic.c.id)
    if since is not None:
        stmt = stmt.where(traffic.c.created_at >= since)
    if until is not None:
        stmt = stmt.where(traffic.c.created_at < until)
    with engine.connect() as conn:
        return [TrafficRow(*row) for row in conn.execute(stmt)]


def traffic_from(engine: Engine, since: datetime) -> tuple[int, datetime | None]:
    """How many rows are stamped at or after ``since``, and the latest stamp (None when none is)."""
    with engine.connect() as conn:
        n, latest = conn.execute(select(func.count(), func.max(traffic.c.created_at)).where(traffic.c.created_at >= since)).one()
    return int(n), latest


def count_traffic(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(traffic)).scalar_one())


def request_ids(engine: Engine) -> set[str]:
    """Every request id in the log (tests and benchmarks check that none went missing)."""
    with engine.connect() as conn:
        return set(conn.execute(select(traffic.c.request_id).distinct()).scalars())


def find_traffic(engine: Engine, request_id: str, item: int) -> TrafficRow | None:
    """The row of one answered item (the request id the server sent back, and the item's index)."""
    with engine.connect() as conn:
        row = conn.execute(select(*_READ).where(traffic.c.request_id == request_id, traffic.c.item == item).limit(1)).first()
    return TrafficRow(*row) if row is not None else None


def shadow_disagreements(engine: Engine, limit: int | None = None) -> list[TrafficRow]:
    """Items the teacher answered beside the student (shadow, cascade, canary) with another label,
    newest first."""
    stmt = select(*_READ).where(traffic.c.agree.is_(False), traffic.c.text.is_not(None)).order_by(traffic.c.created_at.desc(), traffic.c.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        return [TrafficRow(*r) for r in conn.execute(stmt)]
