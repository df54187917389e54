"""The teacher's chat format: the input comes back out of any rendered prompt, and the answer
built for each label parses back to that label with the task's own parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.errors import SpecError
from graduate.serve.chat import build_answers, completion_chunks, recover_text
from graduate.spec import ParseSpec, TaskSpec, TeacherSpec
from graduate.teacher.prompt import render_messages

TEACHER = TeacherSpec(model="m", prompt="Classify: '{text}'\n\nAnswer in JSON {\"is_bad\": 0 or 1}:", system="You are a moderator.")


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_the_input_comes_back_out_of_the_rendered_prompt(text):
    assert recover_text(TEACHER, render_messages(TEACHER, text)) == text


def test_requests_that_are_not_the_template_are_refused():
    good = render_messages(TEACHER, "hello")
    assert recover_text(TEACHER, good) == "hello"
    assert recover_text(TEACHER, good[1:]) is None  # system message missing
    assert recover_text(TEACHER, [good[0], {"role": "user", "content": "hello"}]) is None
    assert recover_text(TEACHER, [{"role": "system", "content": "other"}, good[1]]) is None
    assert recover_text(TEACHER, [*good, {"role": "assistant", "content": "x"}]) is None
    parts = [good[0], {"role": "user", "content": [{"type": "text", "text": good[1]["content"]}]}]
    assert recover_text(TEACHER, parts) == "hello"  # OpenAI's content-part form
    assert recover_text(TEACHER, [good[0], {"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]) is None


@pytest.mark.parametrize(
    "parse, expected",
    [
        (ParseSpec(kind="json_key", key="is_bad", values={"0": "ok", "1": "bad"}), {"ok": '{"is_bad": 0}', "bad": '{"is_bad": 1}'}),
        (ParseSpec(kind="json_key", key="label"), {"ok": '{"label": "ok"}', "bad": '{"label": "bad"}'}),
        # JSON booleans, as the teacher writes them (a string "true" was served: the boolean did not read back)
        (ParseSpec(kind="json_key", key="toxic", values={"false": "ok", "true": "bad"}), {"ok": '{"toxic": false}', "bad": '{"toxic": true}'}),
        (ParseSpec(kind="regex", pattern=r"^\s*(\w+)", values={"no": "ok", "yes": "bad"}), {"ok": "no", "bad": "yes"}),
        (ParseSpec(kind="label_words", words={"bad": ["toxic"], "ok": ["fine"]}), {"ok": "fine", "bad": "toxic"}),
        (ParseSpec(kind="label_words"), {"ok": "ok", "bad": "bad"}),
    ],
)
def test_answers_parse_back_to_their_label(parse, expected):
    task = TaskSpec(name="t", labels=["ok", "bad"], parse=parse)
    assert build_answers(task) == expected


def test_an_answer_the_parser_cannot_read_back_is_a_spec_error():
    # A plain pattern is filled in; one that cannot be inverted needs serve.answers.
    plain = TaskSpec(name="t", labels=["ok", "bad"], parse=ParseSpec(kind="regex", pattern=r"Answer: (\w+)"))
    assert build_answers(plain) == {"ok": "Answer: ok", "bad": "Answer: bad"}
    task = TaskSpec(name="t", labels=["ok", "bad"], parse=ParseSpec(kind="regex", pattern=r"(?:Answer|Label)[:=]\s*(\w+)"))
    with pytest.raises(SpecError, match=r"serve.answers.ok: .*set serve.answers.ok"):
        build_answers(task)
    assert build_answers(task, {"ok": "Answer: ok", "bad": "Answer: bad"}) == {"ok": "Answer: ok", "bad": "Answer: bad"}
    with pytest.raises(SpecError, match="not task labels"):
        build_answers(task, {"maybe": "x"})


def test_stream_chunks_carry_the_whole_answer():
    import json

    body = {"id": "chatcmpl-1", "created": 1, "model": "m", "system_fingerprint": "g", "choices": [{"message": {"content": '{"is_bad": 1}'}}]}
    chunks = completion_chunks(body)
    assert chunks[-1] == b"data: [DONE]\n\n"
    deltas = [json.loads(c[6:])["choices"][0]["delta"].get("content", "") for c in chunks[:-1]]
    assert "".join(deltas) == '{"is_bad": 1}'
