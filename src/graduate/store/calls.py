"""The teacher call log: every call, live or imported, keyed for caching.

A live call's life: ``begin_call`` writes it as ``pending`` (committed before the request is
sent), ``finish_call`` completes it as ``ok`` or ``error``. A crash in between leaves a pending
row that the next run re-sends in place; a finished row is never sent again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

from sqlalchemy import Engine, and_, func, select, update

from graduate.store.db import insert_ignore, now, write_lock
from graduate.store.schema import forgotten_keys, imports, teacher_calls


def _normalise(value: Any) -> Any:
    # 0 and 0.0 must give the same key: a spec's `temperature: 0` and a log's 0.0 are one request.
    # Integral floats become ints (not the reverse), so large ints such as seeds stay exact.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value


def request_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """The cache key of a chat request: sha256 over model, messages and sampling parameters."""
    payload = {
        "model": model,
        "messages": [{k: v for k, v in m.items() if v is not None} for m in messages],
        "params": _normalise({k: v for k, v in params.items() if v is not None}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class CallRecord:
    """One call to write into the log, as an importer reads it."""

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    response: dict[str, Any] | None
    content: str | None
    status: str  # ok | error
    error: str | None = None
    external_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    tokens_estimated: bool = False
    latency_ms: float | None = None
    cost_usd: float | None = None
    redactions: dict[str, int] | None = None  # what privacy.redact replaced in it (graduate.privacy)

    @property
    def cache_key(self) -> str:
        return request_key(self.model, self.messages, self.params)

    @property
    def import_key(self) -> str:
        blob = json.dumps(
            [self.external_id, self.model, self.messages, self.params, self.response, self.error],
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


def file_imported(engine: Engine, sha256: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(imports.c.id).where(imports.c.sha256 == sha256)).first() is not None


def import_calls(
    engine: Engine,
    records: Iterable[CallRecord],
    *,
    kind: str,
    path: str,
    sha256: str,
    redact: Callable[[CallRecord], CallRecord] | None = None,
    record_file: bool = True,
) -> tuple[int, int]:
    """Write imported calls in one transaction; rows already imported are skipped. With
    ``record_file`` the file's hash is stored too, so importing it again reads nothing.

    ``redact`` (privacy.redact) gives the record as it is stored; its cache and import keys stay
    those of the record as read (hashes stay, the text does not), so a redacted log still answers
    the same requests and a re-import still adds nothing.

    Identical requests get successive sample indexes, so repeated answers (teacher noise) are kept.
    Returns (added, skipped). A crash mid-way rolls back whole: re-running imports everything once.
    """
    records = list(records)
    total = len(records)
    created = now()
    with engine.begin() as conn:
        write_lock(conn)  # two imports at once: the second waits, then reads the first's rows and sample indexes
        # calls of items forgotten with `graduate privacy forget` never come back
        gone = set(conn.execute(select(forgotten_keys.c.value).where(forgotten_keys.c.kind == "cache_key")).scalars())
        if gone:
            records = [r for r in records if r.cache_key not in gone]
        rows: list[dict[str, Any]] = []
        seen_import: set[str] = set()
        by_import_key = {r.import_key: r for r in records}
        existing_imports: set[str] = set()
        keys = list(by_import_key)
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            existing_imports.update(
                conn.execute(select(teacher_calls.c.import_key).where(teacher_calls.c.import_key.in_(chunk))).scalars()
            )
        cache_keys = {r.cache_key for r in records}
        next_index: dict[str, int] = {}
        ck = list(cache_keys)
        for i in range(0, len(ck), 500):
            chunk = ck[i : i + 500]
            for key, top in conn.execute(
                select(teacher_calls.c.cache_key, func.max(teacher_calls.c.sample_index))
                .where(teacher_calls.c.cache_key.in_(chunk))
                .group_by(teacher_calls.c.cache_key)
            ):
                next_index[key] = top + 1
        for r in records:
            ik = r.import_key
            if ik in existing_imports or ik in seen_import:
                continue
            seen_import.add(ik)
            key = r.cache_key
            idx = next_index.get(key, 0)
            next_index[key] = idx + 1
            if redact is not None:
                r = redact(r)
            rows.append(
                {
                    "cache_key": key,
                    "sample_index": idx,
                    "model": r.model,
                    "request": {"model": r.model, "messages": r.messages, **r.params},
                    "params": r.params,
                    "response": r.response,
                    "content": r.content,
                    "status": r.status,
                    "error": r.error,
                    "source": "imported",
                    "import_key": ik,
                    "external_id": r.external_id,
                    "input_tokens": r.input_tokens,
                    "output_tokens": r.output_tokens,
                    "tokens_estimated": r.tokens_estimated,
                    "latency_ms": r.latency_ms,
                    "cost_usd": r.cost_usd,
                    "redactions": r.redactions,
                    "attempts": 1,
                    "created_at": created,
                    "completed_at": created,
                }
            )
        added = insert_ignore(conn, teacher_calls, rows) if rows else 0
        if record_file:
            insert_ignore(
                conn,
                imports,
                [{"kind": kind, "path": path, "sha256": sha256, "added": added, "skipped": total - added, "created_at": created}],
            )
    return added, total - added


@dataclass
class CallRow:
    id: int
    cache_key: str
    sample_index: int
    status: str
    content: str | None
    response: dict[str, Any] | None
    input_tokens: int | None
    output_tokens: int | None
    tokens_estimated: bool
    cost_usd: float | None
    latency_ms: float | None
    model: str
    source: str


_ROW_COLS = [
    teacher_calls.c.id,
    teacher_calls.c.cache_key,
    teacher_calls.c.sample_index,
    teacher_calls.c.status,
    teacher_calls.c.content,
    teacher_calls.c.response,
    teacher_calls.c.input_tokens,
    teacher_calls.c.output_tokens,
    teacher_calls.c.tokens_estimated,
    teacher_calls.c.cost_usd,
    teacher_calls.c.latency_ms,
    teacher_calls.c.model,
    teacher_calls.c.source,
]


def finish_reason(response: Any) -> Any:
    """The first choice's ``finish_reason`` in a stored chat completion (None when it has none)."""
    choices = response.get("choices") if isinstance(response, dict) else None
    return choices[0].get("finish_reason") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None


