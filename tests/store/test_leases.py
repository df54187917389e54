"""Leases and budget slices on a real SQLite file and a real PostgreSQL database: concurrent
claimers never share a call, a lapsed lease can be taken over, concurrent slices never sum past
the budget."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import Engine, event, select, update

from graduate.store import leases
from graduate.store.calls import live_spend
from graduate.store.schema import teacher_calls


def work(n: int) -> list[dict]:
    return [
        {"cache_key": f"{i:064x}", "model": "m", "request": {"model": "m", "messages": [{"role": "user", "content": str(i)}]}, "params": {}, "redactions": None}
        for i in range(n)
    ]


def test_enqueue_is_idempotent_and_reuses_an_unanswered_call(engine: Engine) -> None:
    first = leases.enqueue(engine, work(30))
    assert leases.enqueue(engine, work(30)) == first
    with engine.begin() as conn:
        conn.execute(update(teacher_calls).where(teacher_calls.c.id == first[f"{0:064x}"]).values(status="error", error="x"))
        conn.execute(update(teacher_calls).where(teacher_calls.c.id == first[f"{1:064x}"]).values(status="ok"))
    again = leases.enqueue(engine, work(30))
    assert again[f"{0:064x}"] == first[f"{0:064x}"]  # the failed call is pending again, in place
    assert again[f"{1:064x}"] != first[f"{1:064x}"]  # an answered key gets a new sample (enqueue is told what to send)
    with engine.connect() as conn:
        rows = conn.execute(select(teacher_calls.c.status)).scalars().all()
    assert Counter(rows) == {"pending": 30, "ok": 1}


def test_a_run_counts_the_answers_of_its_own_calls_and_a_requeued_call_loses_its_old_one(engine: Engine) -> None:
    # graduate label --ray stops once a run's first answers are all unusable, counted over its workers
    # (lease owners RUN-share-attempt): usable (ok), unusable (failed holding an answer: cut off, no
    # text); a timeout holds none, another run's calls are not this run's.
    ids = list(leases.enqueue(engine, work(6)).values())
    cut = {"status": "error", "error": "cut off", "response": {"choices": []}, "output_tokens": 3, "cost_usd": 0.0}
    for call_id, owner, values in [
        (ids[0], "r1-0-0", dict(cut)), (ids[1], "r1-1-0", dict(cut)), (ids[2], "r1-1-1", {"status": "error", "error": "timed out"}),
        (ids[3], "r2-0-0", dict(cut)), (ids[4], "r2-0-0", {"status": "ok", "content": "x", "output_tokens": 1}),
    ]:  # fmt: skip
        assert leases.claim(engine, call_id, owner, 60) and leases.finish_claimed(engine, call_id, values)
    assert leases.run_answers(engine, "r1") == (0, 2)
    assert leases.run_answers(engine, "r2") == (1, 1)
    assert leases.run_answers(engine, "r3") == (0, 0)
    # A free failed call is sent again in place: its old answer goes, so a timeout now is no answer.
    again = leases.enqueue(engine, work(6))
    assert again[f"{0:064x}"] == ids[0]
    assert leases.claim(engine, ids[0], "r3-0-0", 60) and leases.finish_claimed(engine, ids[0], {"status": "error", "error": "timed out"})
    assert leases.run_answers(engine, "r3") == (0, 0)


def test_a_runs_figures_count_each_call_once_a_dead_workers_too_and_what_it_paid(engine: Engine) -> None:
    # graduate label --ray's table: a dead worker's stats die with it, so the run's sent, failed and
    # cost are read from the store; an answer that came after another worker's is paid, not sent twice.
    ids = list(leases.enqueue(engine, work(6)).values())
    spends = {}
    for owner in ("r1-0-0", "r1-0-1", "r1-1-0", "r2-0-0"):
        spends[owner] = leases.reserve_slice(engine, owner, 1.0, limit=10.0, minimum=0.1, lease_s=60)[0]
    ok = {"status": "ok", "content": "x", "output_tokens": 1, "cost_usd": 0.01}
    for call_id, owner, values, cost in [
        (ids[0], "r1-0-0", dict(ok), 0.01), (ids[1], "r1-0-0", {"status": "error", "error": "timed out (3 attempts)"}, 0.0),
        (ids[2], "r1-0-0", {"status": "error", "error": "cut off", "output_tokens": 3, "cost_usd": 0.02}, 0.02),
        (ids[3], "r1-0-1", dict(ok), 0.01), (ids[4], "r1-1-0", dict(ok), 0.01), (ids[5], "r2-0-0", dict(ok), 0.01),
    ]:  # fmt: skip
        assert leases.claim(engine, call_id, owner, 60)
        assert leases.finish_claimed(engine, call_id, values, slice_id=spends[owner], cost=cost)
    # r1-1-0 answered ids[3] too, after r1-0-1's answer was stored: paid, not stored.
    assert not leases.finish_claimed(engine, ids[3], dict(ok), slice_id=spends["r1-1-0"], cost=0.01)
    calls = leases.run_calls(engine, "r1", errors_of=["r1-0-0", "r2-0-0"])
    assert calls == {
        "r1-0-0": leases.OwnerCalls(ok=1, failed=2, unanswered=1, errors=("timed out (3 attempts)", "cut off")),
        "r1-0-1": leases.OwnerCalls(ok=1), "r1-1-0": leases.OwnerCalls(ok=1),
    }  # fmt: skip
    assert leases.run_calls(engine, "r1", errors_of=["r1-0-0"], most_errors=1)["r1-0-0"].errors == ("timed out (3 attempts)",)
    assert leases.run_spend(engine, "r1") == pytest.approx(0.01 + 0.02 + 0.01 + 0.01 + 0.01)
    assert leases.run_spend(engine, "r2") == pytest.approx(0.01) and leases.run_calls(engine, "r3") == {}


def test_concurrent_claimers_never_share_a_call(engine: Engine) -> None:
    ids = list(leases.enqueue(engine, work(200)).values())
    won: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    def claimer(owner: str) -> None:
        for call_id in ids:
            if leases.claim(engine, call_id, owner, 60):
                won[owner].append(call_id)

    threads = [threading.Thread(target=claimer, args=(o,)) for o in won]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    claimed = [c for lst in won.values() for c in lst]
    assert sorted(claimed) == sorted(ids)  # every call claimed exactly once
    with engine.connect() as conn:
        owners = dict(conn.execute(select(teacher_calls.c.id, teacher_calls.c.lease_owner)).all())
    assert all(owners[c] == o for o, lst in won.items() for c in lst)


def test_a_lapsed_lease_is_taken_over_a_renewed_one_is_not(engine: Engine) -> None:
    a, b = leases.enqueue(engine, work(2)).values()
    # 2 s leases: a loaded machine may take a moment between two statements (0.3 s ones raced).
    assert leases.claim(engine, a, "dead", 2.0) and leases.claim(engine, b, "alive", 2.0)
    assert not leases.claim(engine, a, "other", 60)
    leases.renew(engine, "alive", [b], 60)
    time.sleep(2.1)  # past both first leases
    assert leases.claim(engine, a, "other", 60)  # the dead worker's lease lapsed
    assert not leases.claim(engine, b, "other", 60)  # the live worker renewed its own
    assert leases.finish_claimed(engine, a, {"status": "ok", "content": "x", "cost_usd": 0.1})
    assert not leases.finish_claimed(engine, a, {"status": "ok", "content": "y", "cost_usd": 0.1})  # the first answer wins
    with engine.connect() as conn:
        assert conn.execute(select(teacher_calls.c.content).where(teacher_calls.c.id == a)).scalar_one() == "x"


def test_concurrent_slices_never_sum_past_the_budget(engine: Engine) -> None:
    limit = 1.0
    granted: list[float] = []
    lock = threading.Lock()

    def reserver(owner: str) -> None:
        for _ in range(30):
            slice_id, amount = leases.reserve_slice(engine, owner, 0.07, limit=limit, minimum=0.01, lease_s=60)
            if slice_id is not None:
                with lock:
                    granted.append(amount)

    threads = [threading.Thread(target=reserver, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(granted) <= limit + 1e-9 and sum(granted) > limit - 0.01
    assert live_spend(engine) == pytest.approx(sum(granted))
    for i in range(4):
        leases.close_slices(engine, f"w{i}")
    assert live_spend(engine) == pytest.approx(0.0)


def test_a_dead_workers_slice_stops_counting_when_its_lease_lapses(engine: Engine) -> None:
    leases.reserve_slice(engine, "dead", 0.5, limit=1.0, minimum=0.1, lease_s=2.0)  # 0.3 s raced the next line
    assert live_spend(engine) == pytest.approx(0.5)
    time.sleep(2.1)
    assert live_spend(engine) == pytest.approx(0.0)
    assert leases.reserve_slice(engine, "new", 0.9, limit=1.0, minimum=0.1, lease_s=60)[1] == pytest.approx(0.9)


def _statements(engine: Engine, fn) -> list[tuple[str, object]]:
    """The SQL ``fn`` runs on ``engine``, with its parameters."""
    seen: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    return seen


def test_a_runs_calls_and_spend_are_found_by_its_exact_owner_prefix_through_an_index(engine: Engine) -> None:
    # Lease owners are RUN-share-attempt. A LIKE 'RUN-%' takes _ and % in ``run`` as wildcards (and
    # no index serves it): run a_1 must not count ab1's calls, nor run a% axyz's.
    ids = list(leases.enqueue(engine, work(4)).values())
    ok = {"status": "ok", "content": "x", "output_tokens": 1}
    for call_id, owner, cost in [(ids[0], "a_1-0-0", 0.01), (ids[1], "ab1-0-0", 0.02), (ids[2], "a%-0-0", 0.04), (ids[3], "axyz-0-0", 0.08)]:
        slice_id = leases.reserve_slice(engine, owner, 1.0, limit=10.0, minimum=0.1, lease_s=60)[0]
        assert leases.claim(engine, call_id, owner, 60)
        assert leases.finish_claimed(engine, call_id, dict(ok), slice_id=slice_id, cost=cost)
    assert leases.run_calls(engine, "a_1") == {"a_1-0-0": leases.OwnerCalls(ok=1)}
    assert leases.run_calls(engine, "a%") == {"a%-0-0": leases.OwnerCalls(ok=1)}
    assert leases.run_spend(engine, "a_1") == pytest.approx(0.01) and leases.run_spend(engine, "a%") == pytest.approx(0.04)
    if engine.dialect.name != "sqlite":
        return
    # Every worker asks run_calls before each call until its run's first answers settle the cut
    # stop: it must search an index on the owner, not scan the whole call log.
    seen = _statements(engine, lambda: (leases.run_calls(engine, "a_1", errors_of=["a_1-0-0"]), leases.run_spend(engine, "a_1")))
    plans = []
    with engine.connect() as conn:
        for statement, params in seen:
            if statement.lstrip().upper().startswith("SELECT"):
                plans.append(" | ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)))
    assert len(plans) == 3, plans
    assert all(re.search(r"SEARCH (teacher_calls|budget_slices) USING (COVERING )?INDEX ix_(teacher_calls_lease_owner|budget_slices_owner)", p) for p in plans), plans
    assert not any("SCAN teacher_calls" in p or "SCAN budget_slices" in p for p in plans), plans


def test_a_dead_workers_refused_calls_count_as_not_retryable_its_timeouts_as_retryable(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # A dead worker's own figures die with it: which of its failures a re-run may get past is read
    # from the store, so a 400 (bad request) must not be reported as "will be retried".
    from graduate.spec import PriceSpec, TeacherSpec
    from graduate.teacher.leased import work as send_share
    from graduate.teacher.registry import make_teacher
    from servers import fake_openai_server

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    price = PriceSpec(input_per_1m=1.0, output_per_1m=1.0)
    ids = list(leases.enqueue(engine, work(4)).values())
    for owner, options, share in [("rq-0-0", {"shape": "param-400"}, ids[:2]), ("rq-1-0", {"p500": 1.0}, ids[2:])]:
        with fake_openai_server(**options) as server:
            spec = TeacherSpec(model="m", prompt="{text}", base_url=server.base_url, max_retries=0, concurrency=2, max_tokens=5)
            stats = asyncio.run(
                send_share(engine, spec, make_teacher(spec), [(i, "a text") for i in share], owner=owner, run="rq", workers=1, lease_s=60, price=price)
            )
        assert stats.failed == 2
    calls = leases.run_calls(engine, "rq", errors_of=["rq-0-0", "rq-1-0"])
    assert (calls["rq-0-0"].failed, calls["rq-0-0"].retryable) == (2, 0), calls
    assert (calls["rq-1-0"].failed, calls["rq-1-0"].retryable) == (2, 2), calls
    # A failed call sent again starts afresh: what its last error was is gone with the error.
    leases.enqueue(engine, work(4))
    with engine.connect() as conn:
        assert conn.execute(select(teacher_calls.c.transient).where(teacher_calls.c.transient.is_not(None))).all() == []


def test_releasing_a_dead_workers_leases_says_how_many_calls_it_had_in_flight(engine: Engine) -> None:
    # Their answers, if the teacher sent any, died with the worker: paid for perhaps, never stored.
    ids = list(leases.enqueue(engine, work(4)).values())
    for call_id in ids[:3]:
        assert leases.claim(engine, call_id, "rf-0-0", 60)
    assert leases.finish_claimed(engine, ids[0], {"status": "ok", "content": "x", "output_tokens": 1})
    assert leases.release_owner(engine, "rf-0-0") == 2
    assert leases.release_owner(engine, "rf-0-0") == 0
