"""The teacher call log on both backends: imports add each call once, live calls go pending then
ok, a crashed call is re-sent in place, imported failures stay as recorded; and the cache key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from graduate.data.import_calls import ImportReport, import_log
from graduate.spec import load_spec
from graduate.store.calls import answers, begin_call, finish_call, live_spend, request_key
from graduate.store.schema import imports, teacher_calls

LOGS = ("gpt-4-1106-preview.simple", "gpt-3.5-turbo.simple")


def import_tiny_logs(engine: Engine, project: Path, names: tuple[str, ...] = LOGS) -> list[ImportReport]:
    spec, _ = load_spec(project)
    return [
        import_log(engine, project / f"{n}.batch_input.jsonl", project / f"{n}.batch_output.jsonl", price_for=spec.price_for)
        for n in names
    ]


def output_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def count_calls(engine: Engine, *where: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(teacher_calls).where(*where)).scalar_one()


def test_import_adds_each_call_once(engine: Engine, tiny_project: Path) -> None:
    outputs = [output_lines(tiny_project / f"{n}.batch_output.jsonl") for n in LOGS]
    n_calls = sum(len(o) for o in outputs)
    n_failed = sum(1 for o in outputs for line in o if line["error"] is not None)
    assert (n_calls, n_failed) == (366, 5)  # the fixture as its docstring describes it

    first = import_tiny_logs(engine, tiny_project)
    assert [r.added for r in first] == [len(o) for o in outputs]
    assert sum(r.failed_calls for r in first) == n_failed
    assert all(r.problems == [] and not r.already_imported for r in first)
    assert count_calls(engine) == n_calls
    assert count_calls(engine, teacher_calls.c.source == "imported") == n_calls
    assert count_calls(engine, teacher_calls.c.status == "error", teacher_calls.c.error.is_not(None)) == n_failed
    assert count_calls(engine, teacher_calls.c.status == "ok", teacher_calls.c.content.is_not(None)) == n_calls - n_failed

    # The same files again: recognised by their hash, nothing is read.
    again = import_tiny_logs(engine, tiny_project)
    assert all(r.already_imported and r.read == 0 and r.added == 0 for r in again)
    assert count_calls(engine) == n_calls

    # A renamed copy: a new file hash, so every line is read, and every call is known by content.
    for n in LOGS:
        for part in ("batch_input", "batch_output"):
            shutil.copy(tiny_project / f"{n}.{part}.jsonl", tiny_project / f"copy-{n}.{part}.jsonl")
    copied = import_tiny_logs(engine, tiny_project, tuple(f"copy-{n}" for n in LOGS))
    assert [(r.already_imported, r.read, r.added, r.skipped_existing) for r in copied] == [
        (False, len(o), 0, len(o)) for o in outputs
    ]
    assert count_calls(engine) == n_calls
    with engine.connect() as conn:
        assert conn.execute(select(imports.c.added).order_by(imports.c.id)).scalars().all() == [161, 205, 0, 0]


def test_live_call_goes_pending_then_ok(engine: Engine) -> None:
    key = request_key("m", [{"role": "user", "content": "hi"}], {"temperature": 0})
    call = begin_call(engine, cache_key=key, model="m", request={"model": "m"}, params={"temperature": 0})
    with engine.connect() as conn:
        row = conn.execute(select(teacher_calls).where(teacher_calls.c.id == call)).one()
    assert (row.status, row.source, row.sample_index, row.attempts) == ("pending", "live", 0, 0)
    assert answers(engine, [key]) == {}  # a pending call is not an answer

    finish_call(engine, call, status="ok", content='{"is_bad": 1}', input_tokens=10, output_tokens=5, cost_usd=0.25)
    found = answers(engine, [key])
    assert list(found) == [key]
    assert (found[key].id, found[key].status, found[key].content, found[key].source) == (call, "ok", '{"is_bad": 1}', "live")
    assert live_spend(engine) == 0.25

    # A finished call is never reused: asking again for this key is a new sample.
    another = begin_call(engine, cache_key=key, model="m", request={"model": "m"}, params={"temperature": 0})
    assert another != call
    with engine.connect() as conn:
        assert conn.execute(select(teacher_calls.c.sample_index).where(teacher_calls.c.id == another)).scalar_one() == 1
    assert answers(engine, [key])[key].id == call  # the lowest sample index answers


def test_a_pending_or_failed_live_call_is_reused_in_place(engine: Engine) -> None:
    key = request_key("m", [{"role": "user", "content": "crash"}], {})
    first = begin_call(engine, cache_key=key, model="m", request={"model": "m"}, params={})
    # The process died before finish_call: the next run re-sends it in the same row.
    assert begin_call(engine, cache_key=key, model="m", request={"model": "m"}, params={}) == first
    assert count_calls(engine) == 1

    finish_call(engine, first, status="error", error="HTTP 500")
    assert answers(engine, [key]) == {}
    retry = begin_call(engine, cache_key=key, model="m", request={"model": "m"}, params={})
    assert retry == first
    with engine.connect() as conn:
        row = conn.execute(select(teacher_calls).where(teacher_calls.c.id == first)).one()
    assert (row.status, row.error, row.attempts) == ("pending", None, 1)
    assert count_calls(engine) == 1


def test_a_cut_answer_an_older_version_stored_as_ok_is_no_answer_to_anyone(engine: Engine) -> None:
    """Before cut detection an answer cut off at max_tokens (or holding no text) was stored as ok:
    no reader of the call log takes it for an answer (labels, votes, batch submit)."""
    from graduate.store.batches import key_state
    from graduate.store.calls import samples

    cut = {"choices": [{"index": 0, "message": {"role": "assistant", "content": '{"is_b'}, "finish_reason": "length"}]}
    whole = {"choices": [{"index": 0, "message": {"role": "assistant", "content": '{"is_bad": 1}'}, "finish_reason": "stop"}]}
    keys = [request_key("m", [{"role": "user", "content": t}], {}) for t in ("cut", "empty", "whole")]
    for key, content, response in zip(keys, ['{"is_b', None, '{"is_bad": 1}'], [cut, whole, whole]):
        call = begin_call(engine, cache_key=key, model="m", request={"model": "m"}, params={})
        finish_call(engine, call, status="ok", content=content, response=response, cost_usd=0.1)
    assert set(answers(engine, keys)) == {keys[2]}
    assert [r.status for k in keys for r in samples(engine, keys)[k]] == ["error", "error", "ok"]
    assert key_state(engine, keys).answered == {keys[2]}
    # A written list cut off still holds its lines: read as an answer where cut ones are kept.
    assert set(answers(engine, keys, cut_ok=True)) == {keys[0], keys[2]}


def test_imported_failures_are_never_overwritten(engine: Engine, tiny_project: Path) -> None:
    import_tiny_logs(engine, tiny_project, ("gpt-3.5-turbo.simple",))
    # The fixture's 5 failed calls are one request asked 5 times: samples 0..4, none answered.
    with engine.connect() as conn:
        failed = conn.execute(select(teacher_calls).where(teacher_calls.c.status == "error").order_by(teacher_calls.c.sample_index)).all()
    key = failed[0].cache_key
    assert {r.cache_key for r in failed} == {key}
    assert [(r.sample_index, r.source) for r in failed] == [(i, "imported") for i in range(5)]
    assert answers(engine, [key]) == {}
    before = count_calls(engine)

    live = begin_call(engine, cache_key=key, model=failed[0].model, request=failed[0].request, params=failed[0].params)
    assert live not in {r.id for r in failed}
    assert count_calls(engine) == before + 1
    finish_call(engine, live, status="ok", content='{"is_bad": 0}', cost_usd=0.5)

    with engine.connect() as conn:
        rows = conn.execute(select(teacher_calls).where(teacher_calls.c.cache_key == key).order_by(teacher_calls.c.sample_index)).all()
    assert [(r.sample_index, r.source, r.status, r.error, r.content) for r in rows] == [
        *((r.sample_index, "imported", "error", r.error, None) for r in failed),
        (5, "live", "ok", None, '{"is_bad": 0}'),
    ]
    assert all(r.error for r in failed)
    assert answers(engine, [key])[key].id == live
    assert live_spend(engine) == 0.5  # imported calls' costs are not live spend


# -- the cache key -----------------------------------------------------------------------------

# Ints within float precision: the realistic range of sampling parameters (temperature, seed...).
ints = st.integers(min_value=-(2**53), max_value=2**53)
scalars = st.one_of(st.none(), st.booleans(), ints, st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=10,
)
params_st = st.dictionaries(st.text(min_size=1, max_size=12), json_values, max_size=5)
messages_st = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=30)}),
    min_size=1,
    max_size=3,
)


def respell(value: Any, draw: Any) -> Any:
    """The same JSON value with some ints written as floats (0 -> 0.0) and dict keys reordered."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return float(value) if draw(st.booleans()) else value
    if isinstance(value, list):
        return [respell(v, draw) for v in value]
    keys = draw(st.permutations(list(value)))
    return {k: respell(value[k], draw) for k in keys}