def cut_off(row: CallRow) -> bool:
    """Whether a finished call's answer was cut off at the token limit (finish_reason length)."""
    return row.status in ("ok", "error") and finish_reason(row.response) == "length"


def holds_answer(content: str | None, response: Any, *, cut_ok: bool = False) -> bool:
    """Whether a call stored as ok holds an answer to reuse. Versions before cut detection stored an
    answer cut off at max_tokens, or holding no text (a tool call), as ok: it is the failed call it
    is (unless ``cut_ok``: a written list cut off still holds the lines before the cut)."""
    return content is not None and (cut_ok or finish_reason(response) != "length")


def _as_stored(row: Any, cut_ok: bool) -> CallRow:
    r = CallRow(*row)
    if r.status == "ok" and not holds_answer(r.content, r.response, cut_ok=cut_ok):
        r.status = "error"
    return r


def answers(engine: Engine, keys: Iterable[str], *, cut_ok: bool = False) -> dict[str, CallRow]:
    """The first successful call (lowest sample index) for each cache key that has one. A call
    stored as ok whose answer holds no text, or was cut off at the token limit (``cut_ok`` False),
    is none: older versions stored such answers as ok."""
    keys = list(dict.fromkeys(keys))
    out: dict[str, CallRow] = {}
    with engine.connect() as conn:
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            stmt = (
                select(*_ROW_COLS)
                .where(and_(teacher_calls.c.cache_key.in_(chunk), teacher_calls.c.status == "ok"))
                .order_by(teacher_calls.c.cache_key, teacher_calls.c.sample_index)
            )
            for row in conn.execute(stmt):
                r = _as_stored(row, cut_ok)
                if r.status == "ok":
                    out.setdefault(r.cache_key, r)
    return out


