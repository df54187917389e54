"""Deleting personal data for good: rows of an item everywhere (one transaction, with a record of
what was deleted that holds hashes and counts only), retention of raw requests and answers, and
compaction so deleted bytes leave the database file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

from sqlalchemy import Engine, String, cast, delete, or_, select, text, update

from graduate.store.db import insert_ignore, now
from graduate.store.schema import (
    dataset_items,
    examples,
    forgotten,
    forgotten_keys,
    label_changes,
    labels,
    predictions,
    teacher_calls,
    traffic,
)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


CHUNK = 500  # ids or keys in one IN (...)
FRAGMENTS = 50  # texts whose LIKE patterns go in one query: 400 ORs, under SQLite's expression depth of 1,000
LIKE_PREFIX = 1000  # characters: at most 8,000 bytes escaped, under SQLite's 50,000-byte limit on a LIKE pattern


def _like(fragment: str) -> str:
    """A LIKE pattern for ``fragment`` anywhere (its own % _ and \\ escaped). Only its first
    ``LIKE_PREFIX`` characters: the pattern narrows the rows, an exact test in Python decides, and
    SQLite refused the pattern of a long item's text (forgetting that item was an internal error)."""
    escaped = fragment[:LIKE_PREFIX].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass
class Targets:
    """The rows that hold an item or a matched text."""

    example_ids: list[int] = field(default_factory=list)
    text_hashes: list[str] = field(default_factory=list)
    call_ids: list[int] = field(default_factory=list)
    cache_keys: list[str] = field(default_factory=list)
    traffic_ids: list[int] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)  # id, source, external_id, tags, text
    # calls and traffic rows found by --match alone: no item's text or cache key ties them to a
    # deleted item (a common word matches every call's prompt); a few places the text was found
    loose_calls: int = 0
    loose_traffic: int = 0
    loose_snippets: list[str] = field(default_factory=list)


def _json_escaped(fragment: str) -> str:
    """How ``fragment`` reads inside a stored JSON value (non-ASCII and quotes escaped)."""
    return json.dumps(fragment, ensure_ascii=True)[1:-1]


def _holds(value: Any, fragments: list[str]) -> bool:
    """Whether any string inside ``value`` (a JSON value: keys too) holds a fragment."""
    if isinstance(value, str):
        return any(f in value for f in fragments)
    if isinstance(value, dict):
        return any(_holds(k, fragments) or _holds(v, fragments) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds(v, fragments) for v in value)
    return False


def _snippet(value: Any, fragment: str, context: int = 40) -> str | None:
    """The first string inside ``value`` holding ``fragment``, cut to the fragment and a little around it."""
    if isinstance(value, str):
        at = value.find(fragment)
        if at < 0:
            return None
        start, end = max(0, at - context), at + len(fragment) + context
        return ("…" if start else "") + " ".join(value[start:end].split()) + ("…" if end < len(value) else "")
    items = list(value.items()) if isinstance(value, dict) else list(value) if isinstance(value, list) else []
    for v in items:
        found = _snippet(v[1] if isinstance(value, dict) else v, fragment, context)
        if found:
            return found
    return None


