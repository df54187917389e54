import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from graduate.data.import_calls import import_log
from graduate.errors import InputDataError
from graduate.spec import PriceSpec
from graduate.store.db import open_engine
from graduate.store.schema import teacher_calls

TINY = Path(__file__).parents[1] / "fixtures" / "tiny"
PRICES = {"gpt-4-1106-preview": PriceSpec(input_per_1m=10, output_per_1m=30)}


def engine_at(tmp_path: Path):
    return open_engine(f"sqlite:///{tmp_path / 'store.db'}")


def count(engine, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(teacher_calls).where(*where)).scalar_one()


def test_batch_import_with_failed_calls(tmp_path):
    engine = engine_at(tmp_path)
    rep = import_log(
        engine,
        TINY / "gpt-3.5-turbo.simple.batch_input.jsonl",
        TINY / "gpt-3.5-turbo.simple.batch_output.jsonl",
        price_for=PRICES.get,
    )
    assert rep.read == 205
    assert rep.added == 205
    assert rep.failed_calls == 5
    assert rep.problems == []
    assert count(engine, teacher_calls.c.status == "error") == 5
    # no price for gpt-3.5 in this table: cost unknown, not zero
    assert count(engine, teacher_calls.c.cost_usd.is_(None)) == 205


def test_costs_and_estimated_tokens(tmp_path):
    engine = engine_at(tmp_path)
    import_log(
        engine,
        TINY / "gpt-4-1106-preview.simple.batch_input.jsonl",
        TINY / "gpt-4-1106-preview.simple.batch_output.jsonl",
        price_for=PRICES.get,
    )
    with engine.connect() as conn:
        row = conn.execute(select(teacher_calls).limit(1)).mappings().one()
    assert row["tokens_estimated"] is True
    assert row["input_tokens"] > 50 and row["output_tokens"] > 0
    assert row["cost_usd"] == pytest.approx((row["input_tokens"] * 10 + row["output_tokens"] * 30) / 1e6)
    assert row["source"] == "imported"


def test_bad_lines_are_counted_skips_naming_file_and_line(tmp_path):
    inp = tmp_path / "in.jsonl"
    out = tmp_path / "out.jsonl"
    lines_in = (TINY / "gpt-4-1106-preview.simple.batch_input.jsonl").read_text().splitlines()[:5]
    lines_out = (TINY / "gpt-4-1106-preview.simple.batch_output.jsonl").read_text().splitlines()[:5]
    lines_out[1] = lines_out[1][:40]  # truncated JSON
    lines_out.append(json.dumps({"custom_id": "nope/1/run0", "response": None, "error": None}))
    bad_body = json.loads(lines_out[2])
    bad_body["response"]["body"]["choices"] = []
    lines_out[2] = json.dumps(bad_body)
    inp.write_text("\n".join(lines_in) + "\n")
    out.write_bytes(("\n".join(lines_out) + "\n").encode() + b"\xff\xfe{}\n")
    engine = engine_at(tmp_path)
    rep = import_log(engine, inp, out, price_for=PRICES.get)
    assert rep.added == 3
    assert len(rep.problems) == 4
    text = "\n".join(rep.problems)
    assert f"{out}:2: malformed JSON" in text
    assert f"{out}:3: response has no choices[0].message.content" in text
    assert f"{out}:6: custom_id 'nope/1/run0' is not in in.jsonl" in text
    assert f"{out}:7: not UTF-8" in text


def test_reimport_adds_nothing_even_from_a_renamed_copy(tmp_path):
    engine = engine_at(tmp_path)
    args = (TINY / "gpt-4-1106-preview.simple.batch_input.jsonl", TINY / "gpt-4-1106-preview.simple.batch_output.jsonl")
    first = import_log(engine, *args, price_for=PRICES.get)
    again = import_log(engine, *args, price_for=PRICES.get)
    assert first.added == 161 and again.already_imported and again.added == 0
    copy_in, copy_out = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    shutil.copy(args[0], copy_in)
    shutil.copy(args[1], copy_out)
    third = import_log(engine, copy_in, copy_out, price_for=PRICES.get)
    assert not third.already_imported
    assert third.added == 0 and third.skipped_existing == 161
    assert count(engine) == 161


def test_repeated_identical_requests_keep_every_answer(tmp_path):
    # sample.tiny-style repeats: same request twice, answers differ (teacher noise); both kept.
    body = {"model": "m", "temperature": 0.0, "messages": [{"role": "user", "content": "hi"}]}
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("".join(json.dumps({"custom_id": f"x/{i}", "body": body}) + "\n" for i in range(2)))
    out.write_text(
        "".join(
            json.dumps({"custom_id": f"x/{i}", "response": {"status_code": 200, "body": {"choices": [{"message": {"content": str(i)}}]}}, "error": None}) + "\n"
            for i in range(2)
        )
    )
    engine = engine_at(tmp_path)
    assert import_log(engine, inp, out, price_for=PRICES.get).added == 2
    with engine.connect() as conn:
        rows = conn.execute(select(teacher_calls.c.sample_index, teacher_calls.c.content).order_by(teacher_calls.c.sample_index)).all()
    assert rows == [(0, "0"), (1, "1")]