def samples(engine: Engine, keys: Iterable[str], *, cut_ok: bool = False) -> dict[str, list[CallRow]]:
    """Every finished call (ok or error, by sample index) for each cache key that has one: the
    repeated answers that self-consistency votes over and that show how often the teacher disagreed.
    A call stored as ok with no whole answer comes back as the error it is (see ``answers``)."""
    keys = list(dict.fromkeys(keys))
    out: dict[str, list[CallRow]] = {}
    with engine.connect() as conn:
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            stmt = (
                select(*_ROW_COLS)
                .where(and_(teacher_calls.c.cache_key.in_(chunk), teacher_calls.c.status.in_(["ok", "error"])))
                .order_by(teacher_calls.c.cache_key, teacher_calls.c.sample_index)
            )
            for row in conn.execute(stmt):
                r = _as_stored(row, cut_ok)
                out.setdefault(r.cache_key, []).append(r)
    return out


def begin_call(
    engine: Engine,
    *,
    cache_key: str,
    model: str,
    request: dict[str, Any],
    params: dict[str, Any],
    source: str = "live",
    redactions: dict[str, int] | None = None,
    owner: str | None = None,
) -> int:
    """Record a call as pending before it is sent.

    A live row left pending or failed (unpaid) by an earlier run is reused in place (so a crash
    re-sends at most what was in flight and adds no row); imported rows are never touched. ``source="proxy"``
    (calls the app made through ``graduate proxy``: not graduate's spend) always adds a row.
    ``request`` is stored as given (already redacted when privacy.redact is on; ``redactions``
    counts what was replaced); ``cache_key`` is the hash of the request as sent. ``owner`` (stored
    in ``lease_owner`` of a new row) names the process that sends it, so a later one can tell a
    call still in flight from one its killed sender left pending (``fail_abandoned``).
    """
    from sqlalchemy.exc import IntegrityError

    # Two writers may pick the same next sample index at once; the loser takes the one after.
    for _ in range(5):
        try:
            return _begin_once(engine, cache_key=cache_key, model=model, request=request, params=params, source=source, redactions=redactions, owner=owner)
        except IntegrityError:
            continue
    return _begin_once(engine, cache_key=cache_key, model=model, request=request, params=params, source=source, redactions=redactions, owner=owner)


def _begin_once(
    engine: Engine, *, cache_key: str, model: str, request: dict[str, Any], params: dict[str, Any], source: str, redactions: dict[str, int] | None,
    owner: str | None = None,
) -> int:
    with engine.begin() as conn:
        rows = conn.execute(
            select(teacher_calls.c.id, teacher_calls.c.status, teacher_calls.c.source, teacher_calls.c.sample_index, teacher_calls.c.cost_usd)
            .where(teacher_calls.c.cache_key == cache_key)
            .order_by(teacher_calls.c.sample_index)
        ).all()
        for row in rows:
            # A failed call that was paid for (an answer cut off at max_tokens) keeps its row: its
            # cost stays in the spend that teacher.budget_usd holds.
            if source == "live" and row.source == "live" and row.status != "ok" and not row.cost_usd:
                conn.execute(
                    update(teacher_calls).where(teacher_calls.c.id == row.id).values(status="pending", error=None, request=request, redactions=redactions)
                )
                return int(row.id)
        next_index = (rows[-1].sample_index + 1) if rows else 0
        result = conn.execute(
            teacher_calls.insert().values(
                cache_key=cache_key,
                sample_index=next_index,
                model=model,
                request=request,
                params=params,
                status="pending",
                source=source,
                redactions=redactions,
                attempts=0,
                tokens_estimated=False,
                created_at=now(),
                lease_owner=owner,
            )
        )
        return int(result.inserted_primary_key[0])


