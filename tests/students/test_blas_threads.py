"""The linear students fit with one BLAS thread (``graduate.students.blas``: threaded OpenBLAS made
the MFRC tfidf-logreg fit 2x slower on 2 cores) and give the threads back afterwards, also when the
fit fails. The training labels are a list that notes the BLAS thread counts whenever the student
reads it, so the test sees the setting in force inside ``fit`` without touching graduate's code."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from graduate.errors import StudentError
from graduate.formats import labelset
from graduate.students.registry import make_student


def _blas_threads() -> set[int]:
    return {d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}


class NotingLabels(list):
    """Training labels that record the BLAS thread counts each time they are iterated."""

    seen: list[set[int]]

    def __iter__(self):  # type: ignore[no-untyped-def]
        self.seen.append(_blas_threads())
        return super().__iter__()


def _noting(values: list[str]) -> NotingLabels:
    out = NotingLabels(values)
    out.seen = []
    return out


@pytest.mark.parametrize("params", [{}, {"multi_label": True}, {"multi_label": True, "head": "softmax"}], ids=["single", "per-label", "softmax"])
def test_tfidf_logreg_fits_with_one_blas_thread_and_gives_the_others_back(data, params):
    assert _blas_threads(), "numpy/scipy load a BLAS threadpoolctl can see"
    texts, gold = data
    if params:
        labels = ["ok", "bad"]
        given = _noting([labelset.encode([g], labels) for g in gold])
    else:
        given = _noting(gold)
    with threadpool_limits(2, user_api="blas"):
        student = make_student("tfidf-logreg", ["ok", "bad"], params)
        student.fit(texts, given)
        assert given.seen and all(s == {1} for s in given.seen), given.seen
        assert _blas_threads() == {2}
        p = student.predict_proba(texts[:5])
    assert p.shape[0] == 5


def test_the_threads_come_back_when_a_fit_fails(data):
    texts, gold = data
    with threadpool_limits(2, user_api="blas"):
        with pytest.raises(StudentError):
            make_student("tfidf-logreg", ["ok", "bad"], {}).fit(texts, gold[:-1])
        assert _blas_threads() == {2}


def test_embed_logreg_embeds_with_every_thread_and_fits_with_one(data):
    """Labels are read once before the encoder runs (all threads) and again for the classifier (one)."""
    texts, gold = data
    given = _noting(gold[:60])
    with threadpool_limits(2, user_api="blas"):
        make_student("embed-logreg", ["ok", "bad"], {}).fit(texts[:60], given)
        assert given.seen[0] == {2} and given.seen[-1] == {1}, given.seen
        assert _blas_threads() == {2}
