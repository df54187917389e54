"""The store's side of `graduate privacy forget|purge`, on SQLite and PostgreSQL: rows found by
exact text (JSON-escaped in requests too), deleted in one transaction with a record of hashes and
counts, kept out on re-import, raw fields purged past a cutoff, and compaction on both backends."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, func, select

from graduate.data.csv_source import Item
from graduate.data.examples import add_examples
from graduate.store.calls import CallRecord, import_calls
from graduate.store.db import now
from graduate.store.forget import compact, delete_targets, find_targets, forget_log, purge_before
from graduate.store.schema import examples, teacher_calls, traffic
from graduate.store.traffic import write_traffic

SECRET = 'Zoë "quoted" 555-0101'


def _call(text: str, answer: str) -> CallRecord:
    return CallRecord(model="m", messages=[{"role": "user", "content": f"Classify: {text}"}], params={}, response={"choices": [{"message": {"content": answer}}]}, content=answer, status="ok")


def _count(engine: Engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_forget_finds_escaped_text_deletes_once_and_keeps_it_out(engine: Engine) -> None:
    add_examples(engine, "s", [Item(external_id="1", text=f"hello {SECRET}", tags=[]), Item(external_id="2", text="plain", tags=[])])
    calls = [_call(f"hello {SECRET}", '{"label": "a"}'), _call("plain", '{"label": "b"}')]
    import_calls(engine, calls, kind="batch", path="x", sha256="h1")
    base = {"created_at": now(), "endpoint": "classify", "mode": "student", "route": "student", "reason": "student", "status": 200, "latency_ms": 1.0}
    write_traffic(engine, [{**base, "request_id": "a" * 32, "text": f"hello {SECRET}"}, {**base, "request_id": "b" * 32, "text": "plain"}])

    t = find_targets(engine, item=None, match=SECRET, keys_for=lambda text: [])
    assert len(t.example_ids) == 1 and len(t.call_ids) == 1 and len(t.traffic_ids) == 1  # the call's JSON holds it escaped
    counts = delete_targets(engine, t, kind="match", what=SECRET)
    assert counts["examples"] == 1 and counts["teacher_calls"] == 1 and counts["traffic"] == 1
    compact(engine)
    assert _count(engine, examples) == 1 and _count(engine, teacher_calls) == 1 and _count(engine, traffic) == 1
    (log,) = forget_log(engine)
    assert SECRET not in str(log) and log["counts"]["examples"] == 1
    # neither the data file nor the log adds it back
    assert add_examples(engine, "s", [Item(external_id="1", text=f"hello {SECRET}", tags=[])]) == 0
    added, skipped = import_calls(engine, [calls[0]], kind="batch", path="y", sha256="h2")
    assert (added, skipped) == (0, 1)


def test_purge_keeps_labels_and_figures_and_drops_raw_fields(engine: Engine) -> None:
    import_calls(engine, [_call(SECRET, '{"label": "a", "why": "private"}')], kind="batch", path="x", sha256="h1")
    base = {"created_at": now() - timedelta(days=3), "endpoint": "classify", "mode": "student", "route": "student", "reason": "student", "status": 200, "latency_ms": 1.0}
    write_traffic(engine, [{**base, "request_id": "a" * 32, "text": SECRET, "answer": "a", "label": "a"}])
    assert purge_before(engine, now() - timedelta(days=10), answer_as_label=lambda c: "a").calls == 0  # nothing that old
    done = purge_before(engine, now() + timedelta(seconds=1), answer_as_label=lambda c: '{"label": "a"}')
    assert (done.calls, done.traffic) == (1, 1)
    with engine.connect() as conn:
        call = conn.execute(select(teacher_calls)).one()
        row = conn.execute(select(traffic)).one()
    assert call.request == {"model": "m", "purged": True} and call.response is None and call.content == '{"label": "a"}'
    assert row.text is None and row.answer is None and row.label == "a" and row.latency_ms == 1.0
    compact(engine)
