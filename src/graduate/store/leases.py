"""Leases on pending calls and budget slices: how several workers (graduate label --ray) share one
call log and one budget without sending a call twice or spending past teacher.budget_usd.

- The driver enqueues the work as pending live calls, unleased. A worker claims a call with one
  conditional UPDATE (pending, and unleased or its lease lapsed), so two workers never hold the
  same call; it renews the leases of its calls in flight, so only a dead worker's calls lapse and
  are sent again, and only after the lease. A finish applies to a still-pending call only: the
  first answer wins.
- A worker spends from a budget slice it reserves; reserving takes one lock (PostgreSQL: an
  advisory transaction lock; SQLite: the database's write lock) and grants at most what the
  budget has left after every spend and every open slice's unused part. A slice whose worker
  died stops counting once its lease lapses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import Connection, Engine, and_, case, func, null, or_, select, text, update

from graduate.store.db import now
from graduate.store.schema import batches, budget_slices, teacher_calls

CHUNK = 500
_LOCK_KEY = 7_203_011  # the advisory lock that serialises slice reservations on PostgreSQL


def _until(seconds: float) -> datetime:
    return now() + timedelta(seconds=seconds)


def committed_spend(conn: Connection) -> float:
    """USD held against the budget: paid live and batch calls, open batches' estimates, and the
    unused part of budget slices still open and leased."""
    paid = conn.execute(
        select(func.coalesce(func.sum(teacher_calls.c.cost_usd), 0.0)).where(teacher_calls.c.source.in_(["live", "batch"]))
    ).scalar_one()
    batch_reserved = conn.execute(select(func.coalesce(func.sum(batches.c.reserved_usd), 0.0)).where(batches.c.state != "collected")).scalar_one()
    open_slices = conn.execute(
        select(func.coalesce(func.sum(budget_slices.c.reserved_usd - budget_slices.c.used_usd), 0.0)).where(
            and_(budget_slices.c.closed.is_(False), budget_slices.c.lease_until > now())
        )
    ).scalar_one()
    return float(paid) + float(batch_reserved) + max(0.0, float(open_slices))


def enqueue(engine: Engine, work: list[dict[str, Any]]) -> dict[str, int]:
    """Pending live calls for ``work`` (dicts of cache_key, model, request, params, redactions):
    a live call of that key not yet answered is reused in place; returns cache_key -> call id."""
    out: dict[str, int] = {}
    for i in range(0, len(work), CHUNK):
        chunk = work[i : i + CHUNK]
        keys = [w["cache_key"] for w in chunk]
        with engine.begin() as conn:
            rows = conn.execute(
                select(
                    teacher_calls.c.id, teacher_calls.c.cache_key, teacher_calls.c.sample_index, teacher_calls.c.status, teacher_calls.c.source,
                    teacher_calls.c.cost_usd,
                )
                .where(teacher_calls.c.cache_key.in_(keys))
                .order_by(teacher_calls.c.cache_key, teacher_calls.c.sample_index)
            ).all()
            top: dict[str, int] = {}
            reuse: dict[str, tuple[int, str]] = {}
            for r in rows:
                top[r.cache_key] = max(top.get(r.cache_key, -1), r.sample_index)
                if r.source == "live" and r.status != "ok" and not r.cost_usd:  # a paid failure keeps its row (and cost)
                    reuse.setdefault(r.cache_key, (int(r.id), r.status))
            stamp = now()
            for w in chunk:
                key = w["cache_key"]
                if key in out:
                    continue
                if key in reuse:
                    call_id, status = reuse[key]
                    if status != "pending":  # its old answer goes too: a run counts the answers its own calls hold (run_answers)
                        conn.execute(
                            update(teacher_calls)
                            .where(teacher_calls.c.id == call_id)
                            .values(
                                status="pending", error=None, transient=None, lease_owner=None, lease_until=None, content=None, response=null(), input_tokens=None,
                                output_tokens=None, completed_at=None,
                            )
                        )
                    out[key] = call_id
                    continue
                result = conn.execute(
                    teacher_calls.insert().values(
                        cache_key=key, sample_index=top.get(key, -1) + 1, model=w["model"], request=w["request"], params=w["params"],
                        redactions=w["redactions"], status="pending", source="live", attempts=0, tokens_estimated=False, created_at=stamp,
                    )
                )
                out[key] = int(result.inserted_primary_key[0])
    return out


def claim(engine: Engine, call_id: int, owner: str, lease_s: float) -> bool:
    """Take a pending call whose lease is free or lapsed: one conditional UPDATE."""
    stamp = now()
    with engine.begin() as conn:
        result = conn.execute(
            update(teacher_calls)
            .where(
                and_(
                    teacher_calls.c.id == call_id,
                    teacher_calls.c.status == "pending",
                    or_(teacher_calls.c.lease_until.is_(None), teacher_calls.c.lease_until < stamp),
                )
            )
            .values(lease_owner=owner, lease_until=stamp + timedelta(seconds=lease_s))
        )
    return result.rowcount == 1


def call_state(engine: Engine, call_id: int) -> tuple[str, datetime | None]:
    """A call's status and, while pending, when its lease lapses."""
    with engine.connect() as conn:
        row = conn.execute(select(teacher_calls.c.status, teacher_calls.c.lease_until).where(teacher_calls.c.id == call_id)).one()
    until = row.lease_until
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=timezone.utc)
    return row.status, until


