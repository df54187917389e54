"""The fast transform gives scikit-learn's numbers exactly: same sparse matrices, same probabilities,
on real comments and on arbitrary text (whitespace runs, accents, emoji, empty strings)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.students.tfidf_fast import FastPipeline, FastVectorizer, fast_pipeline
from graduate.students.tfidf_logreg import TfidfLogregStudent

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny" / "comments.csv"


@pytest.fixture(scope="module")
def fitted() -> tuple[TfidfLogregStudent, list[str]]:
    with FIXTURE.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = [r["comment_text"] for r in rows]
    labels = ["bad" if r["is_bad"] == "1" else "ok" for r in rows]
    student = TfidfLogregStudent(["ok", "bad"], max_iter=300)
    student.fit(texts, labels)
    return student, texts


def _same(a, b) -> None:
    a, b = a.tocsr(), b.tocsr()
    assert a.shape == b.shape
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)


def test_identical_on_real_comments(fitted):
    student, texts = fitted
    fast = FastPipeline(student.pipeline)
    assert fast.parts is not None and all(f.accelerated for f, _ in fast.parts)
    for (_, vec), (f, _) in zip(student.pipeline.steps[0][1].transformer_list, fast.parts):
        _same(vec.transform(texts), f.transform(texts))
        _same(vec.transform(texts[:1]), f.transform(texts[:1]))
    assert np.array_equal(student.pipeline.predict_proba(texts), fast.predict_proba(texts))
    # the student's own predict_proba takes the fast path and keeps its label order
    raw = student.pipeline.predict_proba(texts)
    order = [list(student.pipeline.classes_).index(lab) for lab in student.labels]
    assert np.array_equal(student.predict_proba(texts), raw[:, order])
    assert fast_pipeline(student.pipeline) is fast_pipeline(student.pipeline)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=80) | st.just(""), min_size=1, max_size=6))
def test_identical_on_arbitrary_text(fitted, docs):
    student, texts = fitted
    extra = [" ".join(docs), "\t\n  ".join(docs), "Café  ÉCOLE\u00a0naïve 😀 " + texts[0][:50]]
    batch = docs + extra
    fast = fast_pipeline(student.pipeline)
    for (_, vec), (f, _) in zip(student.pipeline.steps[0][1].transformer_list, fast.parts):
        _same(vec.transform(batch), f.transform(batch))
    assert np.array_equal(student.pipeline.predict_proba(batch), fast.predict_proba(batch))


def test_unknown_shapes_fall_back_to_sklearn(fitted):
    from sklearn.feature_extraction.text import TfidfVectorizer

    student, texts = fitted
    char = TfidfVectorizer(analyzer="char", ngram_range=(1, 3)).fit(texts)
    f = FastVectorizer(char)
    assert not f.accelerated
    _same(char.transform(texts[:5]), f.transform(texts[:5]))
    assert FastPipeline(object()).parts is None
