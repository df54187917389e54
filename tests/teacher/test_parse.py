import json

from hypothesis import given
from hypothesis import strategies as st

from graduate.spec import ParseSpec
from graduate.teacher.parse import parse_answer

LABELS = ["ok", "bad"]
JSON_KEY = ParseSpec(kind="json_key", key="is_bad", values={"0": "ok", "1": "bad"})


def test_recorded_answer_shapes():
    # Shapes seen in the shared GPT-4 / GPT-3.5 logs.
    assert parse_answer('```json\n{\n  "is_bad": 0\n}\n```', JSON_KEY, LABELS).label == "ok"
    assert parse_answer('{"is_bad": 1}', JSON_KEY, LABELS).label == "bad"
    cot = "```python\n{\n  'reason_innocent': 'harmless',\n  'reason_toxic': 'rude',\n  'is_bad': 1\n}\n```"
    parsed = parse_answer(cot, JSON_KEY, LABELS)
    assert parsed.label == "bad"
    assert parsed.fields == {"reason_innocent": "harmless", "reason_toxic": "rude"}
    # Unquoted reasons (not a valid dict): the key still reads.
    broken = "{\n 'reason_innocent': It is fine, really,\n 'is_bad': 0\n}"
    assert parse_answer(broken, JSON_KEY, LABELS).label == "ok"


def test_a_key_with_white_space_around_it_reads_with_its_fields():
    parsed = parse_answer('```json\n{"reason": "rude", " is_bad ": 1}\n```', JSON_KEY, LABELS)
    assert (parsed.label, parsed.error, parsed.fields) == ("bad", None, {"reason": "rude"})
    broken = "{\n 'reason': It is fine, really,\n 'is_bad ': 0\n}"
    parsed = parse_answer(broken, JSON_KEY, LABELS)
    assert (parsed.label, parsed.fields) == ("ok", {"reason": "It is fine, really"})


def test_unparseable_answers_are_reported_not_guessed():
    for content in ["", None, "I cannot help with that.", '{"is_bad": 7}', '{"toxic": true}']:
        parsed = parse_answer(content, JSON_KEY, LABELS)
        assert parsed.label is None
        assert parsed.error


def test_numeric_spellings_are_one_answer():
    assert parse_answer('{"is_bad": 1.0}', JSON_KEY, LABELS).label == "bad"
    assert parse_answer('{"is_bad": "1"}', JSON_KEY, LABELS).label == "bad"
    assert parse_answer('{"is_bad": true}', JSON_KEY, LABELS).label == "bad"


def test_regex_and_label_words():
    regex = ParseSpec(kind="regex", pattern=r"Answer:\s*(\w+)")
    assert parse_answer("Thinking... Answer: bad", regex, LABELS).label == "bad"
    assert parse_answer("Answer: maybe", regex, LABELS).label is None
    words = ParseSpec(kind="label_words", words={"ok": ["clean", "ok"], "bad": ["toxic"]})
    assert parse_answer("This is toxic.", words, LABELS).label == "bad"
    assert parse_answer("Clean.", words, LABELS).label == "ok"
    # both labels' words: ambiguous, so no label
    assert parse_answer("not toxic, it's clean", words, LABELS).label is None
    # whole words only: "token" does not contain the word "ok"
    assert parse_answer("a token", ParseSpec(kind="label_words"), LABELS).label is None


@given(st.sampled_from([0, 1]), st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda k: k != "is_bad"), st.text(max_size=30), max_size=3), st.sampled_from(["", "```json\n", "```python\n"]))
def test_json_answers_round_trip(value, extra, fence):
    body = json.dumps({**extra, "is_bad": value}, indent=2)
    content = fence + body + ("\n```" if fence else "")
    parsed = parse_answer(content, JSON_KEY, LABELS)
    assert parsed.label == ["ok", "bad"][value]


@given(st.text(max_size=200))
def test_parser_never_raises(content):
    for spec in (JSON_KEY, ParseSpec(kind="label_words"), ParseSpec(kind="regex", pattern=r"(\w+)$")):
        parsed = parse_answer(content, spec, LABELS)
        assert parsed.label in (None, "ok", "bad")
        assert (parsed.label is None) == (parsed.error is not None)