@given(model=st.text(max_size=10), messages=messages_st, params=params_st, data=st.data())
def test_request_key_ignores_number_spelling_and_key_order(model: str, messages: list, params: dict, data: st.DataObject) -> None:
    respelt = respell(params, data.draw)
    messages_reordered = [dict(reversed(list(m.items()))) for m in messages]
    assert request_key(model, messages_reordered, respelt) == request_key(model, messages, params)


@given(model=st.text(max_size=10), a=messages_st, b=messages_st, params=params_st)
def test_request_key_differs_when_messages_differ(model: str, a: list, b: list, params: dict) -> None:
    assume(a != b)
    assert request_key(model, a, params) != request_key(model, b, params)


def test_request_key_keeps_types_that_matter() -> None:
    msgs = [{"role": "user", "content": "x"}]
    assert request_key("m", msgs, {"temperature": 0}) == request_key("m", msgs, {"temperature": 0.0})
    assert request_key("m", msgs, {"n": 1}) != request_key("m", msgs, {"n": True})
    assert request_key("m", msgs, {"stop": "1"}) != request_key("m", msgs, {"stop": 1})
    assert request_key("m", msgs, {"temperature": None}) == request_key("m", msgs, {})
    assert request_key("m", msgs, {}) != request_key("n", msgs, {})


