"""Multi-label heads (``head: per_label | softmax``) and embed-logreg's ``more_base_models``: the
softmax head counts an item with k labels as k rows of weight 1/k and "none" as its own class,
gives 0 to a label no item has, learns label sets through both linear students, and is identical
after save and load; bad combinations are one-line errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.errors import StudentError
from graduate.formats import labelset
from graduate.students.label_heads import SoftmaxLabels
from graduate.students.registry import load_student, make_student, save_student

LABELS = ["sport", "money", "weather", "unused"]
WORDS = {"sport": "goal match striker league", "money": "bank loan interest price", "weather": "rain storm sunny cold"}


def _data(n: int = 300, seed: int = 0, two: float = 0.1) -> tuple[list[str], list[str]]:
    """Mostly one label per text (``two``: the share with a second), as the head is meant for."""
    rng = random.Random(seed)
    texts, sets = [], []
    for _ in range(n):
        chosen = rng.sample(list(WORDS), 2 if rng.random() < two else 1)
        words = [w for lab in chosen for w in rng.sample(WORDS[lab].split(), 2)] + [f"w{rng.randint(0, 50)}" for _ in range(4)]
        rng.shuffle(words)
        texts.append(" ".join(words))
        sets.append(labelset.encode(chosen, LABELS))
    return texts, sets


def test_an_item_with_k_labels_counts_as_k_rows_of_weight_one_over_k():
    """Two identical inputs: one labelled {a, b}, one {a}. a holds 1.5 of the 2 units of weight and
    b 0.5, so with almost no regularisation P(a) = 0.75 and P(b) = 0.25 for that input."""
    X = np.array([[1.0], [1.0]])
    head = SoftmaxLabels(C=1e6, max_iter=1000).fit(X, np.array([[1, 1, 0], [1, 0, 0]]))
    p = head.predict_proba(X[:1])[0]
    assert p.shape == (3,) and p[2] == 0.0  # c: no item has it
    assert p[0] == pytest.approx(0.75, abs=1e-3) and p[1] == pytest.approx(0.25, abs=1e-3)
    # sample weights multiply the split: the {a} item weighing 3 gives a 3.5 of 4 units
    head = SoftmaxLabels(C=1e6, max_iter=1000).fit(X, np.array([[1, 1, 0], [1, 0, 0]]), sample_weight=[1.0, 3.0])
    assert head.predict_proba(X[:1])[0][0] == pytest.approx(3.5 / 4, abs=1e-3)


def test_items_without_labels_are_the_none_class():
    X = np.array([[0.0], [0.0], [1.0], [1.0]])
    head = SoftmaxLabels(C=1e6, max_iter=1000).fit(X, np.array([[0, 0], [0, 0], [1, 0], [1, 0]]))
    p = head.predict_proba(np.array([[0.0], [1.0]]))
    assert p[0].max() < 0.01 and p[1, 0] > 0.99  # the first input: "none" takes the probability
    only_none = SoftmaxLabels().fit(X, np.zeros((4, 2), dtype=int))  # one class only: certain
    assert (only_none.predict_proba(X) == 0).all()
    only_a = SoftmaxLabels().fit(X, np.array([[1, 0]] * 4))
    assert (only_a.predict_proba(X)[:, 0] == 1).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_any_label_matrix_fits_and_gives_probabilities(n, k, seed):
    """Any 0/1 matrix (empty rows, empty columns, one class, every label on every item) trains,
    and every row's label probabilities lie in [0, 1] and sum to at most 1; a label no item has: 0."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, k)) < rng.random()).astype(int)
    X = rng.normal(size=(n, 3))
    p = SoftmaxLabels(max_iter=200).fit(X, Y).predict_proba(X)
    assert p.shape == (n, k) and ((p >= 0) & (p <= 1 + 1e-9)).all() and (p.sum(axis=1) <= 1 + 1e-9).all()
    assert (p[:, Y.sum(axis=0) == 0] == 0).all()


def test_tfidf_with_the_softmax_head_learns_label_sets_and_reloads(tmp_path):
    texts, sets = _data()
    student = make_student("tfidf-logreg", LABELS, {"multi_label": True, "head": "softmax", "max_iter": 300})
    student.fit(texts[:240], sets[:240])
    probs = student.predict_proba(texts[240:])
    assert probs.shape == (60, 4) and (probs[:, 3] == 0).all() and (probs.sum(axis=1) <= 1 + 1e-9).all()
    decided = student.decide(probs)
    assert np.mean([d == g for d, g in zip(decided, sets[240:])]) > 0.8
    assert any(len(labelset.decode(d, LABELS)) == 2 for d in decided)  # a second label still passes its threshold
    save_student(student, tmp_path / "t")
    again = load_student(tmp_path / "t")
    assert again.params["head"] == "softmax" and np.array_equal(again.predict_proba(texts[240:]), probs) and again.decide(probs) == decided


def test_embed_logreg_reads_more_base_models_beside_the_first(tmp_path, tiny_encoder):
    """base_model minilm (384) + the tiny encoder (32): the classifier sees 416 columns, each text
    embedded once by each; the softmax head on label sets; identical after save and load."""
    pytest.importorskip("sentence_transformers")
    texts, sets = _data(200)
    params = {"multi_label": True, "head": "softmax", "more_base_models": [str(tiny_encoder)], "max_length": 64}
    student = make_student("embed-logreg", LABELS, params)
    student.fit(texts[:160], sets[:160])
    assert student.clf.model_.coef_.shape[1] == 384 + 32
    probs = student.predict_proba(texts[160:])
    assert np.mean([d == g for d, g in zip(student.decide(probs), sets[160:])]) > 0.6
    alone = make_student("embed-logreg", LABELS, {"multi_label": True, "max_length": 64})
    assert student.base_model_bytes > alone.base_model_bytes  # both encoders are needed beside it
    save_student(student, tmp_path / "e")
    again = load_student(tmp_path / "e")
    assert again.params["more_base_models"] == [str(tiny_encoder)] and np.allclose(again.predict_proba(texts[160:]), probs)


def test_a_missing_extra_encoder_is_named_by_its_param(tmp_path):
    pytest.importorskip("sentence_transformers")
    texts, sets = _data(20)
    student = make_student("embed-logreg", LABELS, {"multi_label": True, "more_base_models": [str(tmp_path / "nope")]})
    with pytest.raises(StudentError, match=r"params\.more_base_models\[0\] '.*nope' does not exist; give a local Hugging Face model directory"):
        student.fit(texts, sets)


def test_bad_heads_are_one_line_errors():
    with pytest.raises(StudentError, match=r"head: Input should be 'per_label' or 'softmax'"):
        make_student("tfidf-logreg", LABELS, {"head": "sigmoid"})
    with pytest.raises(StudentError, match=r"params head softmax takes class_weight balanced or none, not per-label weights;"):
        make_student("embed-logreg", LABELS, {"head": "softmax", "class_weight": {"sport": 2.0}})
    with pytest.raises(StudentError, match="head softmax takes class_weight balanced or none"):
        SoftmaxLabels(class_weight={0: 2.0}).fit(np.zeros((2, 1)), np.array([[1], [0]]))
