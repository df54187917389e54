"""Answers that say two things are not guessed at: a negated label word ("not bad", "non-toxic")
and a JSON key given twice with different values parse to no label, with the reason."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graduate.formats import answer_format
from graduate.spec import ParseSpec

WORDS = answer_format(ParseSpec(kind="label_words"), ["ok", "bad"])
NAMED = answer_format(ParseSpec(kind="label_words", words={"ok": ["non-toxic", "not toxic", "fine"], "bad": ["toxic"]}), ["ok", "bad"])
KEY = answer_format(ParseSpec(kind="json_key", key="is_bad", values={"0": "ok", "1": "bad"}), ["ok", "bad"])


@pytest.mark.parametrize(
    ("fmt", "answer", "label", "reason"),
    [
        (WORDS, "Not bad", None, "negates a label word ('bad')"),  # read as 'bad' before
        (WORDS, "not ok", None, "negates a label word ('ok')"),
        (WORDS, "It isn't bad at all.", None, "negates"),
        (WORDS, "non-bad", None, "negates"),
        (WORDS, "Label: bad", "bad", None),
        (WORDS, "nothing bad here", "bad", None),  # 'nothing' is not 'no'
        (NAMED, "non-toxic", "ok", None),  # 'toxic' inside the longer label word is that word's
        (NAMED, "This is not toxic.", "ok", None),
        (NAMED, "Never toxic.", None, "negates a label word ('toxic')"),
        (NAMED, "toxic", "bad", None),
        (KEY, '{"is_bad": 1} Actually, {"is_bad": 0}', None, "gives is_bad more than once, with different values ['1', '0']"),
        (KEY, '```json\n{"is_bad": 1}\n```\nSo: {"is_bad": 1}', "bad", None),  # said twice, the same
        (KEY, '{"is_bad": 0}', "ok", None),
        # the key named inside another field's text is no second answer: the object holds one is_bad
        (KEY, '{"reason": "not is_bad: 1, it is polite", "is_bad": 0}', "ok", None),
        (KEY, '```json\n{"is_bad": 0, "reason": "someone may say is_bad: 1"}\n```', "ok", None),
        (KEY, '{"is_bad": 1, "details": {"is_bad": 0}}', None, "gives is_bad more than once, with different values"),
        (KEY, 'is_bad: 0, wait. {"is_bad": 1, "reason": "rude"}', None, "gives is_bad more than once, with different values"),
        # the key with white space around it is the key: read (it was "no 'is_bad'"), and when the
        # object also holds the key as written with another value, neither is guessed at
        (KEY, '{" is_bad ": 1, "reason": "rude"}', "bad", None),
        (KEY, '{"is_bad": 1, "is_bad ": 1}', "bad", None),
        (KEY, '{"is_bad": 1, "is_bad ": 0}', None, "keys 'is_bad' and 'is_bad ' both give is_bad, with different values ['1', '0']"),
        (KEY, '{"Is_Bad": 1}', None, "no 'is_bad' in the answer"),  # another case is another key
    ],
)
def test_two_things_said_are_not_guessed(fmt, answer, label, reason):
    parsed = fmt.parse(answer)
    assert parsed.label == label, parsed
    if reason is None:
        assert parsed.error is None
    else:
        assert reason in parsed.error


@given(st.sampled_from(["not", "isn't", "never", "no", "non-", "NOT", "not a"]), st.sampled_from(["bad", "ok"]), st.text(max_size=20))
def test_a_negated_label_word_never_reads_as_that_label(neg, word, tail):
    answer = f"{neg} {word}".replace("- ", "-") + " " + tail
    assert WORDS.parse(answer).label != word