def test_two_imports_at_once_keep_every_call(store_url: str, tiny_project: Path) -> None:
    # The same requests answered twice (two runs of the teacher): each import must keep all of its
    # answers. Before the write lock both read "no sample yet" and the slower one lost every row
    # to the unique (cache_key, sample_index) while reporting success.
    import threading

    from graduate.store.db import open_engine

    name = LOGS[0]
    src = tiny_project / f"{name}.batch_output.jsonl"
    second = tiny_project / "second_run.batch_output.jsonl"
    lines = output_lines(src)
    for line in lines:
        if line["error"] is None:
            msg = line["response"]["body"]["choices"][0]["message"]
            msg["content"] = msg["content"] + " "
    second.write_text("".join(json.dumps(line) + "\n" for line in lines))
    spec, _ = load_spec(tiny_project)
    engines = [open_engine(store_url) for _ in range(2)]
    start = threading.Barrier(2)
    reports: list[ImportReport] = []

    def work(engine: Engine, output: Path) -> None:
        start.wait()
        reports.append(import_log(engine, tiny_project / f"{name}.batch_input.jsonl", output, price_for=spec.price_for))

    threads = [threading.Thread(target=work, args=(e, out)) for e, out in zip(engines, [src, second])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(r.added for r in reports) == [len(lines), len(lines)]
    assert count_calls(engines[0]) == 2 * len(lines)
    with engines[0].connect() as conn:
        indexes = conn.execute(select(teacher_calls.c.sample_index, func.count()).group_by(teacher_calls.c.sample_index)).all()
    assert sorted(indexes) == [(0, len(lines)), (1, len(lines))]
    for e in engines:
        e.dispose()
