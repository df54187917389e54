"""Soft labels of ``label_list`` and ``json_list`` answers (issue 18): the alternatives at each
position where the answer starts a label word, combined per label with a noisy-OR; on token lists
shaped as llama.cpp's server and OpenAI return them (a label word split over tokens, a leading
space, syntax glued to the word)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.formats.logprobs import answer_distribution
from graduate.spec import ParseSpec

LABELS = ["care", "proportionality", "loyalty", "authority", "purity", "equality", "thin morality", "non-moral"]
L = math.log


def _tokens(pieces):
    """A response's logprobs content from (token, logprob, [(alternative, logprob), ...]) triples;
    ``None`` as the alternatives leaves ``top_logprobs`` out."""
    content = []
    for t, lp, alts in pieces:
        tok = {"token": t, "logprob": lp}
        if alts is not None:
            tok["top_logprobs"] = [{"token": a, "logprob": alp} for a, alp in alts]
        content.append(tok)
    return {"choices": [{"message": {"content": "".join(t for t, _, _ in pieces)}, "logprobs": {"content": content}}]}


def _only(probs: dict[str, float], **expected: float) -> None:
    """``probs`` holds ``expected`` for the labels named (``thin_morality`` for ``thin morality``) and 0 elsewhere."""
    want = {lab: expected.get(lab.replace(" ", "_").replace("-", "_"), 0.0) for lab in LABELS}
    assert probs == pytest.approx(want), probs


def test_a_label_list_reads_each_label_start_and_combines_them_by_noisy_or():
    # "Care, thin morality": the second label word is two tokens after a leading space, written in another case
    response = _tokens(
        [
            ("Care", L(0.6), [("Care", L(0.6)), ("loy", L(0.2)), ("Purity", L(0.1)), ("I", L(0.1))]),  # "I" maps to no label
            (",", 0.0, []),
            (" thin", L(0.5), [(" thin", L(0.5)), (" equality", L(0.3)), (" care", L(0.1)), (" the", L(0.1))]),  # "the": no label
            (" mor", 0.0, []),
            ("ality", 0.0, []),
        ]
    )
    probs = answer_distribution(response, ParseSpec(kind="label_list"), LABELS)
    assert probs is not None
    # care: 0.6/0.9 at the first start, 0.1/0.9 at the second: 1 - (1 - 2/3)(1 - 1/9)
    _only(probs, care=1 - (1 / 3) * (8 / 9), loyalty=2 / 9, purity=1 / 9, thin_morality=5 / 9, equality=1 / 3)


def test_syntax_glued_to_a_label_word_must_be_shared_by_its_alternatives():
    # ", thin" holds the separator: an alternative without it (".", "thin") is another answer here
    response = _tokens(
        [
            ("care", L(0.9), [("care", L(0.9)), ("purity", L(0.1))]),
            (", thin", L(0.6), [(", thin", L(0.6)), (", loyalty", L(0.2)), (".", L(0.1)), ("thin", L(0.1))]),
            (" morality", 0.0, []),
        ]
    )
    probs = answer_distribution(response, ParseSpec(kind="label_list"), LABELS)
    _only(probs, care=0.9, purity=0.1, thin_morality=0.75, loyalty=0.25)


def test_a_label_list_read_at_another_comma_places_each_word_after_it():
    # "care\uff0cloyalty": read through the full-width comma, as parse reads it; a new line separates too
    for sep in ("\uff0c", "\n"):
        response = _tokens([("care", L(0.9), [("care", L(0.9)), ("purity", L(0.1))]), (sep, 0.0, []), ("loyalty", L(0.5), [("loyalty", L(0.5)), ("Authority", L(0.5))])])
        _only(answer_distribution(response, ParseSpec(kind="label_list", separator=", "), LABELS), care=0.9, purity=0.1, loyalty=0.5, authority=0.5)


def test_the_none_word_as_the_answer_gives_each_label_its_share_at_that_position():
    response = _tokens([("None", L(0.7), [("None", L(0.7)), ("care", L(0.2)), ("Loy", L(0.05)), ("Sorry", L(0.05))])])
    probs = answer_distribution(response, ParseSpec(kind="label_list", none="none"), LABELS)
    _only(probs, care=0.2 / 0.95, loyalty=0.05 / 0.95)


def test_a_json_list_reads_its_items_starts_with_the_quote_glued_or_not():
    spec = ParseSpec(kind="json_list")
    glued = _tokens(
        [
            ('["care', L(0.8), [('["care', L(0.8)), ('["loyalty', L(0.15)), ("[]", L(0.05))]),  # "[]" is not a label start
            ('", "', 0.0, []),
            ("Purity", L(0.9), [("Purity", L(0.9)), ("Care", L(0.1))]),
            ('"]', 0.0, []),
        ]
    )
    probs = answer_distribution(glued, spec, LABELS)
    _only(probs, care=1 - (1 - 0.8 / 0.95) * 0.9, loyalty=0.15 / 0.95, purity=0.9)
    # a Python literal, as models also write it
    single = _tokens([("['", 0.0, []), ("loyalty", L(0.6), [("loyalty", L(0.6)), ("authority", L(0.4))]), ("']", 0.0, [])])
    _only(answer_distribution(single, spec, LABELS), loyalty=0.6, authority=0.4)


def test_a_key_wrapped_json_list_reads_the_list_under_its_key():
    spec = ParseSpec(kind="json_list", key="labels")
    response = _tokens(
        [
            ('{"', 0.0, []),
            ("notes", 0.0, []),
            ('": ["', 0.0, []),
            ("care", L(0.5), [("care", L(0.5)), ("loyalty", L(0.5))]),  # a list under another key: not read
            ('"], "', 0.0, []),
            ("labels", 0.0, []),
            ('": ["', 0.0, []),
            ("care", L(0.8), [("care", L(0.8)), ("equality", L(0.2))]),
            ('", "', 0.0, []),
            ("non", L(0.6), [("non", L(0.6)), ("proportional", L(0.4))]),
            ('-moral"]}', 0.0, []),
        ]
    )
    probs = answer_distribution(response, spec, LABELS)
    _only(probs, care=0.8, equality=0.2, non_moral=0.6, proportionality=0.4)


def test_nan_and_positive_logprobs_count_as_servers_mean_them():
    # NaN (fp16 overflow in a server) is no probability; a logprob above 0 is capped at probability 1
    response = _tokens([("care", 0.5, [("care", 0.5), ("loyalty", float("nan")), ("purity", L(0.25))])])
    _only(answer_distribution(response, ParseSpec(kind="label_list"), LABELS), care=0.8, purity=0.2)


def test_no_soft_label_where_a_label_start_cannot_be_read():
    ll, jl = ParseSpec(kind="label_list"), ParseSpec(kind="json_list")
    good = ("care", L(0.9), [("care", L(0.9)), ("purity", L(0.1))])
    # a label start without top_logprobs (left out, or empty)
    for missing in (None, []):
        assert answer_distribution(_tokens([good, (", ", 0.0, []), ("loyalty", 0.0, missing)]), ll, LABELS) is None
    # the whole answer in one token without alternatives
    assert answer_distribution(_tokens([("care, loyalty", 0.0, [])]), ll, LABELS) is None
    # an answer that does not parse, and the empty list (no label word to read)
    assert answer_distribution(_tokens([("fairness", 0.0, [("fairness", 0.0), ("care", L(0.1))])]), ll, LABELS) is None
    assert answer_distribution(_tokens([("[]", 0.0, [("[]", 0.0), ('["', L(0.1))])]), jl, LABELS) is None
    # the written token maps to no one label ("ca": care or career), so its position says nothing of it
    two = ["care", "career"]
    split = _tokens([("ca", L(0.7), [("ca", L(0.7)), ("loyalty", L(0.3))]), ("re", 0.0, [])])
    assert answer_distribution(split, ll, two + ["loyalty"]) is None


WORDS = {"care": "care", "loyalty": "loyalty", "purity": "purity", "thin morality": "thin morality", "non-moral": "non-moral"}
OTHER_PIECES = ["care", "car", "loyalty", "loy", "purity", "thin", "non", "none", "equality", "the", "I", "[]", "\n", ""]


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["label_list", "json_list", "json_list_key"]),
    chosen=st.lists(st.sampled_from(list(WORDS)), max_size=4),
    cases=st.lists(st.sampled_from([str.lower, str.title, str.upper]), min_size=4, max_size=4),
    splits=st.lists(st.booleans(), min_size=4, max_size=4),
    own=st.lists(st.floats(0.5, 1.0), min_size=4, max_size=4),
    others=st.lists(st.lists(st.tuples(st.sampled_from(OTHER_PIECES), st.floats(0.0, 1.0)), max_size=4), min_size=4, max_size=4),
    space=st.booleans(),
)
def test_any_list_answer_gives_no_soft_label_or_a_probability_per_label(kind, chosen, cases, splits, own, others, space):
    """For any answer: None, or every value in [0, 1], and a label the answer chose at least 0.5
    when its own token's probability is at least 0.5 (its alternatives a real distribution)."""
    spec = ParseSpec(kind="json_list", key="labels") if kind == "json_list_key" else ParseSpec(kind=kind, none="none")
    items = chosen or (["none"] if kind == "label_list" else [])
    pieces: list[tuple[str, float, list[tuple[str, float]] | None]] = []
    open_, between, close = ("", ",", "") if kind == "label_list" else ('["', '", ', '"]')
    if kind == "json_list_key":
        open_, close = '{"labels": ["', '"]}'
    if not items:
        pieces.append(("[]" if kind == "json_list" else '{"labels": []}', 0.0, []))
    for i, lab in enumerate(items):
        word = cases[i](WORDS.get(lab, lab))
        lead = open_ if i == 0 else between + ('"' if kind != "label_list" else "")
        if lead:
            pieces.append((lead, 0.0, []))
        # a label word may be split in two ("ca" "re"; each head begins one label only); the none word
        # is not ("no" begins "non-moral" too)
        cut = max(2, len(word) // 2) if splits[i] and lab in WORDS else len(word)
        head, tail = word[:cut], word[cut:]
        head = (" " if space and i else "") + head
        p = own[i]
        # the other alternatives share what is left, scaled so they never pass it (a real distribution)
        rest = [(a if not space or not i else " " + a, w) for a, w in others[i] if (" " + a if space and i else a) != head]
        weight = sum(w for _, w in rest)
        scale = (1.0 - p) * 0.999 / weight if weight > 0 else 0.0
        alts = [(head, L(p))] + [(a, L(w * scale)) for a, w in dict(rest).items() if w * scale > 0]
        pieces.append((head, L(p), alts))
        if tail:
            pieces.append((tail, 0.0, []))
    if items:
        pieces.append((close, 0.0, []))
    response = _tokens([x for x in pieces if x[0]])
    probs = answer_distribution(response, spec, list(WORDS))
    if probs is None:
        # nothing to read only where no word is written ("[]")
        assert not items, pieces
        return
    assert set(probs) == set(WORDS) and all(0.0 <= v <= 1.0 for v in probs.values()), probs
    for i, lab in enumerate(items):
        if lab in WORDS:
            assert probs[lab] >= 0.5 - 1e-12, (lab, probs, pieces)


def test_a_json_list_is_read_where_its_value_was_parsed_not_in_prose_before_it():
    """The first label start was searched from the first "[" anywhere: prose before a fenced list
    ("[Analysis] ... "care" ...") put it on the prose's word, and its alternatives were read."""
    response = _tokens(
        [
            ('[Analysis] The text is about "', 0.0, []),
            ("care", L(0.5), [("care", L(0.5)), ("loyalty", L(0.3)), ("purity", L(0.2))]),  # prose: not the answer
            ('".\n```json\n["', 0.0, []),
            ("care", L(0.99), [("care", L(0.99)), ("purity", L(0.01))]),
            ('"]\n```', 0.0, []),
        ]
    )
    probs = answer_distribution(response, ParseSpec(kind="json_list"), LABELS)
    assert probs is not None
    _only(probs, care=0.99, purity=0.01)


def test_a_key_written_twice_is_read_at_its_last_list_as_a_json_reader_keeps_it():
    response = _tokens(
        [
            ('{"labels": ["', 0.0, []),
            ("care", L(0.5), [("care", L(0.5)), ("purity", L(0.5))]),
            ('", "', 0.0, []),
            ("loyalty", L(0.5), [("loyalty", L(0.5)), ("purity", L(0.5))]),
            ('"], "labels": ["', 0.0, []),
            ("care", L(0.9), [("care", L(0.9)), ("equality", L(0.1))]),
            ('"]}', 0.0, []),
        ]
    )
    probs = answer_distribution(response, ParseSpec(kind="json_list", key="labels"), LABELS)
    assert probs is not None
    _only(probs, care=0.9, equality=0.1)