def find_targets(engine: Engine, *, item: str | None, match: str | None, keys_for: Callable[[str], Iterable[str]]) -> Targets:
    """Examples with external id ``item`` (any source) or whose text holds ``match``; the calls
    keyed by their texts (``keys_for``) or holding the text in request, answer or error; the traffic
    rows holding it. SQL LIKE narrows the rows, an exact substring test in Python decides."""
    t = Targets()
    with engine.connect() as conn:
        stmt = select(examples.c.id, examples.c.source, examples.c.external_id, examples.c.tags, examples.c.text, examples.c.text_hash)
        if item is not None:
            stmt = stmt.where(examples.c.external_id == item)
        else:
            stmt = stmt.where(examples.c.text.like(_like(match or ""), escape="\\"))
        rows = [r for r in conn.execute(stmt).all() if item is not None or (match or "") in r.text]
        t.examples = [dict(r._mapping) for r in rows]
        t.example_ids = [r.id for r in rows]
        t.text_hashes = sorted({r.text_hash for r in rows})
        fragments = sorted({r.text for r in rows} | ({match} if match else set()))
        texts = sorted({r.text for r in rows})  # the items' own: what ties a call or traffic row to one
        tied: set[int] = set()
        keys = sorted({k for r in rows for k in keys_for(r.text)})
        # In chunks: one OR over every matched item's patterns passed SQLite's expression depth
        # (1,000) from about 120 items, an internal error (`--match @gmail.com` over a real pool).
        conds = [teacher_calls.c.cache_key.in_(keys[i : i + CHUNK]) for i in range(0, len(keys), CHUNK)]
        for i in range(0, len(fragments), FRAGMENTS):
            conds.append(
                or_(
                    *(
                        cond
                        for frag in fragments[i : i + FRAGMENTS]
                        for pat in {_like(frag), _like(_json_escaped(frag))}
                        for cond in (
                            cast(teacher_calls.c.request, String).like(pat, escape="\\"),
                            teacher_calls.c.content.like(pat, escape="\\"),
                            teacher_calls.c.error.like(pat, escape="\\"),
                            cast(teacher_calls.c.response, String).like(pat, escape="\\"),
                        )
                    )
                )
            )
        cols = (teacher_calls.c.id, teacher_calls.c.cache_key, teacher_calls.c.request, teacher_calls.c.response, teacher_calls.c.content, teacher_calls.c.error)
        key_set = set(keys)
        calls: dict[int, Any] = {}
        for cond in conds:
            for c in conn.execute(select(*cols).where(cond)).all():
                if c.id not in calls and (c.cache_key in key_set or any(_holds(v, fragments) for v in (c.request, c.response, c.content, c.error))):
                    calls[c.id] = c
        t.call_ids = sorted(calls)
        t.cache_keys = sorted({c.cache_key for c in calls.values()})
        loose = [c for c in calls.values() if c.cache_key not in key_set and not any(_holds(v, texts) for v in (c.request, c.response, c.content, c.error))]
        t.loose_calls = len(loose)
        tied = set(t.call_ids) - {c.id for c in loose}
        for c in loose[:200]:  # a few different places (one prompt matches every call alike)
            where = next((x for x in (_snippet(v, match or "") for v in (c.request, c.content, c.error, c.response)) if x), None)
            if where and where not in t.loose_snippets and len(t.loose_snippets) < 3:
                t.loose_snippets.append(where)
        tconds = [
            or_(*(cond for frag in fragments[i : i + FRAGMENTS] for pat in [_like(frag)] for cond in (traffic.c.text.like(pat, escape="\\"), traffic.c.answer.like(pat, escape="\\"), traffic.c.teacher_error.like(pat, escape="\\"))))
            for i in range(0, len(fragments), FRAGMENTS)
        ]
        tconds += [traffic.c.teacher_call_id.in_(t.call_ids[i : i + CHUNK]) for i in range(0, len(t.call_ids), CHUNK)]
        calls_set = set(t.call_ids)
        found: dict[int, Any] = {}
        for cond in tconds:
            for r in conn.execute(select(traffic.c.id, traffic.c.text, traffic.c.answer, traffic.c.teacher_error, traffic.c.teacher_call_id).where(cond)).all():
                if r.teacher_call_id in calls_set or any(_holds(v, fragments) for v in (r.text, r.answer, r.teacher_error)):
                    found[r.id] = r
        t.traffic_ids = sorted(found)
        t.loose_traffic = sum(
            1 for r in found.values() if r.teacher_call_id not in tied and not any(_holds(v, texts) for v in (r.text, r.answer, r.teacher_error))
        )
    return t