def test_pairs_format(tmp_path):
    f = tmp_path / "pairs.jsonl"
    f.write_text(
        json.dumps({"request": {"model": "gpt-4-1106-preview", "messages": [{"role": "user", "content": "x"}]}, "response": {"choices": [{"message": {"content": '{"is_bad": 1}'}}], "usage": {"prompt_tokens": 11, "completion_tokens": 3}}})
        + "\n"
        + json.dumps({"request": {"messages": []}, "response": None})
        + "\n"
    )
    engine = engine_at(tmp_path)
    rep = import_log(engine, f, None, price_for=PRICES.get, fmt="pairs")
    assert rep.added == 1
    assert rep.problems == [f"{f}:2: request has no messages list"]
    with engine.connect() as conn:
        row = conn.execute(select(teacher_calls)).mappings().one()
    assert (row["input_tokens"], row["output_tokens"], row["tokens_estimated"]) == (11, 3, False)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InputDataError, match=r"nothere\.jsonl: file not found"):
        import_log(engine_at(tmp_path), tmp_path / "nothere.jsonl", tmp_path / "x.jsonl", price_for=PRICES.get)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=60), st.text(max_size=60).map(str.encode)), max_size=8))
def test_import_never_crashes_on_garbage(tmp_path_factory, lines):
    d = tmp_path_factory.mktemp("garbage")
    f = d / "pairs.jsonl"
    f.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")
    rep = import_log(engine_at(d), f, None, price_for=PRICES.get, fmt="pairs")
    assert rep.added + len(rep.problems) <= len(lines)


@pytest.mark.parametrize("bad", ["abc", None, -3, 1.5, True, 2**31, 10**30])
def test_a_usage_count_that_is_not_a_whole_number_skips_that_line_only(tmp_path, bad):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    shutil.copy(TINY / "gpt-4-1106-preview.simple.batch_input.jsonl", inp)
    lines_out = (TINY / "gpt-4-1106-preview.simple.batch_output.jsonl").read_text().splitlines()
    line = json.loads(lines_out[3])
    line["response"]["body"]["usage"] = {"prompt_tokens": bad, "completion_tokens": 2}
    lines_out[3] = json.dumps(line)
    out.write_text("\n".join(lines_out) + "\n")
    engine = engine_at(tmp_path)
    rep = import_log(engine, inp, out, price_for=PRICES.get)
    shown = repr(bad) if len(repr(bad)) <= 40 else repr(bad)[:37] + "..."
    # a count past any context window (10**30 overflowed the store's integer and crashed the whole import)
    assert rep.problems == [f"{out}:4: usage.prompt_tokens is {shown}, not a whole number of tokens (0 to 2,147,483,647); fix or drop the line"]
    assert rep.added == len(lines_out) - 1 == count(engine)


def _leaf_paths(obj, at=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaf_paths(v, at + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaf_paths(v, at + (i,))
    if at:
        yield at


def test_a_batch_pair_with_any_field_changed_imports_once_or_names_the_line(tmp_path_factory):
    """Fuzz the Batch API input/output pair field by field (garbage bytes are the test above): any
    field of a request or a result line given any value (wrong types, odd Unicode, numbers past 64
    bits, NaN) is imported or named by line; the store holds as many calls as the import says it
    added, and importing the pair again adds none."""
    import copy

    ins = [json.loads(x) for x in (TINY / "gpt-4-1106-preview.simple.batch_input.jsonl").read_text().splitlines()[:3]]
    outs = [json.loads(x) for x in (TINY / "gpt-4-1106-preview.simple.batch_output.jsonl").read_text().splitlines()[:3]]
    chars = st.characters(codec="utf-8", exclude_categories=("Cs",))
    leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(chars, max_size=10)
    value = st.recursive(leaf, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(chars, max_size=5), inner, max_size=2), max_leaves=5)

    def edits(lines):
        return st.lists(st.tuples(st.integers(0, len(lines) - 1), st.sampled_from(list(_leaf_paths(lines[0]))), value), max_size=3)

    def apply(lines, changes):
        lines = copy.deepcopy(lines)
        for i, at, v in changes:
            holder = lines[i]
            for key in at[:-1]:
                holder = holder.get(key) if isinstance(holder, dict) else holder[key] if isinstance(holder, list) and isinstance(key, int) and key < len(holder) else None
            if isinstance(holder, dict) or (isinstance(holder, list) and at[-1] < len(holder)):
                holder[at[-1]] = v
        return "".join(json.dumps(x) + "\n" for x in lines)

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(in_edits=edits(ins), out_edits=edits(outs))
    def check(in_edits, out_edits) -> None:
        d = tmp_path_factory.mktemp("batch")
        (d / "in.jsonl").write_text(apply(ins, in_edits))
        (d / "out.jsonl").write_text(apply(outs, out_edits))
        engine = engine_at(d)
        try:
            rep = import_log(engine, d / "in.jsonl", d / "out.jsonl", price_for=PRICES.get)
        except InputDataError as exc:
            assert str(exc).startswith(str(d)), exc
            return
        assert count(engine) == rep.added <= len(ins)
        assert all(p.startswith(str(d)) for p in rep.problems), rep.problems
        assert import_log(engine, d / "in.jsonl", d / "out.jsonl", price_for=PRICES.get).added == 0

    check()