def renew(engine: Engine, owner: str, call_ids: Iterable[int], lease_s: float) -> None:
    """Extend the leases of the calls ``owner`` has in flight, and of its open budget slices."""
    ids = list(call_ids)
    until = _until(lease_s)
    with engine.begin() as conn:
        for i in range(0, len(ids), CHUNK):
            conn.execute(
                update(teacher_calls)
                .where(and_(teacher_calls.c.id.in_(ids[i : i + CHUNK]), teacher_calls.c.lease_owner == owner, teacher_calls.c.status == "pending"))
                .values(lease_until=until)
            )
        conn.execute(update(budget_slices).where(and_(budget_slices.c.owner == owner, budget_slices.c.closed.is_(False))).values(lease_until=until))


def _of_run(owner: Any, run: str) -> Any:
    """``owner`` names one of run ``run``'s workers (RUN-share-attempt): a range on the indexed
    column, the exact prefix as owners compare byte by byte (schema.OWNER), where a LIKE would read
    _ and % in ``run`` as wildcards and use no index. '.' is the character after '-'."""
    return and_(owner >= f"{run}-", owner < f"{run}.")


def run_answers(engine: Engine, run: str) -> tuple[int, int]:
    """(usable, unusable) answers stored for the calls that run ``run``'s workers claimed (their
    lease owners are named ``run``-...): ok calls, and failed ones that hold an answer (cut off at
    max_tokens, no text; a timeout or 5xx holds none). Counted in the store, so every worker of the
    run, a replaced one too, sees the same figures, and another run counts its own."""
    calls = run_calls(engine, run).values()
    return sum(c.ok for c in calls), sum(c.failed - c.unanswered for c in calls)


@dataclass(frozen=True)
class OwnerCalls:
    """The calls one worker of a run finished, as the store holds them."""

    ok: int = 0
    failed: int = 0
    unanswered: int = 0  # of failed: holding no answer (a timeout, a 5xx after retries, a refusal), not cut off
    retryable: int = 0  # of failed: transient (a timeout, 429, 5xx after retries), which a re-run may get past; not a refusal (4xx)
    errors: tuple[str, ...] = ()  # the first of its failures' errors, as stored (redacted)


def run_calls(engine: Engine, run: str, *, errors_of: Iterable[str] = (), most_errors: int = 20) -> dict[str, OwnerCalls]:
    """The calls run ``run``'s workers finished, by worker (lease owner, named ``run``-...): a
    finished call keeps its last claimer's name, so each is counted once, a dead worker's too; the
    errors stored for the workers ``errors_of`` (those whose own figures were lost with them)."""
    mine = _of_run(teacher_calls.c.lease_owner, run)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                teacher_calls.c.lease_owner,
                func.coalesce(func.sum(case((teacher_calls.c.status == "ok", 1), else_=0)), 0),
                func.coalesce(func.sum(case((teacher_calls.c.status == "error", 1), else_=0)), 0),
                func.coalesce(func.sum(case((and_(teacher_calls.c.status == "error", teacher_calls.c.output_tokens.is_(None)), 1), else_=0)), 0),
                func.coalesce(func.sum(case((and_(teacher_calls.c.status == "error", teacher_calls.c.transient.is_(True)), 1), else_=0)), 0),
            )
            .where(and_(mine, teacher_calls.c.status.in_(["ok", "error"])))
            .group_by(teacher_calls.c.lease_owner)
        ).all()
        lost = [o for o in errors_of if o.startswith(f"{run}-")]
        texts: dict[str, list[str]] = {}
        if lost and most_errors > 0:
            for owner, error in conn.execute(
                select(teacher_calls.c.lease_owner, teacher_calls.c.error)
                .where(and_(teacher_calls.c.lease_owner.in_(lost), teacher_calls.c.status == "error", teacher_calls.c.error.is_not(None)))
                .order_by(teacher_calls.c.completed_at, teacher_calls.c.id)
                .limit(most_errors)
            ):
                texts.setdefault(owner, []).append(error)
    return {
        owner: OwnerCalls(int(ok), int(failed), int(bare), int(transient), tuple(texts.get(owner, ()))) for owner, ok, failed, bare, transient in rows
    }