def finish_call(
    engine: Engine,
    call_id: int,
    *,
    status: str,
    content: str | None = None,
    response: dict[str, Any] | None = None,
    error: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    tokens_estimated: bool = False,
    latency_ms: float | None = None,
    cost_usd: float | None = None,
    attempts: int = 1,
    redactions: dict[str, int] | None = None,
) -> None:
    """Complete a call; ``redactions``: what privacy.redact replaced in the answer (added to the
    request's counts)."""
    with engine.begin() as conn:
        extra: dict[str, Any] = {}
        if redactions:
            before = conn.execute(select(teacher_calls.c.redactions).where(teacher_calls.c.id == call_id)).scalar() or {}
            extra["redactions"] = {k: before.get(k, 0) + redactions.get(k, 0) for k in sorted(set(before) | set(redactions))}
        conn.execute(
            update(teacher_calls)
            .where(teacher_calls.c.id == call_id)
            .values(
                status=status,
                content=content,
                response=response,
                error=error,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                tokens_estimated=tokens_estimated,
                latency_ms=latency_ms,
                cost_usd=cost_usd,
                attempts=teacher_calls.c.attempts + attempts,
                completed_at=now(),
                **extra,
            )
        )


def fail_abandoned(engine: Engine, source: str, gone: Callable[[str], bool], reason: str) -> int:
    """Mark failed, with ``reason``, the pending calls of ``source`` whose owner (``begin_call``'s
    ``owner``) is ``gone``: their sender was killed before it could finish them. Returns how many."""
    with engine.begin() as conn:
        owners = conn.execute(
            select(teacher_calls.c.lease_owner)
            .where(and_(teacher_calls.c.source == source, teacher_calls.c.status == "pending", teacher_calls.c.lease_owner.is_not(None)))
            .distinct()
        ).scalars().all()
        dead = [o for o in owners if gone(o)]
        if not dead:
            return 0
        result = conn.execute(
            update(teacher_calls)
            .where(and_(teacher_calls.c.source == source, teacher_calls.c.status == "pending", teacher_calls.c.lease_owner.in_(dead)))
            .values(status="error", error=reason, lease_owner=None, completed_at=now())
        )
    return int(result.rowcount or 0)


def pending_owners(engine: Engine, source: str) -> list[tuple[str, int, datetime]]:
    """The owners of ``source``'s pending calls: (owner, how many calls, when the oldest was logged)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(teacher_calls.c.lease_owner, func.count(), func.min(teacher_calls.c.created_at))
            .where(and_(teacher_calls.c.source == source, teacher_calls.c.status == "pending", teacher_calls.c.lease_owner.is_not(None)))
            .group_by(teacher_calls.c.lease_owner)
            .order_by(teacher_calls.c.lease_owner)
        ).all()
    return [(owner, int(n), oldest) for owner, n, oldest in rows]


def longest_answer(engine: Engine, model: str) -> int | None:
    """The most output tokens an answer of ``model`` in the call log has had (None: no answer yet):
    what a call reserves against the budget when teacher.max_tokens sets no cap."""
    with engine.connect() as conn:
        value = conn.execute(
            select(func.max(teacher_calls.c.output_tokens)).where(
                and_(teacher_calls.c.model == model, teacher_calls.c.status.in_(["ok", "error"]), teacher_calls.c.output_tokens.is_not(None))
            )
        ).scalar()
    return int(value) if value is not None else None


def live_spend(engine: Engine) -> float:
    """What the project's own teacher calls hold against teacher.budget_usd, in USD: the cost of
    live calls and collected batch lines, plus what batches not yet collected and open budget
    slices of graduate label --ray workers hold reserved (graduate.store.leases)."""
    from graduate.store.leases import committed_spend

    with engine.connect() as conn:
        return committed_spend(conn)


def count_by_status(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(teacher_calls.c.source, teacher_calls.c.status, func.count()).group_by(
                teacher_calls.c.source, teacher_calls.c.status
            )
        ).all()
    return {f"{source}:{status}": n for source, status, n in rows}


def redaction_counts(engine: Engine) -> dict[str, dict[str, int]]:
    """What privacy.redact replaced, per placeholder name, in the call log and the traffic log."""
    from graduate.store.schema import traffic

    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for name, table in (("calls", teacher_calls), ("traffic", traffic)):
            totals: dict[str, int] = {}
            for (counts,) in conn.execute(select(table.c.redactions).where(table.c.redactions.is_not(None))):
                for k, v in (counts or {}).items():
                    totals[k] = totals.get(k, 0) + int(v)
            out[name] = dict(sorted(totals.items()))
    return out
