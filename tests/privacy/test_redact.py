"""privacy.redact: presidio's pattern recognizers with typed placeholders, consistent within a
record; planted personal data in real comments is found (recall per type), ordinary text is kept."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graduate.errors import SpecError
from graduate.privacy import PLACEHOLDER, Redactor
from graduate.spec import PrivacySpec
from privacy.planted import PLACEHOLDERS, comments, planted

pytest.importorskip("presidio_analyzer")


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(PrivacySpec(redact=True, patterns={"customer": r"CUST-\d{6}"}))


def test_planted_personal_data_is_found_per_type(redactor: Redactor) -> None:
    """200 values of each type in real comments: at least 99% of each replaced by its placeholder
    (measured: all e-mails, cards, IBANs and IPs; 99.5% of phones) and the value is gone."""
    found: dict[str, int] = {}
    for text, kind, value in planted(200, seed=1):
        out = redactor.record().text(text) or ""
        found[kind] = found.get(kind, 0) + int(value not in out and f"<{PLACEHOLDERS[kind]}_1>" in out)
    assert {k: n / 200 for k, n in found.items()} == pytest.approx({k: 1.0 for k in found}, abs=0.01), found


def test_same_value_same_placeholder_within_a_record_and_numbering_restarts(redactor: Redactor) -> None:
    rec = redactor.record()
    out = rec.text("write to ann@example.com or bob@example.org; ann@example.com again, CUST-123456")
    assert out == "write to <EMAIL_1> or <EMAIL_2>; <EMAIL_1> again, <CUSTOMER_1>"
    assert rec.tally() == {"EMAIL": 3, "CUSTOMER": 1}
    # the answer of the same record keeps the request's numbers (the request seeds them, uncounted)
    answer = redactor.record({"messages": [{"role": "user", "content": "ann@example.com bob@example.org"}]})
    assert answer.text("reply to bob@example.org") == "reply to <EMAIL_2>" and answer.tally() == {"EMAIL": 1}
    assert redactor.record().text("bob@example.org") == "<EMAIL_1>"  # a new record: placeholders never link records


def test_checks_keep_look_alikes(redactor: Redactor) -> None:
    """A 16-digit number that fails Luhn, an IBAN with a wrong checksum, a version number and an
    address without a real suffix are not personal data; placeholders are never redacted again."""
    kept = "order 1234 5678 9012 3456, iban GB00 WEST 1234 5698 7654 32, version 1.2.3, user@host.invalidtld <EMAIL_7>"
    assert redactor.record().text(kept) == kept


def test_json_values_are_redacted_and_keys_kept(redactor: Redactor) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "ip 10.1.2.3"}], "n": 1, "meta": {"a@b.com": None}}
    rec = redactor.record()
    assert rec.json(body) == {"model": "m", "messages": [{"role": "user", "content": "ip <IP_1>"}], "n": 1, "meta": {"a@b.com": None}}


def test_ordinary_comments_are_mostly_untouched(redactor: Redactor) -> None:
    """The tiny fixture's 161 real comments: few redactions (real Wikipedia IP addresses are found)."""
    texts = comments()
    changed = [t for t in texts if redactor.record().text(t) != t]
    assert len(changed) <= 0.1 * len(texts), changed[:5]


TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=("Cs",)), max_size=300)
PIECES = st.sampled_from(["a@example.com", "+44 20 7946 0958", "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32", "192.168.0.1", "CUST-000001", "<EMAIL_1>", " "])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(parts=st.lists(st.one_of(TEXT, PIECES), max_size=8))
def test_any_text_redacts_to_a_fixed_point(redactor: Redactor, parts: list[str]) -> None:
    """Any Unicode with planted values mixed in: nothing the redactor finds is left, redacting
    again changes nothing, and every placeholder is a known type numbered from 1."""
    text = "".join(parts)
    out = redactor.record().text(text) or ""
    assert redactor.spans(out) == []
    assert redactor.record().text(out) == out
    for m in PLACEHOLDER.finditer(out):
        assert m.group(1) in {"EMAIL", "PHONE", "CARD", "IBAN", "IP", "CUSTOMER"} or m.group(0) in text


@pytest.mark.parametrize(
    ("privacy", "message"),
    [
        ({"patterns": {"bad name": "x"}}, "use letters, digits and _"),
        ({"patterns": {"ID": "("}}, "is not a regular expression"),
        ({"patterns": {"ID": "x*"}}, "matches the empty string"),
        ({"patterns": {"email": "x"}}, "is a built-in type"),
        ({"types": ["email", "passport"]}, "privacy.types"),
        ({"phone_regions": ["USA"]}, "two-letter region codes"),
    ],
)
def test_bad_privacy_settings_are_one_line(privacy: dict, message: str) -> None:
    from graduate.spec import parse_spec

    raw = {
        "task": {"name": "t", "labels": ["a", "b"], "parse": {"kind": "json_key", "key": "label"}},
        "teacher": {"model": "m", "prompt": "{text}"},
        "privacy": {"redact": True, **privacy},
    }
    with pytest.raises(SpecError, match=re.escape(message)) as err:
        parse_spec(raw)
    assert len(str(err.value).splitlines()) == 1
