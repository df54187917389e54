"""tfidf-logreg's masked_terms: the listed terms are one placeholder to the n-grams, so swapping one
for another never changes a score, in training, after save/load and on arbitrary text."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.errors import StudentError
from graduate.students.registry import load_student, make_student, save_student
from graduate.students.tfidf_logreg import MASK, term_masker

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny" / "comments.csv"
TERMS = ["gay", "muslim", "christian", "straight", "african american"]


@pytest.fixture(scope="module")
def texts_labels() -> tuple[list[str], list[str]]:
    with FIXTURE.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = [r["comment_text"] for r in rows]
    labels = ["bad" if r["is_bad"] == "1" else "ok" for r in rows]
    # The terms carry the label in training: an unmasked model learns them as signs of it.
    texts = [t + (" gay" if lab == "bad" else " christian") for t, lab in zip(texts, labels)]
    return texts, labels


def test_swapping_a_masked_term_never_changes_the_score(texts_labels, tmp_path):
    texts, labels = texts_labels
    plain = make_student("tfidf-logreg", ["ok", "bad"], {"max_iter": 300})
    plain.fit(texts, labels)
    masked = make_student("tfidf-logreg", ["ok", "bad"], {"max_iter": 300, "masked_terms": TERMS})
    masked.fit(texts, labels)
    probes = [f"I am a {t} person and proud of it." for t in ["gay", "Muslim", "CHRISTIAN", "straight", "African American"]]
    p_plain, p_masked = plain.predict_proba(probes)[:, 1], masked.predict_proba(probes)[:, 1]
    assert p_plain.max() - p_plain.min() > 0.05  # without the mask the term moves the score
    assert np.ptp(p_masked) < 1e-12
    save_student(masked, tmp_path / "m")
    again = load_student(tmp_path / "m")
    assert np.array_equal(again.predict_proba(probes), masked.predict_proba(probes))
    # words that only contain a term are not masked
    assert term_masker(TERMS)("gayety of Straightforward muslims, gay!") == f"gayety of Straightforward muslims, {MASK}!"


@settings(max_examples=200, deadline=None)
@given(left=st.text(max_size=40), right=st.text(max_size=40), a=st.sampled_from(TERMS), b=st.sampled_from(TERMS))
def test_any_text_masks_the_same_whichever_term_it_names(left, right, a, b):
    mask = term_masker(TERMS)
    # a term at word boundaries: the two texts differ only in which term they name
    x, y = f"{left} {a.upper()} {right}", f"{left} {b} {right}"
    assert mask(x) == mask(y) and MASK in mask(x)


def test_empty_terms_are_refused():
    with pytest.raises(StudentError, match="masked_terms"):
        make_student("tfidf-logreg", ["ok", "bad"], {"masked_terms": ["gay", "  "]})


def test_a_term_is_masked_in_any_canonically_equal_spelling_and_the_rest_of_the_text_is_kept():
    """The mask had a matcher of its own, on the text as stored: "café" stayed in a decomposed
    "cafe\\u0301", "gay man" in "gay\\u00a0man", and "gay" was masked inside "gay\\u200dish"."""
    mask = term_masker(["café", "gay man", "gay"])
    text = "a  Cafe\u0301\tand GAY\u00a0\nMAN, gay\u200dish g\u00aday\u200b."
    assert mask(text) == f"a  {MASK}\tand {MASK}, gay\u200dish {MASK}\u200b."
    assert mask("a cafe\u0301\u0327") == "a cafe\u0301\u0327"  # a mark more: another word