def delete_targets(engine: Engine, t: Targets, *, kind: str, what: str, files: dict[str, int] | None = None) -> dict[str, int]:
    """Delete every row of ``t`` in one transaction and record it (the hash of ``what``, counts);
    the items' text hashes and the calls' cache keys are kept so they never come back."""
    counts: dict[str, int] = {}
    created = now()
    with engine.begin() as conn:
        ex = t.example_ids
        calls = t.call_ids

        def gone(name: str, stmt: Any) -> None:
            counts[name] = counts.get(name, 0) + conn.execute(stmt).rowcount

        for start in range(0, max(len(ex), len(calls), 1), 500):
            e, c = ex[start : start + 500], calls[start : start + 500]
            if e or c:
                gone("labels", delete(labels).where(or_(labels.c.example_id.in_(e), labels.c.call_id.in_(c))))
            if e:
                gone("label_changes", delete(label_changes).where(label_changes.c.example_id.in_(e)))
                gone("dataset_items", delete(dataset_items).where(dataset_items.c.example_id.in_(e)))
                gone("predictions", delete(predictions).where(predictions.c.example_id.in_(e)))
                gone("examples", delete(examples).where(examples.c.id.in_(e)))
            if c:
                conn.execute(update(traffic).where(traffic.c.teacher_call_id.in_(c)).values(teacher_call_id=None))
                gone("teacher_calls", delete(teacher_calls).where(teacher_calls.c.id.in_(c)))
        for start in range(0, len(t.traffic_ids), 500):
            gone("traffic", delete(traffic).where(traffic.c.id.in_(t.traffic_ids[start : start + 500])))
        record = {**counts, **(files or {})}
        conn.execute(forgotten.insert().values(kind=kind, what_hash=sha256(what), counts=record, created_at=created))
        keys = [{"kind": "text_hash", "value": h} for h in t.text_hashes] + [{"kind": "cache_key", "value": k} for k in t.cache_keys]
        if keys:
            insert_ignore(conn, forgotten_keys, keys)
    return counts


def already_forgotten(engine: Engine, kind: str, what: str) -> bool:
    """Whether the deletion log holds ``what`` (an item id or a match) as forgotten."""
    with engine.connect() as conn:
        return conn.execute(select(forgotten.c.id).where(forgotten.c.kind == kind, forgotten.c.what_hash == sha256(what)).limit(1)).first() is not None


def forgotten_values(engine: Engine, kind: str) -> set[str]:
    """The text hashes (``text_hash``) or cache keys (``cache_key``) that may not come back."""
    with engine.connect() as conn:
        return set(conn.execute(select(forgotten_keys.c.value).where(forgotten_keys.c.kind == kind)).scalars())


def forget_log(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(forgotten).order_by(forgotten.c.id))]


@dataclass
class Purged:
    calls: int = 0
    traffic: int = 0


def purge_before(engine: Engine, cutoff: datetime, *, answer_as_label: Callable[[str | None], str | None]) -> Purged:
    """Raw requests and answers older than ``cutoff`` go: a call keeps its model, params, hashes,
    tokens, cost and latency, and its answer only as the parsed label written in the teacher's
    format (``answer_as_label``), so the label survives; a traffic row keeps its labels, figures
    and times, not its text or answer. Rows already purged are left alone."""
    out = Purged()
    with engine.begin() as conn:
        rows = conn.execute(
            select(teacher_calls.c.id, teacher_calls.c.model, teacher_calls.c.params, teacher_calls.c.content, teacher_calls.c.request).where(
                teacher_calls.c.created_at < cutoff
            )
        ).all()
        for r in rows:
            if isinstance(r.request, dict) and r.request.get("purged"):
                continue
            conn.execute(
                update(teacher_calls)
                .where(teacher_calls.c.id == r.id)
                .values(
                    request={"model": r.model, **(r.params or {}), "purged": True},
                    response=None,
                    error=None,
                    content=answer_as_label(r.content),
                )
            )
            out.calls += 1
        out.traffic = conn.execute(
            update(traffic)
            .where(traffic.c.created_at < cutoff, or_(traffic.c.text.is_not(None), traffic.c.answer.is_not(None), traffic.c.teacher_error.is_not(None)))
            .values(text=None, answer=None, teacher_error=None)
        ).rowcount
    return out


def compact(engine: Engine) -> None:
    """Make deleted bytes leave the files: SQLite checkpoints its WAL and rewrites the database
    (VACUUM, secure_delete for what comes later); PostgreSQL vacuums the tables."""
    dialect = engine.dialect.name
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if dialect == "sqlite":
            conn.execute(text("PRAGMA secure_delete = ON"))
            conn.execute(text("VACUUM"))
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        elif dialect == "postgresql":
            for table in ("examples", "labels", "label_changes", "dataset_items", "predictions", "teacher_calls", "traffic"):
                conn.execute(text(f"VACUUM {table}"))
