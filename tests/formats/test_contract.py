"""The contract every answer format (graduate.formats.FORMATS) keeps: each label renders to
answers of which one parses back to it, the answer's start is found at one of the label's raw forms, and
nonsense parses to no label with a reason. A new format is one file, one registry line and a
spec here."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.formats import FORMATS, answer_format, labelset
from graduate.spec import ParseSpec

LABELS = ["World", "Sports", "Business", "Sci/Tech"]
SPECS = {
    "json_key": ParseSpec(kind="json_key", key="topic"),
    "regex": ParseSpec(kind="regex", pattern=r"TOPIC:\s*(\S+)"),
    "label_words": ParseSpec(kind="label_words", words={"World": ["world"], "Sports": ["sports", "sport"], "Business": ["business"], "Sci/Tech": ["science"]}),
    # multi-label: the parsed label is a label set's canonical string (graduate.formats.labelset)
    "label_list": ParseSpec(kind="label_list", none="none", words={"Sci/Tech": ["science", "sci/tech"]}),
    "json_list": ParseSpec(kind="json_list", key="topics"),
    "json_booleans": ParseSpec(kind="json_booleans"),
}
SINGLE = sorted(k for k, s in SPECS.items() if not s.multi_label)
MULTI = sorted(k for k, s in SPECS.items() if s.multi_label)
SUBSETS = [frozenset(LABELS[i] for i in range(len(LABELS)) if mask >> i & 1) for mask in range(2 ** len(LABELS))]


def test_every_registered_format_has_a_contract_spec():
    assert set(FORMATS) == set(SPECS)


@pytest.mark.parametrize("kind", SINGLE)
def test_each_label_renders_and_parses_back_and_is_located(kind):
    fmt = answer_format(SPECS[kind], LABELS)
    forms = fmt.raw_forms()
    assert set(forms) == set(LABELS)
    for label in LABELS:
        rendered = fmt.render(label)
        answer = next((a for a in rendered if fmt.parse(a).label == label), rendered[0])
        parsed = fmt.parse(answer)
        assert parsed.label == label and parsed.error is None, (answer, parsed)
        offset = fmt.answer_offset(answer, parsed)
        assert offset is not None
        tail = answer[offset:].lower() if fmt.fold else answer[offset:]
        assert any(tail.startswith(f) for f in forms[label]), (answer, offset, forms[label])


@pytest.mark.parametrize("kind", MULTI)
def test_each_label_set_renders_and_parses_back(kind):
    fmt = answer_format(SPECS[kind], LABELS)
    for subset in SUBSETS:  # every set, the empty one and all four included
        value = labelset.encode(subset, LABELS)
        rendered = fmt.render(value)
        assert rendered, value
        parsed = fmt.parse(rendered[0])
        assert parsed.label == value and parsed.error is None and labelset.decode(parsed.label, LABELS) == subset, (rendered, parsed)
        assert fmt.answer_offset(rendered[0], parsed) is None  # a set's labels are several tokens: no logprob soft labels


@pytest.mark.parametrize("kind", sorted(FORMATS))
@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_nonsense_is_no_label_with_a_reason_never_an_exception(kind, text):
    parsed = answer_format(SPECS[kind], LABELS).parse(text)
    if SPECS[kind].multi_label:
        assert parsed.label is None or labelset.decode(parsed.label, LABELS) is not None
    else:
        assert parsed.label is None or parsed.label in LABELS
    if parsed.label is None:
        assert parsed.error


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_empty_answers_are_refused_alike(kind):
    for empty in (None, "", "   \n"):
        parsed = answer_format(SPECS[kind], LABELS).parse(empty)
        assert parsed.label is None and parsed.error == "empty answer"