def test_json_booleans_read_through_values_named_true_and_false():
    """values {"true": bad, "false": ok} (a teacher asked for {"toxic": true|false}) lost every
    answer: a JSON boolean was read as '1'/'0', which no such value names."""
    for values in ({"true": "bad", "false": "ok"}, {"True": "bad", "False": "ok"}, {"1": "bad", "0": "ok"}):
        spec = ParseSpec(kind="json_key", key="toxic", values=values)
        for answer, label in (('{"toxic": true}', "bad"), ('{"toxic": false}', "ok"), ("{'toxic': True}", "bad"), ('{"toxic": "TRUE"}', "bad")):
            parsed = parse_answer(answer, spec, LABELS)
            assert (parsed.label, parsed.error) == (label, None), (values, answer, parsed)
    # labels named true/false, no values: the boolean is the label's name
    assert parse_answer('{"toxic": false}', ParseSpec(kind="json_key", key="toxic"), ["true", "false"]).label == "false"
    # broken syntax (an unquoted reason) reads the same
    assert parse_answer("{'reason': it is, 'toxic': true}", ParseSpec(kind="json_key", key="toxic", values={"1": "bad", "0": "ok"}), LABELS).label == "bad"


@given(st.sampled_from([0, 1]), st.text(max_size=20), st.sampled_from(["is_bad: {}", "'is_bad': {}", '"is_bad" = {}']), st.booleans())
def test_a_well_formed_answer_whose_reason_names_the_key_reads_its_value(value, words, mention, reason_first):
    """A reason quoting the key with another value ("not is_bad: 1") made the answer 'gives is_bad
    more than once': a well-formed object holding one is_bad was dropped."""
    reason = words + " " + mention.format(1 - value)
    body = {"reason": reason, "is_bad": value} if reason_first else {"is_bad": value, "reason": reason}
    parsed = parse_answer(json.dumps(body), JSON_KEY, LABELS)
    assert (parsed.label, parsed.fields) == (["ok", "bad"][value], {"reason": reason})


def test_a_quoted_label_of_several_words_reads_whole_in_a_broken_answer():
    """A chain-of-thought answer whose dict syntax breaks (an unquoted reason) read only the first
    word of a quoted value: 'not spam' was 'not', no known answer."""
    spec = ParseSpec(kind="json_key", key="label")
    labels = ["spam", "not spam"]
    for answer in ("{'reason': it's fine, 'label': 'not spam'}", '{"reason": fine, "label": "not spam"}', "label = \"not spam\""):
        parsed = parse_answer(answer, spec, labels)
        assert (parsed.label, parsed.error) == ("not spam", None), (answer, parsed)
    # said twice, differently: still no guess
    assert parse_answer("{'reason': x, 'label': 'not spam'} label: spam", spec, labels).label is None
    # a quoted value with more after its answer still reads its first word, as it did
    assert parse_answer("{'reason': x, 'label': 'spam, clearly'}", spec, labels).label == "spam"


