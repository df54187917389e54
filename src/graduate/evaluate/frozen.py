"""Frozen, versioned test sets: the first evaluation of a (name, version) stores its content hash;
a later one with another hash is refused until the spec declares a new version. Every result is
stored with the version and hash it was measured on."""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import Engine, func, select

from graduate.errors import TestSetChangedError
from graduate.evaluate.testsets import TestSet
from graduate.store.db import insert_ignore, now
from graduate.store.schema import eval_results, test_set_versions


def freeze_test_set(engine: Engine, test: TestSet, version: int) -> bool:
    """Record the set's hash for (name, version), or check it against the recorded one.

    Returns True when this call froze it. Raises TestSetChangedError when the set changed.
    """
    with engine.begin() as conn:
        row = conn.execute(
            select(test_set_versions.c.content_hash, test_set_versions.c.size).where(
                test_set_versions.c.name == test.name, test_set_versions.c.version == version
            )
        ).first()
        if row is not None:
            if row.content_hash != test.content_hash:
                newest = conn.execute(
                    select(func.max(test_set_versions.c.version)).where(test_set_versions.c.name == test.name)
                ).scalar_one()
                raise TestSetChangedError(
                    name=test.name,
                    version=version,
                    frozen_hash=row.content_hash,
                    frozen_size=row.size,
                    current_hash=test.content_hash,
                    current_size=len(test.examples),
                    next_version=max(newest, version) + 1,
                )
            return False
        counts: dict[str, int] = {}
        for g in test.gold:
            counts[g] = counts.get(g, 0) + 1
        return bool(
            insert_ignore(
                conn,
                test_set_versions,
                [
                    {
                        "name": test.name,
                        "version": version,
                        "content_hash": test.content_hash,
                        "size": len(test.examples),
                        "label_counts": counts,
                        "created_at": now(),
                    }
                ],
            )
        )


def frozen_versions(engine: Engine, name: str | None = None) -> list[dict[str, Any]]:
    stmt = select(*test_set_versions.c).order_by(test_set_versions.c.name, test_set_versions.c.version)
    if name is not None:
        stmt = stmt.where(test_set_versions.c.name == name)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def save_results(engine: Engine, run_id: str, rows: Iterable[dict[str, Any]]) -> int:
    """Store figures: each row has test_set, test_set_version, test_set_hash, predictor, metrics."""
    created = now()
    with engine.begin() as conn:
        return insert_ignore(conn, eval_results, [{"run_id": run_id, "created_at": created, **r} for r in rows])


def results_for(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(*eval_results.c).where(eval_results.c.run_id == run_id).order_by(eval_results.c.id))]