def run_spend(engine: Engine, run: str) -> float:
    """USD run ``run``'s workers paid for the answers they stored, a dead worker's too: the sum of
    their budget slices' spend, which also holds an answer that arrived after another worker's
    (paid twice, stored once)."""
    with engine.connect() as conn:
        spent = conn.execute(select(func.coalesce(func.sum(budget_slices.c.used_usd), 0.0)).where(_of_run(budget_slices.c.owner, run))).scalar_one()
    return float(spent)


def run_held(engine: Engine, run: str) -> int:
    """Pending calls that run ``run``'s workers still hold a lease on."""
    with engine.connect() as conn:
        held = conn.execute(
            select(func.count()).where(and_(_of_run(teacher_calls.c.lease_owner, run), teacher_calls.c.status == "pending", teacher_calls.c.lease_until.is_not(None)))
        ).scalar_one()
    return int(held)


def release(engine: Engine, call_id: int, owner: str) -> None:
    """Give back a claimed call that was not sent (e.g. no budget left): pending and unleased."""
    with engine.begin() as conn:
        conn.execute(
            update(teacher_calls)
            .where(and_(teacher_calls.c.id == call_id, teacher_calls.c.lease_owner == owner, teacher_calls.c.status == "pending"))
            .values(lease_owner=None, lease_until=None)
        )


def finish_claimed(engine: Engine, call_id: int, values: dict[str, Any], *, slice_id: int | None = None, cost: float = 0.0) -> bool:
    """Complete a still-pending call (the first answer wins; False: another worker's answer was
    stored first) and charge its cost to the worker's slice, in one transaction."""
    with engine.begin() as conn:
        result = conn.execute(
            update(teacher_calls)
            .where(and_(teacher_calls.c.id == call_id, teacher_calls.c.status == "pending"))
            .values(completed_at=now(), lease_until=None, attempts=teacher_calls.c.attempts + values.pop("attempts", 1), **values)
        )
        if slice_id is not None and cost:
            conn.execute(update(budget_slices).where(budget_slices.c.id == slice_id).values(used_usd=budget_slices.c.used_usd + cost))
    return result.rowcount == 1


def reserve_slice(engine: Engine, owner: str, amount: float, *, limit: float, minimum: float, lease_s: float) -> tuple[int | None, float]:
    """A budget slice of up to ``amount`` (at least ``minimum``) if the budget has it left:
    returns (slice id, granted USD), or (None, 0.0) when it does not."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        # On SQLite the insert takes the write lock first, so the sum below sees every other slice.
        result = conn.execute(
            budget_slices.insert().values(owner=owner, reserved_usd=0.0, used_usd=0.0, lease_until=_until(lease_s), closed=False, created_at=now())
        )
        slice_id = int(result.inserted_primary_key[0])
        left = limit - committed_spend(conn)
        granted = min(amount, left)
        if granted < minimum or granted <= 0:
            conn.execute(update(budget_slices).where(budget_slices.c.id == slice_id).values(closed=True))
            return None, 0.0
        conn.execute(update(budget_slices).where(budget_slices.c.id == slice_id).values(reserved_usd=granted))
    return slice_id, granted


def release_owner(engine: Engine, owner: str) -> int:
    """Everything a worker known to be dead held: its pending calls unleased (the next worker sends
    them now, not when the lease lapses) and its open budget slices closed (their unused part is free
    again). Only for an owner whose process is gone: a live one would send a call twice. Returns how
    many calls it held: those it had in flight (a worker claims a call just before sending it), whose
    answers, if the teacher sent them, were paid for and died with it."""
    with engine.begin() as conn:
        held = conn.execute(
            update(teacher_calls)
            .where(and_(teacher_calls.c.lease_owner == owner, teacher_calls.c.status == "pending"))
            .values(lease_owner=None, lease_until=None)
        )
        conn.execute(update(budget_slices).where(and_(budget_slices.c.owner == owner, budget_slices.c.closed.is_(False))).values(closed=True))
    return held.rowcount


def close_slices(engine: Engine, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(budget_slices).where(and_(budget_slices.c.owner == owner, budget_slices.c.closed.is_(False))).values(closed=True))