def test_label_words_read_through_decomposed_accents_and_invisible_format_characters():
    """label_words matched on the raw lowercased answer: a decomposed accent (NFD, as macOS and some
    tokenizers write it) or a zero-width/format character (Cf) inside or around a word hid the word,
    and a soft hyphen in "non-toxic" hid the negation, so the answer read as "toxic"."""
    from graduate.formats import answer_format

    french = ParseSpec(kind="label_words")
    labels = ["positif", "négatif"]
    for answer in ("ne\u0301gatif", "Ne\u0301gatif.", "né\u200bgatif", "\u2060négatif\u200b", "\ufeffNÉ\u00adGATIF"):
        assert parse_answer(answer, french, labels).label == "négatif", answer
    decomposed = ParseSpec(kind="label_words", words={"négatif": ["ne\u0301gatif"], "positif": ["positif"]})  # the spec's word decomposed
    assert parse_answer("négatif", decomposed, labels).label == "négatif"
    words = ParseSpec(kind="label_words", words={"ok": ["clean", "ok"], "bad": ["toxic"]})
    assert parse_answer("to\u200dxic", words, LABELS).label == "bad"
    for negated in ("not\u200b toxic", "non\u00ad-toxic", "isn't \u200btoxic"):
        parsed = parse_answer(negated, words, LABELS)
        assert parsed.label is None and "negates" in (parsed.error or ""), negated
    assert parse_answer("non\u00adtoxic", words, LABELS).label is None  # "nontoxic": not the word toxic, never "bad"
    # the offset of the answer's word stays one in the text as written (a logprob token is found there)
    fmt = answer_format(words, LABELS)
    for text in ("Verdict: to\u200bxic", "Ver\u200bdict\u200b: \u200btoxic", "Cafe\u0301 says: toxic"):
        at = fmt.answer_offset(text, fmt.parse(text))
        assert at is not None and text[at] == "t" and text[at:].replace("\u200b", "").startswith("toxic"), (text, at)
    fmt = answer_format(french, labels)
    assert fmt.answer_offset("Verdict : ne\u0301gatif", fmt.parse("Verdict : ne\u0301gatif")) == 10


@given(st.lists(st.sampled_from(["toxic", "clean", "it", "is", "not", "really", "café", "ok", "\n", ",", "."]), max_size=8), st.data())
def test_label_words_read_an_answer_as_its_composed_form_without_format_characters(words, data):
    import unicodedata

    spec = ParseSpec(kind="label_words", words={"ok": ["clean", "ok"], "bad": ["toxic"]})
    answer = " ".join(words)
    marked = "".join(c + data.draw(st.sampled_from(["", "", "\u200b", "\u00ad", "\u2060", "\ufeff"])) for c in unicodedata.normalize("NFD", answer))
    assert parse_answer(marked, spec, LABELS) == parse_answer(answer, spec, LABELS)


def test_a_negation_written_with_a_typographic_apostrophe_is_a_negation():
    """The negation pattern knew only the straight apostrophe: "isn’t toxic" (U+2019, as word
    processors and many models write it) read as "toxic"."""
    words = ParseSpec(kind="label_words", words={"ok": ["clean", "ok"], "bad": ["toxic"]})
    for negated in ("It isn’t toxic.", "It ISNʼT toxic", "isn't toxic", "It isn\u2019t toxic"):
        parsed = parse_answer(negated, words, LABELS)
        assert parsed.label is None and "negates" in (parsed.error or ""), negated
    assert parse_answer("It’s toxic", words, LABELS).label == "bad"  # an apostrophe elsewhere negates nothing


def test_label_words_read_the_dotted_capital_i_as_i_and_keep_the_dotless_one_apart():
    """Both sides were lower-cased with str.lower: the Turkish "İ" becomes "i" plus a combining dot,
    so a spec's word "İyi" never matched the answer "iyi" (nor "İYİ" the word "iyi"). İ now folds to
    i; the dotless ı stays its own letter, so "sık" and "sik" are two words."""
    turkish = ParseSpec(kind="label_words", words={"iyi": ["İyi"], "kötü": ["Kötü"]})
    labels = ["iyi", "kötü"]
    for answer in ("iyi", "İyi", "İYİ", "Cevap: iyi.", "Bence İyİ", "i\u0307yi"):
        assert parse_answer(answer, turkish, labels).label == "iyi", answer
    assert parse_answer("İYİ", ParseSpec(kind="label_words"), labels).label == "iyi"
    assert parse_answer("kötü", turkish, labels).label == "kötü"
    parsed = parse_answer("NOT İYİ", turkish, labels)  # a negation in capitals is still a negation
    assert parsed.label is None and "negates" in (parsed.error or "")
    apart = ParseSpec(kind="label_words", words={"a": ["sık"], "b": ["sik"]})
    assert [parse_answer(w, apart, ["a", "b"]).label for w in ("sık", "sık.", "sik", "SİK")] == ["a", "a", "b", "b"]
    # the soft label reads the same words: an alternative token "iyi" is the word "İyi"
    from graduate.formats import answer_format

    assert answer_format(turkish, labels).raw_forms()["iyi"] == ["iyi"]
